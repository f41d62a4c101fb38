/**
 * GET /metrics: Prometheus text exposition, built into the broker so no
 * separate prometheus-nats-exporter process is needed.
 *
 * Names follow the official nats-io/prometheus-nats-exporter exactly, so its
 * dashboards and alerts work unchanged: `gnatsd_<endpoint>_<json field>`
 * (nested objects flattened with `_`), every metric a gauge whose HELP text is
 * the flattened field name, label `server_id` (ours, like the exporter's
 * `-use_internal_server_id`), and string fields as `{server_id, value}`
 * gauges set to 1. prom-client's default Node process metrics
 * (`process_*`, `nodejs_*`) are added too.
 *
 * Each monitor owns a `Registry` (never prom-client's global one, so two
 * servers in one process do not collide). Values are read at scrape time by
 * `collect()` from one snapshot per scrape: nothing runs on the message path.
 * The metric list is documented in ./README.md.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CONNZ_LIMIT_DEFAULT } from './connz.ts';
import { MonitorPath, type MonitorContext } from './context.ts';
import { checkHealth } from './healthz.ts';
import { sublistStatsJson, type SublistStatsJson } from './subsz.ts';
import { buildVarz, type Varz } from './varz.ts';

/** prom-client's namespace for the exporter-compatible metrics (the exporter's default `-prefix`). */
export const METRICS_NAMESPACE = 'gnatsd';

/** Everything one scrape reads, taken once at the start of the scrape. */
type MetricsSnapshot = {
  readonly varz: Varz;
  readonly sublist: SublistStatsJson;
  readonly isHealthy: boolean;
  readonly healthStatus: string;
};

type NumberMetric = { readonly name: string; readonly read: (snapshot: MetricsSnapshot) => number };
type StringMetric = { readonly name: string; readonly read: (snapshot: MetricsSnapshot) => string };

const requestCount = (snapshot: MetricsSnapshot, path: string): number => snapshot.varz.http_req_stats[path] ?? 0;

/** `gnatsd_<name>` gauges with one `server_id` label; `name` is also the HELP text. */
const NUMBER_METRICS: readonly NumberMetric[] = [
  { name: 'varz_connections', read: (s) => s.varz.connections },
  { name: 'varz_total_connections', read: (s) => s.varz.total_connections },
  { name: 'varz_in_msgs', read: (s) => s.varz.in_msgs },
  { name: 'varz_out_msgs', read: (s) => s.varz.out_msgs },
  { name: 'varz_in_bytes', read: (s) => s.varz.in_bytes },
  { name: 'varz_out_bytes', read: (s) => s.varz.out_bytes },
  { name: 'varz_slow_consumers', read: (s) => s.varz.slow_consumers },
  { name: 'varz_stale_connections', read: (s) => s.varz.stale_connections },
  { name: 'varz_subscriptions', read: (s) => s.varz.subscriptions },
  { name: 'varz_mem', read: (s) => s.varz.mem },
  { name: 'varz_cpu', read: (s) => s.varz.cpu },
  { name: 'varz_cores', read: (s) => s.varz.cores },
  { name: 'varz_max_connections', read: (s) => s.varz.max_connections },
  { name: 'varz_max_payload', read: (s) => s.varz.max_payload },
  { name: 'varz_max_pending', read: (s) => s.varz.max_pending },
  { name: 'varz_max_control_line', read: (s) => s.varz.max_control_line },
  { name: 'varz_ping_interval', read: (s) => s.varz.ping_interval },
  { name: 'varz_ping_max', read: (s) => s.varz.ping_max },
  { name: 'varz_auth_timeout', read: (s) => s.varz.auth_timeout },
  { name: 'varz_proto', read: (s) => s.varz.proto },
  { name: 'varz_port', read: (s) => s.varz.port },
  { name: 'varz_http_port', read: (s) => s.varz.http_port },
  { name: 'varz_routes', read: (s) => s.varz.routes },
  { name: 'varz_remotes', read: (s) => s.varz.remotes },
  { name: 'varz_leafnodes', read: (s) => s.varz.leafnodes },
  { name: 'varz_slow_consumer_stats_clients', read: (s) => s.varz.slow_consumer_stats.clients },
  { name: 'varz_slow_consumer_stats_routes', read: (s) => s.varz.slow_consumer_stats.routes },
  { name: 'varz_slow_consumer_stats_gateways', read: (s) => s.varz.slow_consumer_stats.gateways },
  { name: 'varz_slow_consumer_stats_leafs', read: (s) => s.varz.slow_consumer_stats.leafs },
  { name: 'varz_http_req_stats_varz', read: (s) => requestCount(s, MonitorPath.varz) },
  { name: 'varz_http_req_stats_connz', read: (s) => requestCount(s, MonitorPath.connz) },
  { name: 'varz_http_req_stats_subsz', read: (s) => requestCount(s, MonitorPath.subsz) },
  { name: 'varz_http_req_stats_healthz', read: (s) => requestCount(s, MonitorPath.healthz) },
  { name: 'varz_http_req_stats_metrics', read: (s) => requestCount(s, MonitorPath.metrics) },
  { name: 'subsz_num_subscriptions', read: (s) => s.sublist.num_subscriptions },
  { name: 'subsz_num_cache', read: (s) => s.sublist.num_cache },
  { name: 'subsz_num_inserts', read: (s) => s.sublist.num_inserts },
  { name: 'subsz_num_removes', read: (s) => s.sublist.num_removes },
  { name: 'subsz_num_matches', read: (s) => s.sublist.num_matches },
  { name: 'subsz_cache_hit_rate', read: (s) => s.sublist.cache_hit_rate },
  { name: 'subsz_max_fanout', read: (s) => s.sublist.max_fanout },
  { name: 'subsz_avg_fanout', read: (s) => s.sublist.avg_fanout },
  // What the exporter's default /connz scrape (first page, 1024) reports.
  { name: 'connz_num_connections', read: (s) => Math.min(s.varz.connections, CONNZ_LIMIT_DEFAULT) },
  { name: 'connz_total', read: (s) => s.varz.connections },
  // The exporter maps healthz `status` "ok" to 0, anything else to 1.
  { name: 'healthz_status', read: (s) => (s.isHealthy ? 0 : 1) },
];

