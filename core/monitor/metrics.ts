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
 * JetStream series are named and labelled as the exporter's JetStream
 * collector (collector/jsz.go, `-jsz=all`) makes them from
 * `/jsz?consumers=true&config=true&raft=true`: namespace `jetstream`,
 * `jetstream_server_*` (labels server_id, server_name, cluster, domain,
 * meta_leader, is_meta_leader), `jetstream_account_*` (+ account,
 * account_name, account_id), `jetstream_stream_*` (+ stream_name,
 * stream_leader, is_stream_leader, stream_raft_group) and
 * `jetstream_consumer_*` (+ consumer_name, consumer_leader,
 * is_consumer_leader, consumer_desc), all gauges.
 *
 * Each monitor owns a `Registry` (never prom-client's global one, so two
 * servers in one process do not collide). Values are read at scrape time by
 * `collect()` from one snapshot per scrape: nothing runs on the message path.
 * The metric list is documented in ./README.md.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { CONNZ_LIMIT_DEFAULT } from './connz.ts';
import { MonitorPath, type MonitorContext } from './context.ts';
import { parseRfc3339Ns } from '../util/time.ts';
import { checkHealth, HEALTHZ_OPTIONS_DEFAULT } from './healthz.ts';
import { LINK_GAUGES, linkSamples } from './link-metrics.ts';
import { buildJsz, JSZ_OPTIONS_DEFAULT, type AccountDetailJson, type JsInfoJson, type StreamDetailJson } from './jsz.ts';
import { sublistStatsJson, type SublistStatsJson } from './subsz.ts';
import { buildVarz, type Varz } from './varz.ts';

/** prom-client's namespace for the exporter-compatible metrics (the exporter's default `-prefix`). */
export const METRICS_NAMESPACE = 'gnatsd';
/** The exporter's namespace for its JetStream collector (collector.go `JetStreamSystem`). */
export const JETSTREAM_METRICS_NAMESPACE = 'jetstream';

/** One labelled value of a JetStream gauge. */
type Sample = { readonly labels: Record<string, string>; readonly value: number };

