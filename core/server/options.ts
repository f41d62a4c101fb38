/**
 * Server configuration: the NATS option names users know (`port`, `max_payload`,
 * `ping_interval`, …), mapped once to canopy's internal qualifier-last names.
 * Flags and the JSON config file take the same keys; flags win.
 */
import type { SyncPolicy } from '../jetstream/store.ts';
import { parseDurationMs } from '../util/duration.ts';
import { resolveAccountsConfig, type AccountsConfig } from './account-config.ts';
import { resolveAuthOptions, type AuthOptions } from './auth.ts';
import { isPlainObject } from './config-fields.ts';
import { ConfigError } from './config-error.ts';
import { resolveOperatorMode, type OperatorMode } from './operator-mode.ts';
import { resolveListenerTls, TLS_HANDSHAKE_MS_DEFAULT, type ListenerTls } from './listener-tls.ts';
import type { TlsFileSetting } from './tls-material.ts';
import {
  AUTH_TIMEOUT_MS,
  CONNECTIONS_MAX,
  CONTROL_LINE_BYTES_MAX,
  PAYLOAD_BYTES_MAX,
  PENDING_BYTES_MAX,
  PINGS_OUTSTANDING_MAX,
  PING_INTERVAL_MS,
  SUBSCRIPTIONS_MAX,
} from '../protocol/limits.ts';

export const LogLevel = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevel)[number];

/** The largest max_payload canopy accepts at all (nats-server warns above 8 MiB). */
export const PAYLOAD_BYTES_CEILING = 64 * 1024 * 1024;
/** Ceiling for a single WebSocket frame from a client: one payload plus its control line, with room to batch. */
export const WEBSOCKET_FRAME_BYTES_MIN = 8 * 1024 * 1024;

/** Resolved server options, internal names (units last). */
export type ServerOptions = {
  readonly serverName: string;
  readonly host: string;
  /** Client port; 0 picks a free port. */
  readonly port: number;
  readonly httpHost: string;
  /** Monitoring port over plain HTTP; undefined = disabled, 0 = a free port. */
  readonly httpPort: number | undefined;
  /** Monitoring port over HTTPS (nats-server `https_port`, with the client port's certificate); exclusive with httpPort. */
  readonly httpsPort: number | undefined;
  /** `monitor_token`: every monitoring request needs `Authorization: Bearer <token>` (core/monitor/README.md). */
  readonly monitorToken: string | undefined;
  /** TLS on the client port (the `tls` block); undefined = plain TCP. */
  readonly tls: ListenerTls | undefined;
  readonly websocketHost: string;
  /** WebSocket client port; undefined = disabled, 0 = a free port. */
  readonly websocketPort: number | undefined;
  /** TLS on the WebSocket port (`websocket.tls`: wss://); undefined = plain ws://. */
  readonly websocketTls: ListenerTls | undefined;
  readonly storeDir: string;
  readonly logLevel: LogLevel;
  readonly payloadBytesMax: number;
  readonly controlLineBytesMax: number;
  readonly pendingBytesMax: number;
  readonly connectionsMax: number;
  /** 0 = unlimited. */
  readonly subscriptionsMax: number;
  readonly pingIntervalMs: number;
  readonly pingsOutstandingMax: number;
  /** Time allowed to send CONNECT: `auth_timeout`, or `authorization.timeout` when set. */
  readonly authTimeoutMs: number;
  /** Client authentication, operator mode (`operator`) included; undefined = none (any CONNECT is accepted). */
  readonly auth: AuthOptions | undefined;
  /** The `accounts` block (account-config.ts), a plain value a config reload can swap; empty = only `$G`. */
  readonly accounts: AccountsConfig;
  readonly writeDeadlineMs: number;
  readonly lameDuckDurationMs: number;
  /** JetStream on (streams stored under storeDir). */
  readonly isJetStreamEnabled: boolean;
  /** When file storage fsyncs before a PubAck (SyncPolicy). */
  readonly syncPolicy: SyncPolicy;
};

export { ConfigError };

export type OptionKind = 'port' | 'optional_port' | 'int' | 'string' | 'duration' | 'size' | 'log_level' | 'bool' | 'sync';

export type OptionSpec = {
  readonly kind: OptionKind;
  readonly describe: string;
  readonly alias?: string;
  readonly min?: number;
  readonly max?: number;
};

/**
 * Every key a flag or config file may set. `optional_port`: 0 disables the listener,
 * -1 picks a free port (nats-server's RANDOM_PORT); `port`: -1 or 0 pick a free port.
 */
