/**
 * What every endpoint builder reads: the server and JetStream (read-only), the
 * monitor's own listen address and request counters, and the process sampler.
 */
import type { JetStream } from '../jetstream/jetstream.ts';
import type { Server } from '../server/server.ts';
import type { ProcessUsage } from './process-usage.ts';

/** Paths as nats-server names them in `http_req_stats` (server/server.go `*Path` constants). */
export const MonitorPath = {
  root: '/',
  varz: '/varz',
  connz: '/connz',
  accountz: '/accountz',
  subsz: '/subsz',
  /** nats-server serves the same handler here and counts it as `/subsz`. */
  subscriptionsz: '/subscriptionsz',
  healthz: '/healthz',
  jsz: '/jsz',
  /** canopy's own: Prometheus text (nats-server has no /metrics). */
  metrics: '/metrics',
  /** canopy's links (leaf.ts / hub): the link layer's status. */
  leafz: '/leafz',
} as const;
export type MonitorPath = (typeof MonitorPath)[keyof typeof MonitorPath];

export type MonitorContext = {
  readonly server: Server;
  /** The server's (global account's) JetStream; undefined when JetStream is off (then /jsz reports `disabled`). */
  readonly jetstream: JetStream | undefined;
  /** Every account's JetStream by account name (`$G` included), for /jsz totals and account details. */
  readonly accountJetStreams: ReadonlyMap<string, JetStream>;
  /** Host the monitor listens on (varz `http_host`). */
  readonly httpHost: string;
  /** Port the monitor is bound to (varz `http_port`, or `https_port` when isHttps). */
  readonly httpPort: number;
  /** Served over HTTPS (`https_port`). */
  readonly isHttps: boolean;
  /** Requests served per path (varz `http_req_stats`), counted as nats-server counts them. */
  readonly httpRequestCounts: Map<string, number>;
  readonly processUsage: ProcessUsage;
  /** /leafz's source, registered by the link layer after the monitor started (leafz.ts). */
  readonly leafz: { provider: (() => Record<string, unknown>) | undefined };
};

/** Adds one request to `path`'s count. */
export function countRequest(context: MonitorContext, path: string): void {
  context.httpRequestCounts.set(path, (context.httpRequestCounts.get(path) ?? 0) + 1);
}

/** nats-server's global account (core/server/accounts.ts). */
export { GLOBAL_ACCOUNT } from '../server/accounts.ts';
