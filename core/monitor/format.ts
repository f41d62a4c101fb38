/**
 * How nats-server writes times and durations in its monitoring JSON, so tools
 * written against nats-server (nats CLI, prometheus-nats-exporter, dashboards)
 * parse ours unchanged. Pure functions; canopy keeps times as epoch ms.
 */

const NS_PER_MICROSECOND = 1_000;
const NS_PER_MILLISECOND = 1_000_000;
const NS_PER_SECOND = 1_000_000_000;

/**
 * A Go `time.Time` as `encoding/json` writes it (RFC 3339 with nanoseconds,
 * trailing zeros of the fraction dropped), in UTC: `2024-05-01T10:20:30.12Z`.
 */
export function formatGoTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString(); // always `.mmmZ`
  const dot = iso.lastIndexOf('.');
  let end = iso.length - 1; // the `Z`
  while (end > dot + 1 && iso.charCodeAt(end - 1) === 0x30) end--;
  const fraction = end === dot + 1 ? '' : iso.slice(dot, end);
  return `${iso.slice(0, dot)}${fraction}Z`;
}

/**
 * Uptime and idle time as nats-server prints them (monitor.go `myUptime`):
 * whole seconds, largest unit first, `y`/`d` instead of huge hour counts:
 * `45s`, `3m7s`, `2h0m5s`, `1d2h3m4s`, `1y2d3h4m5s`.
 */
export function formatUptime(durationMs: number): string {
  const totalSeconds = Math.max(0, Math.floor(durationMs / 1000));
  const totalMinutes = Math.floor(totalSeconds / 60);
  const totalHours = Math.floor(totalMinutes / 60);
  const totalDays = Math.floor(totalHours / 24);
  const years = Math.floor(totalDays / 365);
  const s = totalSeconds % 60;
  const m = totalMinutes % 60;
  const h = totalHours % 24;
  if (years > 0) return `${years}y${totalDays % 365}d${h}h${m}m${s}s`;
  if (totalDays > 0) return `${totalDays}d${h}h${m}m${s}s`;
  if (totalHours > 0) return `${totalHours}h${m}m${s}s`;
  if (totalMinutes > 0) return `${totalMinutes}m${s}s`;
  return `${s}s`;
}

/**
 * A Go `time.Duration` as its `String()` method prints it: `0s`, `850ns`,
 * `1.5µs`, `2.25ms`, `1.5s`, `1m0.5s`, `2h3m4s`. nats-server uses this for
 * `rtt` in /connz. Negative and non-integer inputs are clamped and truncated.
 */
export function formatGoDuration(durationNs: number): string {
  const ns = Math.max(0, Math.trunc(durationNs));
  if (ns === 0) return '0s';
  if (ns < NS_PER_MICROSECOND) return `${ns}ns`;
  if (ns < NS_PER_MILLISECOND) return `${withFraction(ns, 3)}µs`;
  if (ns < NS_PER_SECOND) return `${withFraction(ns, 6)}ms`;
  const totalSeconds = Math.floor(ns / NS_PER_SECOND);
  const seconds = `${totalSeconds % 60}${fractionDigits(ns % NS_PER_SECOND, 9)}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes === 0) return seconds;
  const hours = Math.floor(totalMinutes / 60);
  const minutes = `${totalMinutes % 60}m`;
  return hours === 0 ? `${minutes}${seconds}` : `${hours}h${minutes}${seconds}`;
}

/** `value / 10^digits` printed with at most `digits` decimals, trailing zeros dropped (Go `fmtFrac`). */
function withFraction(value: number, digits: number): string {
  const unit = 10 ** digits;
  return `${Math.floor(value / unit)}${fractionDigits(value % unit, digits)}`;
}

/** `.ddd` for a fraction held as an integer of `digits` decimals; '' when it is zero. */
function fractionDigits(fraction: number, digits: number): string {
  if (fraction === 0) return '';
  let text = String(fraction).padStart(digits, '0');
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x30) end--;
  text = text.slice(0, end);
  return `.${text}`;
}

/** Milliseconds as a Go `time.Duration` JSON value: integer nanoseconds. */
export function msToGoDurationJson(durationMs: number): number {
  return Math.round(durationMs * NS_PER_MILLISECOND);
}

/**
 * `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as `127.0.0.1`,
 * which is how nats-server (Go's net.TCPAddr) reports it.
 */
export function normalizeIp(address: string): string {
  const prefix = '::ffff:';
  if (address.startsWith(prefix) && address.indexOf('.', prefix.length) !== -1) return address.slice(prefix.length);
  return address;
}