export const SERVER_OPTION_SPECS = {
  server_name: { kind: 'string', describe: 'server name shown in INFO and monitoring' },
  addr: { kind: 'string', alias: 'a', describe: 'client listen address (also: net, host)' },
  port: { kind: 'port', alias: 'p', describe: 'client port (-1 = a free port)' },
  http_port: { kind: 'optional_port', alias: 'm', describe: 'monitoring port (0 = off, -1 = a free port)' },
  http_host: { kind: 'string', describe: 'monitoring listen address (canopy leaf: 127.0.0.1 unless given)' },
  https_port: { kind: 'optional_port', describe: 'monitoring port over HTTPS with the tls certificate (0 = off; exclusive with http_port)' },
  monitor_token: { kind: 'string', describe: 'monitoring requires "Authorization: Bearer <token>" (a plain /healthz excepted)' },
  tls: { kind: 'bool', describe: 'require TLS on the client port (config file: a tls block)' },
  tlscert: { kind: 'string', describe: 'client port TLS: PEM server certificate (config file: tls.cert_file)' },
  tlskey: { kind: 'string', describe: 'client port TLS: PEM private key (config file: tls.key_file)' },
  tlscacert: { kind: 'string', describe: 'client port TLS: PEM CA bundle for client certificates (config file: tls.ca_file)' },
  tlsverify: { kind: 'bool', describe: 'client port TLS: require a client certificate signed by tlscacert (config file: tls.verify)' },
  tls_verify_and_map: { kind: 'bool', describe: 'client port TLS: verify, and map the client certificate (email/DNS/URI SAN, or subject DN) to a user (config file: tls.verify_and_map)' },
  tls_handshake_first: { kind: 'bool', describe: 'client port TLS: the handshake comes first, INFO after it (nats.js tls.handshakeFirst; config file: tls.handshake_first)' },
  tls_timeout: { kind: 'duration', min: 10, describe: 'TLS handshake timeout, client and WebSocket ports (config file: tls.timeout; default 2s)' },
  websocket_port: { kind: 'optional_port', describe: 'WebSocket client port (0 = off, -1 = a free port)' },
  websocket_host: { kind: 'string', describe: 'WebSocket listen address' },
  websocket_tls_cert: { kind: 'string', describe: 'WebSocket TLS (wss://): PEM server certificate (config file: websocket.tls.cert_file)' },
  websocket_tls_key: { kind: 'string', describe: 'WebSocket TLS: PEM private key (config file: websocket.tls.key_file)' },
  websocket_tls_ca: { kind: 'string', describe: 'WebSocket TLS: PEM CA bundle for client certificates (config file: websocket.tls.ca_file)' },
  websocket_tls_verify: { kind: 'bool', describe: 'WebSocket TLS: require a client certificate signed by websocket_tls_ca (config file: websocket.tls.verify)' },
  jetstream: { kind: 'bool', alias: 'js', describe: 'enable JetStream (true or false)' },
  store_dir: { kind: 'string', alias: 'sd', describe: 'JetStream data directory' },
  sync: {
    kind: 'sync',
    min: 1,
    describe: '"always" (PubAck after fsync) or an interval such as "1s" (PubAck once written to the OS; fsync follows)',
  },
  log_level: { kind: 'log_level', describe: `log level: ${LogLevel.join(', ')}` },
  max_payload: { kind: 'size', min: 1, max: PAYLOAD_BYTES_CEILING, describe: 'largest message payload in bytes (e.g. 1048576 or "1MB")' },
  max_control_line: { kind: 'size', min: 256, max: 1024 * 1024, describe: 'longest protocol control line in bytes' },
  max_pending: { kind: 'size', min: 1024, max: 1024 ** 4, describe: 'outbound bytes buffered per connection before it is a slow consumer' },
  max_connections: { kind: 'int', min: 1, max: 10_000_000, describe: 'maximum client connections' },
  max_subscriptions: { kind: 'int', min: 0, max: 100_000_000, describe: 'maximum subscriptions per connection (0 = unlimited)' },
  ping_interval: { kind: 'duration', min: 10, describe: 'interval between server PINGs (seconds or "2m")' },
  ping_max: { kind: 'int', min: 1, max: 1000, describe: 'outstanding PINGs before a connection is stale' },
  auth_timeout: { kind: 'duration', min: 10, describe: 'time allowed to send CONNECT (seconds or "2s")' },
  auth: { kind: 'string', describe: 'token clients must send (plain or a bcrypt hash); the config file also takes an "authorization" block' },
  user: { kind: 'string', describe: 'user name clients must send (with --pass)' },
  pass: { kind: 'string', describe: 'password for --user (plain or a bcrypt hash)' },
  write_deadline: { kind: 'duration', min: 10, describe: 'time a blocked write may take before the client is a slow consumer' },
  lame_duck_duration: { kind: 'duration', min: 0, describe: 'time allowed for clients to leave on shutdown' },
} as const satisfies Record<string, OptionSpec>;

