/**
 * Query-string decoding with nats-server's rules and error texts
 * (server/monitor.go `decodeBool`, `decodeInt`, `decodeUint64`, `decodeState`,
 * `decodeSubs`). An empty or absent parameter means the default; a value that
 * does not parse is a 400 whose message is the one nats-server writes.
 */

/** A request the monitor refuses with 400 (or another 4xx); the message is shown to the caller. */
export class MonitorRequestError extends Error {
  override readonly name = 'MonitorRequestError';
  readonly code = 'ERR_MONITOR_BAD_REQUEST';
  readonly status: number;
  constructor(message: string, options: { status?: number } = {}) {
    super(message);
    this.status = options.status ?? 400;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Go `%q` for the ASCII values query strings carry (close enough for error text). */
function quote(value: string): string {
  return JSON.stringify(value);
}

/**
 * Go `strconv.ParseBool` accepts exactly these spellings.
 * nats-server parity: monitor.go decodeBool.
 */
export function decodeBool(query: URLSearchParams, param: string): boolean {
  const text = query.get(param) ?? '';
  switch (text) {
    case '':
      return false;
    case '1':
    case 't':
    case 'T':
    case 'true':
    case 'TRUE':
    case 'True':
      return true;
    case '0':
    case 'f':
    case 'F':
    case 'false':
    case 'FALSE':
    case 'False':
      return false;
    default:
      throw new MonitorRequestError(
        `Error decoding boolean for '${param}': strconv.ParseBool: parsing ${quote(text)}: invalid syntax`,
      );
  }
}

/** Go `strconv.Atoi` (64-bit): optional sign, decimal digits, int64 range. nats-server parity: decodeInt. */
export function decodeInt(query: URLSearchParams, param: string): number {
  const text = query.get(param) ?? '';
  if (text === '') return 0;
  const fail = (why: string): never => {
    throw new MonitorRequestError(`Error decoding int for '${param}': strconv.Atoi: parsing ${quote(text)}: ${why}`);
  };
  if (!/^[+-]?[0-9]+$/.test(text)) fail('invalid syntax');
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) fail('value out of range');
  return Number(value);
}

/** Go `strconv.ParseUint(s, 10, 64)`: digits only, uint64 range. nats-server parity: decodeUint64. */
export function decodeUint64(query: URLSearchParams, param: string): number {
  const text = query.get(param) ?? '';
  if (text === '') return 0;
  const fail = (why: string): never => {
    throw new MonitorRequestError(
      `Error decoding uint64 for '${param}': strconv.ParseUint: parsing ${quote(text)}: ${why}`,
    );
  };
  if (!/^[0-9]+$/.test(text)) fail('invalid syntax');
  if (BigInt(text) > UINT64_MAX) fail('value out of range');
  return Number(text);
}

/** Which connections /connz lists. */
export const ConnectionState = { open: 'open', closed: 'closed', all: 'all' } as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** `state=open|closed|all|any` (case-insensitive). nats-server parity: decodeState. */
export function decodeState(query: URLSearchParams): ConnectionState {
  const text = query.get('state') ?? '';
  switch (text.toLowerCase()) {
    case '':
    case 'open':
      return ConnectionState.open;
    case 'closed':
      return ConnectionState.closed;
    case 'any':
    case 'all':
      return ConnectionState.all;
    default:
      throw new MonitorRequestError(`Error decoding state for ${text}`);
  }
}

/** What `subs=` asks for: nothing, subject strings (`subs=1`), or detail objects (`subs=detail`). */
export type SubscriptionsListing = 'none' | 'subjects' | 'detail';

/** `subs=detail` (case-insensitive) or a Go boolean. nats-server parity: decodeSubs. */
export function decodeSubs(query: URLSearchParams): SubscriptionsListing {
  if ((query.get('subs') ?? '').toLowerCase() === 'detail') return 'detail';
  return decodeBool(query, 'subs') ? 'subjects' : 'none';
}

/** `query.get(param)` with '' for absent. */
export function queryString(query: URLSearchParams, param: string): string {
  return query.get(param) ?? '';
}
