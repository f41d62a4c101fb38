/**
 * GET /jsz: JetStream configuration, usage and (on request) per-account,
 * per-stream and per-consumer details.
 *
 * nats-server parity (2.10, the version canopy advertises): server/monitor.go
 * `JSzOptions`, `JSInfo`, `AccountDetail`, `StreamDetail`, `Jsz`,
 * `accountDetail` and `HandleJsz`; server/jetstream.go `JetStreamConfig`,
 * `JetStreamStats` and `usageStats`. Field names and order are Go's; `omitempty`
 * fields are left out when empty. A single server: no `meta_cluster`, no raft
 * groups, every stream led by this server. Totals cover every account's
 * JetStream (`$G` and the accounts with `jetstream: enabled`); `config` is `$G`'s.
 * Deliberate differences are listed in ./README.md.
 */
import { statfsSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { StreamConfig } from '../jetstream/api/types.ts';
import type { Consumer } from '../jetstream/consumer.ts';
import { ConsumerRegistry } from '../jetstream/consumers.ts';
import type { JetStream } from '../jetstream/jetstream.ts';
import { buildStreamInfo } from '../jetstream/stream-info.ts';
import type { Stream } from '../jetstream/stream.ts';
import { countRequest, GLOBAL_ACCOUNT, MonitorPath, type MonitorContext } from './context.ts';
import { formatGoTime } from './format.ts';
import { decodeBool, decodeInt, MonitorRequestError, queryString } from './query.ts';
import { jsonResponse, type MonitorResponse } from './response.ts';

/** Accounts per /jsz page when `limit` is 0 or absent (nats-server Jsz default). */
export const JSZ_LIMIT_DEFAULT = 1024;
/**
 * Go's `uint64(-1)`: nats-server reports an account's `reserved_memory` and
 * `reserved_storage` from its `-1` (unlimited) limits this way.
 */
export const UINT64_MAX = 2n ** 64n - 1n;
/** nats-server's fallback `max_storage` when the disk cannot be measured (JetStreamMaxStoreDefault, 1 TiB). */
export const MAX_STORAGE_FALLBACK = 1024 ** 4;
/** nats-server's fallback `max_memory` when system memory is unknown (JetStreamMaxMemDefault, 256 MiB). */
export const MAX_MEMORY_FALLBACK = 256 * 1024 ** 2;

/** nats-server `JetStreamConfig` (the fields a single canopy server fills). */
export type JetStreamConfigJson = {
  max_memory: number;
  max_storage: number;
  /** omitempty: absent in the disabled form. */
  store_dir?: string;
};

/** nats-server `JetStreamAPIStats` as 2.10 writes it (no `level`, `inflight` omitted when 0). */
export type JetStreamApiStatsJson = { total: number; errors: number };

/** nats-server `JetStreamStats`. Reserved sizes are uint64 in Go; see UINT64_MAX. */
export type JetStreamStatsJson = {
  memory: number;
  storage: number;
  reserved_memory: number | bigint;
  reserved_storage: number | bigint;
  accounts: number;
  ha_assets: number;
  api: JetStreamApiStatsJson;
};

/** nats-server `StreamDetail`. */
export type StreamDetailJson = {
  name: string;
  created: string;
  /** Single server: `ClusterInfo{Leader: <server_name>}` (name omitted, no cluster). */
  cluster: { leader: string };
  /** With `config=true`. */
  config?: StreamConfig;
  state: Record<string, unknown>;
  /** With `consumers=true`: ConsumerInfo objects (their `config` only with `config=true`). */
  consumer_detail?: Record<string, unknown>[];
};

/** nats-server `AccountDetail` (JetStreamStats embedded). */
export type AccountDetailJson = { name: string; id: string } & JetStreamStatsJson & { stream_detail?: StreamDetailJson[] };

/** nats-server `JSInfo`. */
export type JsInfoJson = {
  server_id: string;
  now: string;
  disabled?: true;
  config: JetStreamConfigJson;
  /** nats-server `JSLimitOpts` (all fields omitempty): `{}` as no server-wide limits are configured. */
  limits?: Record<string, never>;
} & JetStreamStatsJson & {
    streams: number;
    consumers: number;
    messages: number;
    bytes: number;
    account_details?: AccountDetailJson[];
  };

/** nats-server `JSzOptions`, decoded from the query string. */
export type JszOptions = {
  readonly account: string;
  readonly accounts: boolean;
  readonly streams: boolean;
  readonly consumers: boolean;
  readonly config: boolean;
  readonly leaderOnly: boolean;
  readonly offset: number;
  readonly limit: number;
  readonly raftGroups: boolean;
  readonly streamLeaderOnly: boolean;
};

/** Everything off: the plain `/jsz` document. */
export const JSZ_OPTIONS_DEFAULT: JszOptions = {
  account: '',
  accounts: false,
  streams: false,
  consumers: false,
  config: false,
  leaderOnly: false,
  offset: 0,
  limit: 0,
  raftGroups: false,
  streamLeaderOnly: false,
};

/** Decodes in HandleJsz's order, so the first bad parameter is the one reported. */
export function parseJszQuery(query: URLSearchParams): JszOptions {
  const accounts = decodeBool(query, 'accounts');
  const streams = decodeBool(query, 'streams');
  const consumers = decodeBool(query, 'consumers');
  const config = decodeBool(query, 'config');
  const offset = decodeInt(query, 'offset');
  const limit = decodeInt(query, 'limit');
  const leaderOnly = decodeBool(query, 'leader-only');
  const raftGroups = decodeBool(query, 'raft');
  const streamLeaderOnly = decodeBool(query, 'stream-leader-only');
  return { account: queryString(query, 'acc'), accounts, streams, consumers, config, leaderOnly, offset, limit, raftGroups, streamLeaderOnly };
}

const dynamicConfigs = new WeakMap<JetStream, JetStreamConfigJson>();

/**
 * `config` of a running JetStream. canopy has no server-wide memory or storage
 * limit, so it reports what nats-server computes when none is configured
 * (dynJetStreamConfig): 75% of system memory and 75% of the disk space
 * available under store_dir, measured once, when first asked.
 */
export function jetStreamConfigJson(jetstream: JetStream): JetStreamConfigJson {
  let config = dynamicConfigs.get(jetstream);
  if (config === undefined) {
    const storeDir = jetstream.options.storeDir;
    config = { max_memory: dynamicMaxMemory(), max_storage: dynamicMaxStorage(storeDir), store_dir: storeDir };
    dynamicConfigs.set(jetstream, config);
  }
  return { ...config };
}

/** Go `sysMem / 4 * 3` (integer division). */
function dynamicMaxMemory(): number {
  const bytes = totalmem();
  return bytes > 0 ? Math.floor(bytes / 4) * 3 : MAX_MEMORY_FALLBACK;
}

/** Go diskAvailable: `Bavail * Bsize / 4 * 3`, or 1 TiB when statfs fails. */
function dynamicMaxStorage(storeDir: string): number {
  try {
    const stats = statfsSync(storeDir, { bigint: true });
    return Number(((stats.bavail * stats.bsize) / 4n) * 3n);
  } catch {
    return MAX_STORAGE_FALLBACK;
  }
}

/** The disabled form's config: Go's zero JetStreamConfig. */
function disabledConfigJson(): JetStreamConfigJson {
  return { max_memory: 0, max_storage: 0 };
}

/** Server-wide usage: one pass over the streams. */
type Usage = {
  memory: number;
  storage: number;
  reservedMemory: number;
  reservedStorage: number;
  streams: number;
  consumers: number;
  messages: number;
};

function emptyUsage(): Usage {
  return { memory: 0, storage: 0, reservedMemory: 0, reservedStorage: 0, streams: 0, consumers: 0, messages: 0 };
}

function measureUsage(jetstream: JetStream): Usage {
  const usage = emptyUsage();
  for (const stream of jetstream.streams.values()) {
    const state = stream.store.state();
    const reserved = stream.config.max_bytes > 0 ? stream.config.max_bytes : 0;
    if (stream.config.storage === 'memory') {
      usage.memory += state.bytes;
      usage.reservedMemory += reserved;
    } else {
      usage.storage += state.bytes;
      usage.reservedStorage += reserved;
    }
    usage.streams++;
    usage.consumers += jetstream.consumers?.consumerCount(stream) ?? 0;
    usage.messages += state.messages;
  }
  return usage;
}

/** Every account's JetStream, sorted by account name (nats-server sorts its account list). */
export function accountJetStreams(context: MonitorContext): [string, JetStream][] {
  const entries = [...context.accountJetStreams];
  if (entries.length === 0 && context.jetstream !== undefined) entries.push([GLOBAL_ACCOUNT, context.jetstream]);
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * `JetStreamStats` of the server (/jsz top level and /varz `jetstream.stats`):
 * reserved sizes are the sum of the streams' `max_bytes` (nats-server
 * reserveStreamResources), summed over the JetStream accounts; no raft nodes.
 */
export function jetStreamStatsJson(context: MonitorContext): JetStreamStatsJson {
  return serverStats(accountJetStreams(context)).stats;
}

/** The server's stats and usage: every account's, added up. */
function serverStats(entries: readonly [string, JetStream][]): { stats: JetStreamStatsJson; usage: Usage } {
  const usage = emptyUsage();
  const api = { total: 0, errors: 0 };
  for (const [, jetstream] of entries) {
    const each = measureUsage(jetstream);
    for (const key of Object.keys(usage) as (keyof Usage)[]) usage[key] += each[key];
    api.total += jetstream.apiTotal;
    api.errors += jetstream.apiErrors;
  }
  return { stats: statsFromUsage(usage, api, entries.length), usage };
}

function statsFromUsage(usage: Usage, api: JetStreamApiStatsJson, accounts: number): JetStreamStatsJson {
  return {
    memory: usage.memory,
    storage: usage.storage,
    reserved_memory: usage.reservedMemory,
    reserved_storage: usage.reservedStorage,
    accounts,
    ha_assets: 0,
    api,
  };
}

/** A stream's consumers sorted by name, when the consumer layer is canopy's registry. */
function streamConsumers(jetstream: JetStream, stream: Stream): readonly Consumer[] {
  const layer = jetstream.consumers;
  return layer instanceof ConsumerRegistry ? layer.list(stream.name) : [];
}

/** Looks a consumer up by name (for /healthz). */
export function findConsumer(jetstream: JetStream, streamName: string, consumerName: string): Consumer | undefined {
  const layer = jetstream.consumers;
  return layer instanceof ConsumerRegistry ? layer.get(streamName, consumerName) : undefined;
}

function streamDetail(context: MonitorContext, jetstream: JetStream, stream: Stream, options: JszOptions): StreamDetailJson {
  const info = buildStreamInfo(stream, { consumerCount: jetstream.consumers?.consumerCount(stream) ?? 0 });
  // Go's field order: name, created, cluster, config (with config=true), state, consumer_detail.
  const detail: StreamDetailJson = {
    name: stream.name,
    created: info['created'] as string,
    cluster: { leader: context.server.serverName },
    ...(options.config ? { config: stream.config } : {}),
    state: info['state'] as Record<string, unknown>,
  };
  return withConsumers(detail, jetstream, stream, options);
}

function withConsumers(detail: StreamDetailJson, jetstream: JetStream, stream: Stream, options: JszOptions): StreamDetailJson {
  if (!options.consumers) return detail;
  const consumers = streamConsumers(jetstream, stream).map((consumer) => {
    const info = consumer.info();
    if (options.config) return info;
    // nats-server sets ConsumerInfo.Config to nil (omitted) without config=true.
    const { config: _config, ...rest } = info;
    return rest;
  });
  if (consumers.length > 0) detail.consumer_detail = consumers;
  return detail;
}

/** `AccountDetail` of one account; streams (sorted by name) only when asked for. */
function accountDetail(context: MonitorContext, account: string, jetstream: JetStream, options: JszOptions): AccountDetailJson {
  const usage = measureUsage(jetstream);
  const detail: AccountDetailJson = {
    name: account,
    id: account,
    memory: usage.memory,
    storage: usage.storage,
    // Accounts have nats-server's default tier limits (-1, unlimited), written as uint64.
    reserved_memory: UINT64_MAX,
    reserved_storage: UINT64_MAX,
    accounts: 0,
    ha_assets: 0,
    api: { total: jetstream.apiTotal, errors: jetstream.apiErrors },
  };
  if (!options.streams) return detail;
  const streams = [...jetstream.streams.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // stream-leader-only: a single server leads every stream, so nothing is skipped.
  const details = streams.map((stream) => streamDetail(context, jetstream, stream, options));
  if (details.length > 0) detail.stream_detail = details;
  return detail;
}

/**
 * The /jsz document. Throws MonitorRequestError (400) for `leader-only` while
 * JetStream is off, as nats-server does ("filtered response: not leader").
 */
export function buildJsz(context: MonitorContext, options: JszOptions, nowMs: number = Date.now()): JsInfoJson {
  const jetstream = context.jetstream;
  const entries = accountJetStreams(context);
  // nats-server Jsz: consumers imply streams; streams imply accounts unless one account is named.
  const consumers = options.consumers;
  const streams = options.streams || consumers;
  const accounts = options.accounts || (streams && options.account === '');
  const limit = options.limit === 0 ? JSZ_LIMIT_DEFAULT : options.limit;
  const effective: JszOptions = { ...options, consumers, streams, accounts, limit };
  const head = { server_id: context.server.serverId, now: formatGoTime(nowMs) };
  if (jetstream === undefined) {
    if (effective.leaderOnly) throw new MonitorRequestError('filtered response: not leader');
    return {
      ...head,
      disabled: true,
      config: disabledConfigJson(),
      memory: 0,
      storage: 0,
      reserved_memory: 0,
      reserved_storage: 0,
      accounts: 0,
      ha_assets: 0,
      api: { total: 0, errors: 0 },
      streams: 0,
      consumers: 0,
      messages: 0,
      bytes: 0,
    };
  }
  // leader-only: a single server is its own meta leader, so it always answers.
  const { stats, usage } = serverStats(entries);
  const info: JsInfoJson = {
    ...head,
    config: jetStreamConfigJson(jetstream),
    limits: {},
    ...stats,
    streams: usage.streams,
    consumers: usage.consumers,
    messages: usage.messages,
    bytes: usage.memory + usage.storage,
  };
  const listed = selectAccounts(entries, effective);
  if (listed.length > 0) info.account_details = listed.map(([account, each]) => accountDetail(context, account, each, effective));
  return info;
}

/**
 * The accounts the options select: nats-server's filter logic over its sorted
 * account list (`acc=` match, else `accounts` paged by `offset`/`limit`, else
 * none; an `acc` that names no JetStream account falls through to `accounts`).
 * Negative `offset` or `limit` (nats-server panics slicing with them) select nothing.
 */
function selectAccounts(entries: readonly [string, JetStream][], options: JszOptions): [string, JetStream][] {
  const named = entries.filter(([account]) => account === options.account);
  if (named.length > 0) return named;
  if (!options.accounts) return [];
  if (options.offset < 0 || options.limit < 0) return [];
  return entries.slice(options.offset, options.offset + options.limit);
}

/** GET /jsz. nats-server parity: HandleJsz counts the request before decoding the parameters. */
export function handleJsz(context: MonitorContext, query: URLSearchParams): MonitorResponse {
  countRequest(context, MonitorPath.jsz);
  return jsonResponse(buildJsz(context, parseJszQuery(query)));
}