export type ServerOptionKey = keyof typeof SERVER_OPTION_SPECS;

/** Keys that stand for another key, as in nats-server config files. */
const KEY_SYNONYMS: ReadonlyMap<string, ServerOptionKey> = new Map([
  ['net', 'addr'],
  ['host', 'addr'],
  ['listen_port', 'port'],
  ['jetstream_store_dir', 'store_dir'],
  ['sync_interval', 'sync'],
  ['monitor_port', 'http_port'],
]);

/** Embedded defaults: `canopy server` with no flags (the README quick start). */
export const DEFAULT_SERVER_CONFIG = {
  server_name: '',
  addr: '0.0.0.0',
  port: 4222,
  http_port: 8222,
  http_host: '0.0.0.0',
  https_port: 0,
  monitor_token: '',
  tls: 'false',
  tlscert: '',
  tlskey: '',
  tlscacert: '',
  tlsverify: 'false',
  tls_verify_and_map: 'false',
  tls_handshake_first: 'false',
  tls_timeout: TLS_HANDSHAKE_MS_DEFAULT / 1000,
  websocket_port: 8080,
  websocket_host: '0.0.0.0',
  websocket_tls_cert: '',
  websocket_tls_key: '',
  websocket_tls_ca: '',
  websocket_tls_verify: 'false',
  jetstream: 'true',
  store_dir: './data',
  sync: 'always',
  log_level: 'info',
  max_payload: PAYLOAD_BYTES_MAX,
  max_control_line: CONTROL_LINE_BYTES_MAX,
  max_pending: PENDING_BYTES_MAX,
  max_connections: CONNECTIONS_MAX,
  max_subscriptions: SUBSCRIPTIONS_MAX,
  ping_interval: PING_INTERVAL_MS / 1000,
  ping_max: PINGS_OUTSTANDING_MAX,
  auth_timeout: AUTH_TIMEOUT_MS / 1000,
  auth: '',
  user: '',
  pass: '',
  write_deadline: 10,
  lame_duck_duration: 30,
} as const satisfies Record<ServerOptionKey, string | number>;

const SIZE_UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1], ['b', 1], ['k', 1024], ['kb', 1024], ['kib', 1024], ['m', 1024 ** 2], ['mb', 1024 ** 2],
  ['mib', 1024 ** 2], ['g', 1024 ** 3], ['gb', 1024 ** 3], ['gib', 1024 ** 3],
]);

/** Parses "1MB", "512k", 1048576 (1024 multiples) into bytes; undefined when not a size. */
export function parseSizeBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (match === null) return undefined;
  const unit = SIZE_UNITS.get((match[2] ?? '').toLowerCase());
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function checkRange(key: string, spec: OptionSpec, n: number, unit: string): number {
  if (spec.min !== undefined && n < spec.min) throw new ConfigError(key, `must be at least ${spec.min}${unit}`);
  if (spec.max !== undefined && n > spec.max) throw new ConfigError(key, `must be at most ${spec.max}${unit}`);
  return n;
}

function parseInteger(key: string, value: unknown, allowed: string): number {
  const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new ConfigError(key, `must be ${allowed} (got ${describeValue(value)})`);
  }
  return n;
}

/** Converts one raw value to its typed form (ports, bytes, milliseconds), or throws ConfigError. */
function coerceOption(key: ServerOptionKey, value: unknown): string | number {
  return coerceOptionValue(key, SERVER_OPTION_SPECS[key], value);
}