/** `gnatsd_<name>{server_id, value="<string>"} 1` gauges. */
const STRING_METRICS: readonly StringMetric[] = [
  { name: 'varz_server_name', read: (s) => s.varz.server_name },
  { name: 'varz_version', read: (s) => s.varz.version },
  { name: 'healthz_status_value', read: (s) => s.healthStatus },
];

/** One monitor's Prometheus registry. */
export class MetricsExporter {
  readonly registry: Registry;
  readonly #context: MonitorContext;
  #snapshot: MetricsSnapshot | undefined;

  constructor(context: MonitorContext) {
    this.#context = context;
    this.#snapshot = undefined;
    this.registry = new Registry();
    const serverId = context.server.serverId;
    const currentSnapshot = (): MetricsSnapshot | undefined => this.#snapshot;
    for (const metric of NUMBER_METRICS) {
      new Gauge({
        name: `${METRICS_NAMESPACE}_${metric.name}`,
        help: metric.name,
        labelNames: ['server_id'],
        registers: [this.registry],
        collect(this: Gauge<'server_id'>) {
          const snapshot = currentSnapshot();
          if (snapshot !== undefined) this.set({ server_id: serverId }, metric.read(snapshot));
        },
      });
    }
    for (const metric of STRING_METRICS) {
      new Gauge({
        name: `${METRICS_NAMESPACE}_${metric.name}`,
        help: metric.name,
        labelNames: ['server_id', 'value'],
        registers: [this.registry],
        collect(this: Gauge<'server_id' | 'value'>) {
          const snapshot = currentSnapshot();
          if (snapshot === undefined) return;
          this.reset();
          this.set({ server_id: serverId, value: metric.read(snapshot) }, 1);
        },
      });
    }
    // Node process metrics (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_*, …).
    collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition content type (text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Takes one snapshot of the server and renders every metric from it. */
  async render(): Promise<string> {
    const context = this.#context;
    const health = checkHealth(context, { isDetailed: false, account: '', stream: '', consumer: '' });
    this.#snapshot = {
      varz: buildVarz(context),
      sublist: sublistStatsJson(context),
      isHealthy: health.status === 200,
      healthStatus: health.body.status,
    };
    return this.registry.metrics();
  }
}
