/**
 * What every client command shares: the `--server` flag and the auth/TLS flags (the
 * `nats` CLI's names), their validation, and a connect() whose failures become one
 * readable line (a CliError), never a stack.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator, nkeys, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { Argv } from 'yargs';
import { ConfigError } from '../../core/server/options.ts';

export const SERVER_URL_DEFAULT = 'nats://127.0.0.1:4222';
export const CONNECT_TIMEOUT_MS = 5000;
/** Longest list `--server a,b,c` may hold. */
export const SERVER_URLS_MAX = 64;

const CLIENT_SCHEMES: ReadonlySet<string> = new Set(['nats:', 'tls:']);
/** A `.creds` file: a user JWT block, then a user seed block (nsc's layout; nats.js reads it the same way). */
const CREDS_FILE_SHAPE = /-{3,}BEGIN NATS USER JWT-{3,}\s+eyJ[A-Za-z0-9_\-.=]+\s+-{3,}END NATS USER JWT-{3,}[\s\S]*-{3,}BEGIN USER NKEY SEED-{3,}\s+SU[A-Z2-7]+\s+-{3,}END USER NKEY SEED-{3,}/;

/** A runtime failure with a message fit for one stderr line (exit code 1). */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** `--server` and the credential / TLS flags, with the `nats` CLI's names. */
export function addConnectionFlags<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option('server', { alias: 's', type: 'string', default: SERVER_URL_DEFAULT, describe: 'server URL(s), comma-separated' })
    .option('user', { type: 'string', describe: 'username' })
    .option('password', { type: 'string', describe: 'password' })
    .option('token', { type: 'string', describe: 'authentication token' })
    .option('nkey', { type: 'string', describe: 'file holding a user nkey seed (SU...)' })
    .option('creds', { type: 'string', describe: 'user credentials file (.creds: user JWT and seed, for servers in operator mode)' })
    .option('tlsca', { type: 'string', describe: 'CA file to verify the server certificate' })
    .option('tlscert', { type: 'string', describe: 'client certificate file (with --tlskey)' })
    .option('tlskey', { type: 'string', describe: 'client private key file (with --tlscert)' }) as Argv<T>;
}

/** What the credential and TLS flags add to connect()'s options. */
export type ClientSecurity = Pick<ConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls'>;

/** Reads the credential and TLS flags; a bad combination or unreadable file is a usage error (exit 2). */
export function parseClientSecurity(argv: Record<string, unknown>): ClientSecurity {
  const security: ClientSecurity = {};
  const user = readStringFlag(argv, 'user');
  const password = readStringFlag(argv, 'password');
  const token = readStringFlag(argv, 'token');
  const nkeyFile = readStringFlag(argv, 'nkey');
  const credsFile = readStringFlag(argv, 'creds');
  if (password !== undefined && user === undefined) throw new ConfigError('password', 'needs --user');
  const methods = [
    user === undefined ? '' : '--user',
    token === undefined ? '' : '--token',
    nkeyFile === undefined ? '' : '--nkey',
    credsFile === undefined ? '' : '--creds',
  ].filter((m) => m !== '');
  if (methods.length > 1) throw new ConfigError(methods[1]!.slice(2), `give only one of ${methods.join(', ')}`);
  if (user !== undefined) {
    security.user = user;
    if (password !== undefined) security.pass = password;
  }
  if (token !== undefined) security.token = token;
  if (nkeyFile !== undefined) {
    const seed = readFlagFile('nkey', nkeyFile).trim();
    try {
      nkeys.fromSeed(new TextEncoder().encode(seed));
    } catch {
      throw new ConfigError('nkey', `${JSON.stringify(nkeyFile)} does not hold an nkey seed`);
    }
    security.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (credsFile !== undefined) {
    const creds = readFlagFile('creds', credsFile);
    if (!CREDS_FILE_SHAPE.test(creds)) throw new ConfigError('creds', `${JSON.stringify(credsFile)} does not hold a user JWT and seed (a .creds file)`);
    security.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  }
  const caFile = readStringFlag(argv, 'tlsca');
  const certFile = readStringFlag(argv, 'tlscert');
  const keyFile = readStringFlag(argv, 'tlskey');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? 'tlskey' : 'tlscert', 'give --tlscert and --tlskey together');
  }
  if (caFile !== undefined || certFile !== undefined) {
    const tls: NonNullable<ConnectionOptions['tls']> = {};
    if (caFile !== undefined) tls.ca = readFlagFile('tlsca', caFile);
    if (certFile !== undefined && keyFile !== undefined) {
      tls.cert = readFlagFile('tlscert', certFile);
      tls.key = readFlagFile('tlskey', keyFile);
    }
    security.tls = tls;
  }
  return security;
}