/** Converts one raw value of an option of `spec` to its typed form, or throws ConfigError (also for other commands' options). */
export function coerceOptionValue(key: string, spec: OptionSpec, value: unknown): string | number {
  switch (spec.kind) {
    case 'string':
      if (typeof value !== 'string') throw new ConfigError(key, `must be a string (got ${describeValue(value)})`);
      return value;
    case 'bool':
      // A bare flag (`--jetstream`) arrives as ''.
      if (value === true || value === 'true' || value === '') return 'true';
      if (value === false || value === 'false') return 'false';
      throw new ConfigError(key, `must be true or false (got ${describeValue(value)})`);
    case 'log_level':
      if (typeof value !== 'string' || !(LogLevel as readonly string[]).includes(value)) {
        throw new ConfigError(key, `must be one of ${LogLevel.join(', ')} (got ${describeValue(value)})`);
      }
      return value;
    case 'port':
    case 'optional_port': {
      const n = parseInteger(key, value, 'an integer from -1 to 65535');
      if (n < -1 || n > 65535) throw new ConfigError(key, `must be an integer from -1 to 65535 (got ${n})`);
      return n;
    }
    case 'int':
      return checkRange(key, spec, parseInteger(key, value, 'an integer'), '');
    case 'size': {
      const bytes = parseSizeBytes(value);
      if (bytes === undefined) {
        throw new ConfigError(key, `must be a size in bytes such as 1048576 or "1MB" (got ${describeValue(value)})`);
      }
      return checkRange(key, spec, bytes, ' bytes');
    }
    case 'sync':
      return value === 'always' ? value : durationMs(key, spec, value, '"always" or a duration such as "1s" or "2m"');
    case 'duration':
      return durationMs(key, spec, value, 'a duration such as 2 (seconds), "500ms" or "2m"');
  }
}

function durationMs(key: string, spec: OptionSpec, value: unknown, allowed: string): number {
  const ms = typeof value === 'string' || typeof value === 'number' ? parseDurationMs(value) : undefined;
  if (ms === undefined) throw new ConfigError(key, `must be ${allowed} (got ${describeValue(value)})`);
  return checkRange(key, spec, ms, ' ms');
}

/** Keys of the config file's TLS blocks (nats-server's names) → the flag each one is. */
const TLS_BLOCK_KEYS = {
  tls: { cert_file: 'tlscert', key_file: 'tlskey', ca_file: 'tlscacert', verify: 'tlsverify', verify_and_map: 'tls_verify_and_map', timeout: 'tls_timeout', handshake_first: 'tls_handshake_first' },
  'websocket.tls': { cert_file: 'websocket_tls_cert', key_file: 'websocket_tls_key', ca_file: 'websocket_tls_ca', verify: 'websocket_tls_verify' },
} as const satisfies Record<string, Record<string, ServerOptionKey>>;

/** A flattened config: flag keys, and how the user spelled each key that came from a block (for errors). */
type FlatConfig = { readonly flat: Record<string, unknown>; readonly labels: Map<string, string> };

/** Flattens a JSON config object: `{ websocket: { port } }` becomes `websocket_port`; synonyms map to their key. */
export function flattenConfig(config: Record<string, unknown>): Record<string, unknown> {
  return flattenConfigLabelled(config).flat;
}

/**
 * Flattens a config object. `websocket: { port }` and `http: { port, listen }` become
 * `websocket_port` and `http_port`/`http_host`; `http: "host:port"` and `https: "host:port"`
 * (nats-server's forms) set the host too; the `tls` and `websocket.tls` blocks become their
 * flags (TLS_BLOCK_KEYS), and a `tls` block turns `tls` on.
 */
function flattenConfigLabelled(config: Record<string, unknown>): FlatConfig {
  const flat: Record<string, unknown> = {};
  const labels = new Map<string, string>();
  for (const [key, value] of Object.entries(config)) {
    if ((key === 'http' || key === 'https') && typeof value === 'string') {
      addHostPort(flat, labels, key, value);
    } else if (key === 'tls' && isPlainObject(value)) {
      flattenTlsBlock(flat, labels, 'tls', value);
      flat['tls'] = true;
    } else if ((key === 'websocket' || key === 'http') && isPlainObject(value)) {
      for (const [inner, innerValue] of Object.entries(value)) {
        if (key === 'websocket' && inner === 'tls' && isPlainObject(innerValue)) {
          flattenTlsBlock(flat, labels, 'websocket.tls', innerValue);
          continue;
        }
        flat[`${key}_${inner === 'listen' ? 'host' : inner}`] = innerValue;
      }
    } else {
      flat[KEY_SYNONYMS.get(key) ?? key] = value;
    }
  }
  return { flat, labels };
}

