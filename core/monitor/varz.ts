/**
 * GET /varz: server identity, configuration and counters.
 *
 * nats-server parity: server/monitor.go `Varz` (2.10 field set and order) and
 * `createVarz`/`updateVarzRuntimeFields`. Go's `omitempty` has no effect on
 * struct-valued fields, so `cluster`, `gateway`, `leaf`, `mqtt`, `websocket`
 * and `jetstream` are always present, as `{}` when the feature is off. With
 * JetStream on, `jetstream` is nats-server's `JetStreamVarz` as
 * updateJszVarz fills it on a single server: `config`, `stats` and `limits`
 * (no `meta`); with JetStream off the pointers are nil and it stays `{}`.
 */
import { ADVERTISED_NATS_VERSION } from '../server/server.ts';
import { TLS_HANDSHAKE_MS_DEFAULT } from '../server/listener-tls.ts';
import { countRequest, MonitorPath, type MonitorContext } from './context.ts';
import { formatGoTime, formatUptime, msToGoDurationJson } from './format.ts';
import { jetStreamConfigJson, jetStreamStatsJson, type JetStreamConfigJson, type JetStreamStatsJson } from './jsz.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';


/** nats-server `JetStreamVarz`: empty when JetStream is off. */
export type JetStreamVarz = {
  config?: JetStreamConfigJson;
  stats?: JetStreamStatsJson;
  /** nats-server `JSLimitOpts`: no server-wide JetStream limits are configured, so `{}`. */
  limits?: Record<string, never>;
};

/** The /varz document. Field names and order as nats-server writes them. */
export type Varz = {
  server_id: string;
  server_name: string;
  /** The nats-server version canopy advertises (INFO `version`). */
  version: string;
  proto: number;
  /** nats-server: the Go version; canopy: its own and Node's version. */
  go: string;
  host: string;
  port: number;
  max_connections: number;
  /** Per-connection limit; omitted when unlimited (nats-server `omitempty`). */
  max_subscriptions?: number;
  /** Go time.Duration: nanoseconds. */
  ping_interval: number;
  ping_max: number;
  http_host: string;
  http_port: number;
  http_base_path: string;
  https_port: number;
  /** Seconds (float). */
  auth_timeout: number;
  max_control_line: number;
  max_payload: number;
  max_pending: number;
  cluster: Record<string, never>;
  gateway: Record<string, never>;
  leaf: Record<string, never>;
  mqtt: Record<string, never>;
  /** `{host, port, no_tls}` when the WebSocket listener is on (`no_tls`: plain ws://), else `{}`. */
  websocket: { host?: string; port?: number; no_tls?: boolean };
  jetstream: JetStreamVarz;
  /** The client port requires TLS (nats-server omits it when false). */
  tls_required?: boolean;
  /** TLS requires a client certificate (omitted when false). */
  tls_verify?: boolean;
  /** Seconds (float): the TLS handshake timeout, also when TLS is off (nats-server always writes it). */
  tls_timeout: number;
  /** canopy's own: failed TLS handshakes on the client and WebSocket ports since start (a bad or missing client certificate, plain text, a timeout). */
  tls_handshake_failures: number;
  /** Go time.Duration: nanoseconds. */
  write_deadline: number;
  /** RFC 3339, UTC. */
  start: string;
  /** RFC 3339, UTC. */
  now: string;
  /** nats-server `myUptime` style: `1d2h3m4s`. */
  uptime: string;
  /** Resident set size, bytes. */
  mem: number;
  cores: number;
  /** Percent of one core. */
  cpu: number;
  connections: number;
  total_connections: number;
  routes: number;
  remotes: number;
  leafnodes: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  slow_consumers: number;
  /** nats-server ≥ 2.11 field; counts connections closed for missing PONGs. */
  stale_connections: number;
  subscriptions: number;
  /** Requests per monitoring path, including this one. */
  http_req_stats: Record<string, number>;
  /** RFC 3339, UTC: canopy reads its config once, at start. */
  config_load_time: string;
  config_digest: string;
  slow_consumer_stats: { clients: number; routes: number; gateways: number; leafs: number };
};