function readFlagFile(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : describeError(err);
    throw new ConfigError(key, `cannot read ${JSON.stringify(path)} (${reason})`);
  }
}

/** Splits and validates `--server`; a bad entry is a usage error (exit 2). */
export function parseServerUrls(value: unknown): string[] {
  const text = typeof value === 'string' ? value : SERVER_URL_DEFAULT;
  const urls = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (urls.length === 0) throw new ConfigError('server', 'name at least one URL, e.g. nats://127.0.0.1:4222');
  if (urls.length > SERVER_URLS_MAX) throw new ConfigError('server', `at most ${SERVER_URLS_MAX} URLs`);
  for (const url of urls) validateServerUrl(url);
  return urls;
}

function validateServerUrl(url: string): void {
  const withScheme = url.includes('://') ? url : `nats://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new ConfigError('server', `${JSON.stringify(url)} is not a URL (expected nats://host:port)`);
  }
  if (!CLIENT_SCHEMES.has(parsed.protocol)) {
    throw new ConfigError('server', `${JSON.stringify(url)}: scheme must be nats:// or tls://`);
  }
  if (parsed.hostname === '') throw new ConfigError('server', `${JSON.stringify(url)} has no host`);
}

/** Connects with the official client; any failure is a CliError naming the servers. */
export async function connectClient(options: { servers: readonly string[]; name: string; security: ClientSecurity }): Promise<NatsConnection> {
  const target = options.servers.join(',');
  try {
    return await connect({
      ...options.security,
      servers: [...options.servers],
      name: options.name,
      timeout: CONNECT_TIMEOUT_MS,
    });
  } catch (err) {
    throw new CliError('ERR_CONNECT', `cannot connect to ${target}: ${describeError(err)}`, { cause: err });
  }
}

/** The innermost useful message of a nats.js error, on one line. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return `timed out after ${CONNECT_TIMEOUT_MS} ms`;
  const message = err.message === '' && err.cause instanceof Error ? err.cause.message : err.message;
  return message.replace(/\s+/g, ' ').trim();
}

/** True for a nats.js request that failed because nobody subscribes to the subject. */
export function isNoRespondersError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ('isNoResponders' in err && typeof err.isNoResponders === 'function' && err.isNoResponders() === true) return true;
  return err.cause instanceof Error && err.cause.name.startsWith('NoResponders');
}

/** Reads an integer flag that must be ≥ min; throws ConfigError (exit 2). */
export function readIntegerFlag(argv: Record<string, unknown>, key: string, options: { min: number; max: number }): number {
  const value = argv[key];
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < options.min || number > options.max) {
    const got = typeof number === 'number' && !Number.isNaN(number) ? `, got ${number}` : '';
    throw new ConfigError(key, `must be an integer from ${options.min} to ${options.max}${got}`);
  }
  return number;
}

/** Reads an optional string flag. */
export function readStringFlag(argv: Record<string, unknown>, key: string): string | undefined {
  const value = argv[key];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new ConfigError(key, 'given more than once');
  return String(value);
}

/** Reads a duration flag: a bare number is milliseconds, or "250ms", "2s", "1m". */
export function readDurationMsFlag(argv: Record<string, unknown>, key: string, options: { max: number }): number {
  const value = argv[key];
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  const unitMs = match?.[2] === 's' ? 1000 : match?.[2] === 'm' ? 60_000 : 1;
  const ms = match === null ? Number.NaN : Number(match[1]) * unitMs;
  if (!Number.isFinite(ms) || ms < 0 || ms > options.max) {
    throw new ConfigError(key, `must be a duration such as 500, 500ms or 2s (at most ${options.max} ms), got ${JSON.stringify(value)}`);
  }
  return ms;
}