function flattenTlsBlock(flat: Record<string, unknown>, labels: Map<string, string>, block: keyof typeof TLS_BLOCK_KEYS, value: Record<string, unknown>): void {
  const keys: Readonly<Record<string, ServerOptionKey>> = TLS_BLOCK_KEYS[block];
  for (const [inner, innerValue] of Object.entries(value)) {
    const key = keys[inner];
    if (key === undefined) throw new ConfigError(`${block}.${inner}`, `is not a key of ${block} (canopy knows ${Object.keys(keys).join(', ')})`);
    flat[key] = innerValue;
    labels.set(key, `${block}.${inner}`);
  }
}

/** nats-server's `http: "127.0.0.1:8222"` (and `https`): host and port in one string. */
function addHostPort(flat: Record<string, unknown>, labels: Map<string, string>, key: 'http' | 'https', value: string): void {
  const at = value.lastIndexOf(':');
  if (at <= 0) throw new ConfigError(key, `must be "host:port" or an object { port, listen } (got ${JSON.stringify(value)})`);
  flat['http_host'] = value.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  flat[`${key}_port`] = value.slice(at + 1);
  labels.set('http_host', key);
  labels.set(`${key}_port`, key);
}

function portOrFree(port: number): number {
  return port === -1 ? 0 : port;
}

function optionalPort(port: number): number | undefined {
  if (port === 0) return undefined;
  return port === -1 ? 0 : port;
}

/**
 * Validates raw settings (flag and config-file keys, already merged; unknown keys
 * are errors) and maps them to {@link ServerOptions}. Missing keys take the embedded
 * defaults, or `defaults` where given (`canopy leaf` binds monitoring to 127.0.0.1).
 * The `authorization` block (an object, nats-server's names) goes to resolveAuthOptions, the
 * `accounts` block to resolveAccountsConfig (its users to resolveAuthOptions too).
 */
export function resolveServerOptions(raw: Record<string, unknown>, defaults: Partial<Record<ServerOptionKey, string | number>> = {}): ServerOptions {
  const values = new Map<string, string | number>();
  for (const [key, value] of Object.entries({ ...DEFAULT_SERVER_CONFIG, ...defaults })) {
    values.set(key, coerceOption(key as ServerOptionKey, value));
  }
  const { flat: flatAll, labels } = flattenConfigLabelled(raw);
  const { authorization, accounts: accountsBlock, no_auth_user: noAuthUser, operator, operators, system_account, resolver, resolver_preload, ...flat } = flatAll;
  for (const [key, value] of Object.entries(flat)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(SERVER_OPTION_SPECS, key)) {
      throw new ConfigError(key, `unknown option; known options: ${Object.keys(SERVER_OPTION_SPECS).join(', ')}`);
    }
    values.set(key, coerceOptionValue(labels.get(key) ?? key, SERVER_OPTION_SPECS[key as ServerOptionKey], value));
  }
  const num = (key: ServerOptionKey): number => values.get(key) as number;
  const str = (key: ServerOptionKey): string => values.get(key) as string;
  const label = (key: ServerOptionKey): string => labels.get(key) ?? key;
  const accounts = resolveAccountsConfig(accountsBlock);
  if (noAuthUser !== undefined && typeof noAuthUser !== 'string') throw new ConfigError('no_auth_user', 'must be a user name');
  if (operator !== undefined && operators !== undefined) throw new ConfigError('operators', 'cannot be given together with "operator"');
  const operatorMode = resolveOperatorMode({ operator: operator ?? operators, systemAccount: system_account, resolver, resolverPreload: resolver_preload });
  if (operatorMode !== undefined && accountsBlock !== undefined) {
    // nats-server parity: opts.go validateTrustedOperators; in operator mode accounts come from account JWTs.
    throw new ConfigError('accounts', 'operators do not allow Accounts to be configured directly');
  }
  const auth = withOperatorMode(
    resolveAuthOptions({
      authorization,
      token: str('auth'),
      user: str('user'),
      password: str('pass'),
      accountUsers: accounts.users,
      accountDefaultPermissions: accounts.defaultPermissions,
      noAuthUser: noAuthUser ?? '',
      certMapLabel: str('tls_verify_and_map') === 'true' ? label('tls_verify_and_map') : undefined,
    }),
    operatorMode,
  );
  if (num('max_payload') > num('max_pending')) {
    throw new ConfigError('max_payload', `must not exceed max_pending (${num('max_pending')} bytes)`);
  }
  const file = (key: ServerOptionKey): TlsFileSetting | undefined => (str(key) === '' ? undefined : { label: label(key), path: str(key) });
  const handshakeTimeoutMs = num('tls_timeout');
  const tls = resolveListenerTls({
    block: 'tls',
    cert: file('tlscert'),
    key: file('tlskey'),
    ca: file('tlscacert'),
    verify: { label: label('tlsverify'), isOn: str('tlsverify') === 'true' },
    isCertMapped: str('tls_verify_and_map') === 'true',
    isHandshakeFirst: str('tls_handshake_first') === 'true',
    isRequested: str('tls') === 'true',
    handshakeTimeoutMs,
  });
  const websocketTls = resolveListenerTls({
    block: 'websocket.tls',
    cert: file('websocket_tls_cert'),
    key: file('websocket_tls_key'),
    ca: file('websocket_tls_ca'),
    verify: { label: label('websocket_tls_verify'), isOn: str('websocket_tls_verify') === 'true' },
    isCertMapped: false,
    isHandshakeFirst: false,
    isRequested: false,
    handshakeTimeoutMs,
  });
  const monitorPorts = resolveMonitorPorts({ httpPort: optionalPort(num('http_port')), httpsPort: optionalPort(num('https_port')), isHttpPortGiven: flat['http_port'] !== undefined, hasTls: tls !== undefined, label });
  return {
    serverName: str('server_name'),
    host: str('addr'),
    port: portOrFree(num('port')),
    httpHost: str('http_host'),
    ...monitorPorts,
    monitorToken: str('monitor_token') === '' ? undefined : str('monitor_token'),
    tls,
    websocketHost: str('websocket_host'),
    websocketPort: optionalPort(num('websocket_port')),
    websocketTls,
    storeDir: str('store_dir'),
    logLevel: str('log_level') as LogLevel,
    payloadBytesMax: num('max_payload'),
    controlLineBytesMax: num('max_control_line'),
    pendingBytesMax: num('max_pending'),
    connectionsMax: num('max_connections'),
    subscriptionsMax: num('max_subscriptions'),
    pingIntervalMs: num('ping_interval'),
    pingsOutstandingMax: num('ping_max'),
    authTimeoutMs: auth?.timeoutMs ?? num('auth_timeout'),
    auth,
    accounts: accounts.accounts,
    writeDeadlineMs: num('write_deadline'),
    lameDuckDurationMs: num('lame_duck_duration'),
    isJetStreamEnabled: str('jetstream') === 'true',
    syncPolicy: values.get('sync') === 'always' ? 'always' : { intervalMs: num('sync') },
  };
}