/** Builds the /varz document from the server's current state. */
export function buildVarz(context: MonitorContext, nowMs: number = Date.now()): Varz {
  const { server, processUsage } = context;
  const options = server.options;
  const stats = server.stats;
  const addresses = server.addresses;
  const info = server.infoFields();
  const varz: Varz = {
    server_id: server.serverId,
    server_name: server.serverName,
    version: ADVERTISED_NATS_VERSION,
    proto: 1,
    go: typeof info['go'] === 'string' ? info['go'] : '',
    host: options.host,
    port: addresses.port,
    max_connections: options.connectionsMax,
    ping_interval: msToGoDurationJson(options.pingIntervalMs),
    ping_max: options.pingsOutstandingMax,
    http_host: context.httpHost,
    http_port: context.isHttps ? 0 : context.httpPort,
    http_base_path: '',
    https_port: context.isHttps ? context.httpPort : 0,
    auth_timeout: options.authTimeoutMs / 1000,
    max_control_line: options.controlLineBytesMax,
    max_payload: options.payloadBytesMax,
    max_pending: options.pendingBytesMax,
    cluster: {},
    gateway: {},
    leaf: {},
    mqtt: {},
    websocket:
      addresses.websocketPort === undefined
        ? {}
        : { host: options.websocketHost, port: addresses.websocketPort, no_tls: options.websocketTls === undefined },
    jetstream:
      context.jetstream === undefined
        ? {}
        : { config: jetStreamConfigJson(context.jetstream), stats: jetStreamStatsJson(context), limits: {} },
    ...(options.tls === undefined ? {} : { tls_required: true }),
    ...(options.tls?.isClientCertRequired === true ? { tls_verify: true } : {}),
    tls_timeout: (options.tls?.handshakeTimeoutMs ?? TLS_HANDSHAKE_MS_DEFAULT) / 1000,
    tls_handshake_failures: stats.tlsHandshakeFailures,
    write_deadline: msToGoDurationJson(options.writeDeadlineMs),
    start: formatGoTime(server.startMs),
    now: formatGoTime(nowMs),
    uptime: formatUptime(nowMs - server.startMs),
    mem: processUsage.rssBytes(),
    cores: processUsage.cores(),
    cpu: processUsage.cpuPercent(),
    connections: server.connections.size,
    total_connections: stats.totalConnections,
    routes: 0,
    remotes: 0,
    leafnodes: 0,
    in_msgs: stats.inMsgs,
    out_msgs: stats.outMsgs,
    in_bytes: stats.inBytes,
    out_bytes: stats.outBytes,
    slow_consumers: stats.slowConsumers,
    stale_connections: stats.staleConnections,
    subscriptions: server.sublist.count,
    http_req_stats: Object.fromEntries(context.httpRequestCounts),
    config_load_time: formatGoTime(server.startMs),
    config_digest: '',
    slow_consumer_stats: { clients: stats.slowConsumers, routes: 0, gateways: 0, leafs: 0 },
  };
  // nats-server parity: `max_subscriptions` is omitempty; keep Go's field order by inserting after max_connections.
  if (options.subscriptionsMax > 0) return withMaxSubscriptions(varz, options.subscriptionsMax);
  return varz;
}

function withMaxSubscriptions(varz: Varz, subscriptionsMax: number): Varz {
  const ordered: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(varz)) {
    ordered[key] = value;
    if (key === 'max_connections') ordered['max_subscriptions'] = subscriptionsMax;
  }
  return ordered as Varz;
}

/** GET /varz. Takes no parameters. nats-server parity: HandleVarz counts the request before building. */
export function handleVarz(context: MonitorContext): MonitorResponse {
  countRequest(context, MonitorPath.varz);
  return jsonResponse(buildVarz(context));
}