/** Everything one scrape reads, taken once at the start of the scrape. */
type MetricsSnapshot = {
  readonly varz: Varz;
  readonly sublist: SublistStatsJson;
  readonly isHealthy: boolean;
  readonly healthStatus: string;
  /** JetStream gauge name (without namespace) → its samples. */
  readonly jetstream: ReadonlyMap<string, readonly Sample[]>;
  /** Link gauge name → its samples (link-metrics.ts). */
  readonly link: ReadonlyMap<string, readonly Sample[]>;
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
  { name: 'varz_tls_handshake_failures', read: (s) => s.varz.tls_handshake_failures },
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
  { name: 'varz_http_req_stats_jsz', read: (s) => requestCount(s, MonitorPath.jsz) },
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

/** A JetStream gauge: `read` returns undefined when the exporter emits no sample for this object. */
type JetStreamMetric<T> = { readonly name: string; readonly help: string; readonly read: (source: T) => number | undefined };

/** The exporter's label sets (collector/jsz.go newJszCollector). */
const SERVER_LABELS = ['server_id', 'server_name', 'cluster', 'domain', 'meta_leader', 'is_meta_leader'] as const;
const ACCOUNT_LABELS = [...SERVER_LABELS, 'account', 'account_name', 'account_id'] as const;
const STREAM_LABELS = [...ACCOUNT_LABELS, 'stream_name', 'stream_leader', 'is_stream_leader', 'stream_raft_group'] as const;
const CONSUMER_LABELS = [...STREAM_LABELS, 'consumer_name', 'consumer_leader', 'is_consumer_leader', 'consumer_desc'] as const;

const toNumber = (value: number | bigint): number => (typeof value === 'bigint' ? Number(value) : value);
const numberAt = (record: Record<string, unknown> | undefined, key: string): number => {
  const value = record?.[key];
  return typeof value === 'number' ? value : 0;
};
const objectAt = (record: Record<string, unknown> | undefined, key: string): Record<string, unknown> | undefined => {
  const value = record?.[key];
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
};

/** Seconds from `last_active` of `delivered`/`ack_floor` to the info's `ts` (the exporter skips it when unset). */
function secondsSince(info: Record<string, unknown>, key: 'delivered' | 'ack_floor'): number | undefined {
  const last = objectAt(info, key)?.['last_active'];
  const ts = info['ts'];
  if (typeof last !== 'string' || typeof ts !== 'string') return undefined;
  const lastNs = parseRfc3339Ns(last);
  const tsNs = parseRfc3339Ns(ts);
  if (lastNs === undefined || tsNs === undefined) return undefined;
  return Number(tsNs - lastNs) / 1e9;
}

/** `jetstream_server_*`, with the exporter's HELP texts. */
const SERVER_METRICS: readonly JetStreamMetric<JsInfoJson>[] = [
  { name: 'server_jetstream_disabled', help: 'JetStream disabled or not', read: (j) => (j.disabled === true ? 1 : 0) },
  { name: 'server_total_streams', help: 'Total number of streams in JetStream', read: (j) => j.streams },
  { name: 'server_total_consumers', help: 'Total number of consumers in JetStream', read: (j) => j.consumers },
  { name: 'server_total_messages', help: 'Total number of stored messages in JetStream', read: (j) => j.messages },
  { name: 'server_total_message_bytes', help: 'Total number of bytes stored in JetStream', read: (j) => j.bytes },
  { name: 'server_max_memory', help: 'JetStream Max Memory', read: (j) => j.config.max_memory },
  { name: 'server_max_storage', help: 'JetStream Max Storage', read: (j) => j.config.max_storage },
];

/** `jetstream_account_*`: the exporter reads max_* from the account's reserved sizes. */
const ACCOUNT_METRICS: readonly JetStreamMetric<AccountDetailJson>[] = [
  { name: 'account_max_memory', help: 'JetStream Account Max Memory in bytes', read: (a) => toNumber(a.reserved_memory) },
  { name: 'account_max_storage', help: 'JetStream Account Max Storage in bytes', read: (a) => toNumber(a.reserved_storage) },
  { name: 'account_storage_used', help: 'Total number of bytes used by JetStream storage', read: (a) => a.storage },
  { name: 'account_memory_used', help: 'Total number of bytes used by JetStream memory', read: (a) => a.memory },
];

const STREAM_METRICS: readonly JetStreamMetric<StreamDetailJson>[] = [
  { name: 'stream_total_messages', help: 'Total number of messages from a stream', read: (s) => numberAt(s.state, 'messages') },
  { name: 'stream_total_bytes', help: 'Total stored bytes from a stream', read: (s) => numberAt(s.state, 'bytes') },
  { name: 'stream_first_seq', help: 'First sequence from a stream', read: (s) => numberAt(s.state, 'first_seq') },
  { name: 'stream_last_seq', help: 'Last sequence from a stream', read: (s) => numberAt(s.state, 'last_seq') },
  { name: 'stream_consumer_count', help: 'Total number of consumers from a stream', read: (s) => numberAt(s.state, 'consumer_count') },
  { name: 'stream_subject_count', help: 'Total number of subjects in a stream', read: (s) => numberAt(s.state, 'num_subjects') },
  {
    name: 'stream_limit_bytes',
    help: 'The maximum configured storage limit (in bytes) for a JetStream stream. A value of -1 indicates no limit.',
    read: (s) => s.config?.max_bytes,
  },
  {
    name: 'stream_limit_messages',
    help: 'The maximum number of messages allowed in a JetStream stream as per its configuration. A value of -1 indicates no limit.',
    read: (s) => s.config?.max_msgs,
  },
];

const CONSUMER_METRICS: readonly JetStreamMetric<Record<string, unknown>>[] = [
  { name: 'consumer_delivered_consumer_seq', help: 'Latest sequence number of a stream consumer', read: (c) => numberAt(objectAt(c, 'delivered'), 'consumer_seq') },
  { name: 'consumer_delivered_stream_seq', help: 'Latest sequence number of a stream', read: (c) => numberAt(objectAt(c, 'delivered'), 'stream_seq') },
  { name: 'consumer_last_delivery_seconds', help: 'Seconds since last message delivery to consumer', read: (c) => secondsSince(c, 'delivered') },
  { name: 'consumer_last_ack_seconds', help: 'Seconds since last ack from consumer', read: (c) => secondsSince(c, 'ack_floor') },
  { name: 'consumer_num_ack_pending', help: 'Number of pending acks from a consumer', read: (c) => numberAt(c, 'num_ack_pending') },
  { name: 'consumer_num_redelivered', help: 'Number of redelivered messages from a consumer', read: (c) => numberAt(c, 'num_redelivered') },
  { name: 'consumer_num_waiting', help: 'Number of inflight fetch requests from a pull consumer', read: (c) => numberAt(c, 'num_waiting') },
  { name: 'consumer_num_pending', help: 'Number of pending messages from a consumer', read: (c) => numberAt(c, 'num_pending') },
  { name: 'consumer_ack_floor_stream_seq', help: 'Number of ack floor stream seq from a consumer', read: (c) => numberAt(objectAt(c, 'ack_floor'), 'stream_seq') },
  { name: 'consumer_ack_floor_consumer_seq', help: 'Number of ack floor consumer seq from a consumer', read: (c) => numberAt(objectAt(c, 'ack_floor'), 'consumer_seq') },
];

/** Every JetStream gauge with its label names, in registration order. */
const JETSTREAM_GAUGES: readonly { readonly name: string; readonly help: string; readonly labels: readonly string[] }[] = [
  ...SERVER_METRICS.map((m) => ({ name: m.name, help: m.help, labels: SERVER_LABELS })),
  ...ACCOUNT_METRICS.map((m) => ({ name: m.name, help: m.help, labels: ACCOUNT_LABELS })),
  ...STREAM_METRICS.map((m) => ({ name: m.name, help: m.help, labels: STREAM_LABELS })),
  ...CONSUMER_METRICS.map((m) => ({ name: m.name, help: m.help, labels: CONSUMER_LABELS })),
];

/**
 * The samples the exporter's JetStream collector would produce from this
 * /jsz document. Single server: no meta group (cluster and meta_leader empty,
 * is_meta_leader "true"), every stream led here, consumers without a raft group.
 */
export function jetStreamSamples(jsz: JsInfoJson, serverId: string, serverName: string): Map<string, Sample[]> {
  const samples = new Map<string, Sample[]>(JETSTREAM_GAUGES.map((gauge) => [gauge.name, []]));
  const add = <T>(metrics: readonly JetStreamMetric<T>[], source: T, labels: Record<string, string>): void => {
    for (const metric of metrics) {
      const value = metric.read(source);
      if (value !== undefined) samples.get(metric.name)?.push({ labels, value });
    }
  };
  const serverLabels = { server_id: serverId, server_name: serverName, cluster: '', domain: '', meta_leader: '', is_meta_leader: 'true' };
  add(SERVER_METRICS, jsz, serverLabels);
  for (const account of jsz.account_details ?? []) {
    const accountLabels = { ...serverLabels, account: account.name, account_name: account.name, account_id: account.id };
    add(ACCOUNT_METRICS, account, accountLabels);
    for (const stream of account.stream_detail ?? []) {
      const streamLabels = {
        ...accountLabels,
        stream_name: stream.name,
        stream_leader: stream.cluster.leader,
        is_stream_leader: stream.cluster.leader === serverName ? 'true' : 'false',
        stream_raft_group: '',
      };
      add(STREAM_METRICS, stream, streamLabels);
      for (const consumer of stream.consumer_detail ?? []) {
        const config = objectAt(consumer, 'config');
        const description = config?.['description'];
        const consumerLabels = {
          ...streamLabels,
          consumer_name: typeof consumer['name'] === 'string' ? consumer['name'] : '',
          consumer_leader: '',
          is_consumer_leader: 'true',
          consumer_desc: typeof description === 'string' ? description : '',
        };
        add(CONSUMER_METRICS, consumer, consumerLabels);
      }
    }
  }
  return samples;
}

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
    const sampled = (
      name: string,
      gauge: { name: string; help: string; labels: readonly string[]; isCounter?: boolean },
      samplesOf: (snapshot: MetricsSnapshot) => ReadonlyMap<string, readonly Sample[]>,
    ): void => {
      const collectSamples = <M extends { reset(): void }>(write: (metric: M, sample: Sample) => void): ((this: M) => void) =>
        function collect(this: M) {
          const snapshot = currentSnapshot();
          if (snapshot === undefined) return;
          this.reset();
          for (const sample of samplesOf(snapshot).get(gauge.name) ?? []) write(this, sample);
        };
      const configuration = { name, help: gauge.help, labelNames: gauge.labels, registers: [this.registry] };
      // A count kept by the link layer is a counter: each scrape resets it and adds the current count.
      if (gauge.isCounter === true) new Counter({ ...configuration, collect: collectSamples<Counter<string>>((metric, sample) => metric.inc(sample.labels, sample.value)) });
      else new Gauge({ ...configuration, collect: collectSamples<Gauge<string>>((metric, sample) => metric.set(sample.labels, sample.value)) });
    };
    for (const gauge of JETSTREAM_GAUGES) sampled(`${JETSTREAM_METRICS_NAMESPACE}_${gauge.name}`, gauge, (snapshot) => snapshot.jetstream);
    for (const gauge of LINK_GAUGES) sampled(gauge.name, gauge, (snapshot) => snapshot.link);
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
    const health = checkHealth(context, HEALTHZ_OPTIONS_DEFAULT);
    const varz = buildVarz(context);
    // What the exporter's `-jsz=all` reads: /jsz?consumers=true&config=true&raft=true.
    const jsz = buildJsz(context, { ...JSZ_OPTIONS_DEFAULT, consumers: true, config: true, raftGroups: true });
    this.#snapshot = {
      varz,
      sublist: sublistStatsJson(context),
      isHealthy: health.status === 200,
      healthStatus: health.body.status,
      jetstream: jetStreamSamples(jsz, context.server.serverId, varz.server_name),
      link: linkSamples(context.leafz.provider?.(), Date.now()),
    };
    return this.registry.metrics();
  }
}