/**
 * Adds operator mode to the `authorization` settings. nats-server parity: opts.go
 * validateTrustedOperators refuses users next to operators ("operators do not allow
 * users to be configured directly"); canopy refuses a token too, which would be ignored.
 */
function withOperatorMode(auth: AuthOptions | undefined, operatorMode: OperatorMode | undefined): AuthOptions | undefined {
  if (operatorMode === undefined) return auth;
  if (auth === undefined) return { token: undefined, permissions: undefined, users: new Map(), nkeyUsers: new Map(), noAuthUser: undefined, timeoutMs: undefined, isCertMapped: false, operatorMode };
  if (auth.token !== undefined || auth.users.size > 0 || auth.nkeyUsers.size > 0) {
    throw new ConfigError('operator', 'cannot be combined with users or a token in "authorization" (or --auth, --user): operators do not allow users to be configured directly');
  }
  return { ...auth, operatorMode };
}

/**
 * nats-server parity: server.go StartMonitoring refuses both http_port and https_port, and
 * https needs the client port's certificate. canopy's default http_port (8222) gives way to an
 * https_port unless http_port was given too.
 */
function resolveMonitorPorts(options: {
  httpPort: number | undefined;
  httpsPort: number | undefined;
  isHttpPortGiven: boolean;
  hasTls: boolean;
  label: (key: ServerOptionKey) => string;
}): { httpPort: number | undefined; httpsPort: number | undefined } {
  const { httpPort, httpsPort, label } = options;
  if (httpsPort === undefined) return { httpPort, httpsPort };
  if (options.isHttpPortGiven && httpPort !== undefined) throw new ConfigError(label('https_port'), `cannot be used with http_port: monitoring is served on one of them`);
  if (!options.hasTls) throw new ConfigError(label('https_port'), 'needs the tls block (cert_file, key_file): monitoring serves HTTPS with the client port\'s certificate');
  return { httpPort: undefined, httpsPort };
}
