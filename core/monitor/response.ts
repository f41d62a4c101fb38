/** What an endpoint hands back to http.ts to write, and how JSON bodies are encoded. */
import { randomBytes } from 'node:crypto';

export type MonitorResponse =
  | {
      readonly kind: 'json';
      readonly status: number;
      /** Plain JSON values; a `bigint` is written as an exact integer (Go's uint64 fields). */
      readonly body: unknown;
      /** nats-server writes /healthz with `json.Marshal` (one line), everything else indented. */
      readonly isCompact?: boolean;
    }
  | {
      readonly kind: 'text';
      readonly status: number;
      readonly contentType: string;
      readonly text: string;
    };

export function jsonResponse(body: unknown, options: { status?: number; isCompact?: boolean } = {}): MonitorResponse {
  return { kind: 'json', status: options.status ?? 200, body, isCompact: options.isCompact ?? false };
}

/**
 * A string no monitored value can produce: the NUL (written `\u0000` by
 * JSON.stringify) plus a per-process random token. Strings from clients
 * (stream descriptions, metadata) cannot guess the token.
 */
const BIGINT_MARK = `\u0000canopy-bigint-${randomBytes(8).toString('hex')}:`;
const BIGINT_MARK_JSON = JSON.stringify(BIGINT_MARK).slice(1, -1);
const BIGINT_PATTERN = new RegExp(`"${BIGINT_MARK_JSON.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}(-?\\d+)"`, 'g');

/**
 * JSON text of a monitoring body, indented with two spaces unless compact.
 * `bigint` values become exact integer literals: nats-server writes uint64
 * values such as `reserved_memory: 18446744073709551615` that a double would
 * round to a number Go cannot decode into a uint64.
 */
export function encodeJson(body: unknown, isCompact: boolean): string {
  let hasBigint = false;
  const replacer = (_key: string, value: unknown): unknown => {
    if (typeof value !== 'bigint') return value;
    hasBigint = true;
    return `${BIGINT_MARK}${value.toString()}`;
  };
  const json = isCompact ? JSON.stringify(body, replacer) : JSON.stringify(body, replacer, 2);
  return hasBigint ? json.replace(BIGINT_PATTERN, '$1') : json;
}
