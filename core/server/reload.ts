/**
 * Config reload (SIGHUP, as nats-server's `--signal reload`): which options may change while
 * the server runs. The new config is resolved in full first (a file that does not parse or
 * validate is refused whole), then compared with the running one option by option: if any
 * option that cannot change at runtime differs, the whole reload is refused and the server keeps
 * its old config; otherwise every change applies (Server.reload). Never half-applied.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ListenerTls } from './listener-tls.ts';
import type { ServerOptions } from './options.ts';

/** Options that apply at once or to new connections; the name is the config key users know. */
const RELOADABLE_OPTIONS = {
  logLevel: 'log_level',
  payloadBytesMax: 'max_payload',
  controlLineBytesMax: 'max_control_line',
  pendingBytesMax: 'max_pending',
  connectionsMax: 'max_connections',
  subscriptionsMax: 'max_subscriptions',
  pingIntervalMs: 'ping_interval',
  pingsOutstandingMax: 'ping_max',
  authTimeoutMs: 'auth_timeout',
  auth: 'authorization',
  writeDeadlineMs: 'write_deadline',
  lameDuckDurationMs: 'lame_duck_duration',
} as const satisfies Partial<Record<keyof ServerOptions, string>>;

/** Options that need a restart: listeners, the store, JetStream, the monitoring token. */
const RESTART_OPTIONS = {
  serverName: 'server_name',
  host: 'addr',
  port: 'port',
  httpHost: 'http_host',
  httpPort: 'http_port',
  httpsPort: 'https_port',
  monitorToken: 'monitor_token',
  websocketHost: 'websocket_host',
  websocketPort: 'websocket_port',
  storeDir: 'store_dir',
  isJetStreamEnabled: 'jetstream',
  syncPolicy: 'sync',
  // The registry of accounts (their sublists, imports and JetStreams) is built at start.
  accounts: 'accounts',
} as const satisfies Partial<Record<keyof ServerOptions, string>>;

/** What a reload would do: the options it changes, and those it refuses (a restart is needed). */
export type OptionsDiff = { readonly changed: readonly string[]; readonly refused: readonly string[] };

/**
 * Compares the running options with a reloaded config. TLS blocks may renew their files (new
 * handshakes use them) and change their settings, but turning TLS on or off on a listener, or
 * `websocket.tls.verify`, needs a restart. Every ServerOptions key is in one of the tables, so
 * a new option is refused until someone decides it is safe.
 */
export function diffServerOptions(running: ServerOptions, next: ServerOptions): OptionsDiff {
  const changed: string[] = [];
  const refused: string[] = [];
  for (const key of Object.keys(running) as (keyof ServerOptions)[]) {
    if (isDeepStrictEqual(running[key], next[key])) continue;
    if (key === 'tls' || key === 'websocketTls') {
      const name = key === 'tls' ? 'tls' : 'websocket.tls';
      if (isTlsReloadable(running[key], next[key], key === 'websocketTls')) changed.push(name);
      else refused.push(name);
    } else if (Object.hasOwn(RELOADABLE_OPTIONS, key)) {
      changed.push(RELOADABLE_OPTIONS[key as keyof typeof RELOADABLE_OPTIONS]);
    } else {
      refused.push(Object.hasOwn(RESTART_OPTIONS, key) ? RESTART_OPTIONS[key as keyof typeof RESTART_OPTIONS] : key);
    }
  }
  return { changed, refused };
}

function isTlsReloadable(running: ListenerTls | undefined, next: ListenerTls | undefined, isVerifyFixed: boolean): boolean {
  if (running === undefined || next === undefined) return false;
  // The wss:// listener's https.Server takes requestCert once, at creation.
  return !isVerifyFixed || running.isClientCertRequired === next.isClientCertRequired;
}
