/**
 * Go-style duration strings as nats-server config files use them ("2m", "1.5s",
 * "100ms", "1h30m"). A bare number means seconds, as in nats-server.
 */
const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['ns', 1e-6],
  ['us', 1e-3],
  ['µs', 1e-3],
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
]);

/** Parses a duration into milliseconds; undefined when the text is not a duration. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let totalMs = 0;
  let consumed = 0;
  for (let match = part.exec(text); match !== null; match = part.exec(text)) {
    totalMs += Number(match[1]) * (UNIT_MS.get(match[2] ?? '') ?? Number.NaN);
    consumed = part.lastIndex;
  }
  if (consumed !== text.length || !Number.isFinite(totalMs)) return undefined;
  return totalMs;
}
