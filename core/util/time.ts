/**
 * Time representation, decided once for the codebase (STYLE.md §2.9 "Numbers"):
 * - durations and deadlines: milliseconds as JS numbers (`…Ms`);
 * - wall-clock timestamps of stored messages and API times: nanoseconds since the
 *   Unix epoch as `bigint` (`…Ns`), because nanoseconds (~1.8e18) exceed 2^53 and
 *   the NATS wire carries them exactly (RFC 3339 with 9 fractional digits, Go durations in ns).
 */

/** Wall-clock now in nanoseconds since the epoch (microsecond resolution). */
export function nowNs(): bigint {
  const ms = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(ms * 1000)) * 1000n;
}

/** Milliseconds → nanoseconds. */
export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n;
}

/** Nanoseconds → milliseconds (fractional). */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

/** RFC 3339 with nanoseconds in UTC, as Go's time.Time marshals: 2026-11-27T10:00:00.123456789Z. */
export function formatRfc3339Ns(ns: bigint): string {
  if (ns === 0n) return '0001-01-01T00:00:00Z';
  const seconds = ns / 1_000_000_000n;
  const fraction = ns % 1_000_000_000n;
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  if (fraction === 0n) return `${base}Z`;
  return `${base}.${fraction.toString().padStart(9, '0').replace(/0+$/, '')}Z`;
}

/** Parses an RFC 3339 time (any fractional precision, Z or ±hh:mm) into nanoseconds; undefined when invalid. */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (match === null) return undefined;
  const ms = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const fraction = BigInt((match[2] ?? '').padEnd(9, '0') || '0');
  return BigInt(ms) * 1_000_000n + fraction;
}
