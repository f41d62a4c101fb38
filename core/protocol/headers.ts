/**
 * The NATS header block (ADR-4, NATS-SPEC.md §1.6):
 * `NATS/1.0[ <status>[ <description>]]␍␊(Key: Value␍␊)*␍␊`.
 * Read lazily on Buffers: nothing is parsed unless a value is asked for.
 */

const HEADER_LINE_PREFIX = 'NATS/1.0';
const CRLF = '\r\n';

/**
 * The first value of header `key` (case-sensitive, as nats-server's getHeader), or
 * undefined. Values are trimmed of surrounding spaces and tabs.
 */
export function getHeader(block: Buffer, key: string): string | undefined {
  const needle = `${CRLF}${key}:`;
  const at = block.indexOf(needle, 0, 'latin1');
  if (at < 0) return undefined;
  const valueStart = at + needle.length;
  const lineEnd = block.indexOf(CRLF, valueStart, 'latin1');
  if (lineEnd < 0) return undefined;
  return block.toString('utf8', valueStart, lineEnd).trim();
}

/** Every header as [key, value] pairs, in order (keys keep their case). */
export function parseHeaders(block: Buffer): { status: number; description: string; entries: [string, string][] } {
  const text = block.toString('utf8');
  const lines = text.split(CRLF);
  const first = lines[0] ?? '';
  let status = 0;
  let description = '';
  if (first.startsWith(HEADER_LINE_PREFIX)) {
    const rest = first.slice(HEADER_LINE_PREFIX.length).trim();
    const match = /^(\d{3})\s*(.*)$/.exec(rest);
    if (match !== null) {
      status = Number(match[1]);
      description = match[2] ?? '';
    }
  }
  const entries: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    entries.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { status, description, entries };
}

/** Builds a header block from entries and an optional status line (`100 Idle Heartbeat`). */
export function encodeHeaders(entries: readonly (readonly [string, string])[], status = ''): Buffer {
  let text = status === '' ? HEADER_LINE_PREFIX : `${HEADER_LINE_PREFIX} ${status}`;
  text += CRLF;
  for (const [key, value] of entries) text += `${key}: ${value}${CRLF}`;
  text += CRLF;
  return Buffer.from(text, 'utf8');
}

/** A header block with the given entries removed (e.g. Nats-Expected-* before storing). */
export function removeHeaders(block: Buffer, keys: ReadonlySet<string>): Buffer | undefined {
  const { status, description, entries } = parseHeaders(block);
  const kept = entries.filter(([key]) => !keys.has(key));
  if (kept.length === 0 && status === 0) return undefined;
  return encodeHeaders(kept, status === 0 ? '' : `${status}${description === '' ? '' : ` ${description}`}`);
}
