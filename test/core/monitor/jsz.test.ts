/**
 * JetStream monitoring against a real broker (startTestBroker: JetStream on, a
 * temp store_dir): streams and consumers are made and used with the official
 * @nats-io/jetstream client, then /jsz, /varz `jetstream`, /healthz (js
 * parameters, recovery check) and the `jetstream_*` Prometheus series are
 * fetched over HTTP and checked value by value (nats-server server/monitor.go
 * and prometheus-nats-exporter collector/jsz.go are the references).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { startMonitor } from '../../../core/monitor/http.ts';
import { resolveServerOptions } from '../../../core/server/options.ts';
import { Server } from '../../../core/server/server.ts';
import { LmdbJetStreamStorage } from '../../../core/store/lmdb/lmdb-jetstream-storage.ts';
import { silentLogger } from '../../../core/util/logger.ts';
import { startTestBroker, type TestBroker } from '../../helpers/broker.ts';

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
/** Go's uint64(-1): nats-server's reserved sizes of an account without limits. */
const UINT64_MAX_TEXT = '18446744073709551615';

type Json = Record<string, unknown>;

async function getText(srv: TestBroker, path: string, status = 200): Promise<string> {
  const response = await fetch(srv.httpUrl + path);
  const text = await response.text();
  assert.equal(response.status, status, `${path}: ${text}`);
  return text;
}

async function getJson(srv: TestBroker, path: string, status = 200): Promise<Json> {
  return JSON.parse(await getText(srv, path, status)) as Json;
}

function accountDetails(jsz: Json): Json[] {
  return (jsz['account_details'] ?? []) as Json[];
}

function streamDetails(jsz: Json): Json[] {
  return (accountDetails(jsz)[0]?.['stream_detail'] ?? []) as Json[];
}

function consumerDetails(stream: Json | undefined): Json[] {
  return (stream?.['consumer_detail'] ?? []) as Json[];
}

/** `name{labels} value` lines of one metric in the Prometheus text. */
function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const samples: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, close) : '';
    const labels: Record<string, string> = {};
    for (const match of labelText.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[match[1]!] = match[2]!;
    samples.push({ labels, value: Number(line.slice((close === -1 ? name.length : close + 1)).trim()) });
  }
  return samples;
}

function metricValue(text: string, name: string, match: Record<string, string> = {}): number | undefined {
  const found = metricSamples(text, name).filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(match)}: ${found.length} samples`);
  return found[0]?.value;
}

describe('JetStream monitoring', () => {
  let srv: TestBroker;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  let serverId: string;

  before(async () => {
    srv = await startTestBroker();
    serverId = srv.broker.server.serverId;
    nc = await connect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    // ORDERS: file, 5 messages on 2 subjects, 1 MB reserved. CACHE: memory, 2 messages, 4 KiB reserved.
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'], max_bytes: 1_000_000 });
    await jsm.streams.add({ name: 'CACHE', subjects: ['cache.>'], storage: StorageType.Memory, max_bytes: 4096 });
    for (let i = 1; i <= 3; i++) await js.publish('orders.new', `new-${i}`);
    for (let i = 1; i <= 2; i++) await js.publish('orders.paid', `paid-${i}`);
    await js.publish('cache.a', 'a');
    await js.publish('cache.b', 'b');
    await jsm.consumers.add('ORDERS', { durable_name: 'worker', ack_policy: AckPolicy.Explicit, description: 'order worker' });
    await jsm.consumers.add('ORDERS', { durable_name: 'audit', ack_policy: AckPolicy.Explicit, filter_subject: 'orders.paid' });
    await jsm.consumers.add('CACHE', { durable_name: 'reader', ack_policy: AckPolicy.Explicit });
    // worker: seq 1 acked, seq 2 nak'ed and redelivered (unacked), seq 3 unacked.
    const worker = await js.consumers.get('ORDERS', 'worker');
    const first = await worker.next({ expires: 2000 });
    const second = await worker.next({ expires: 2000 });
    const third = await worker.next({ expires: 2000 });
    assert.deepEqual([first?.seq, second?.seq, third?.seq], [1, 2, 3]);
    assert.equal(await first!.ackAck(), true);
    second!.nak();
    await nc.flush();
    const again = await worker.next({ expires: 2000 });
    assert.equal(again?.seq, 2);
    assert.equal(again?.redelivered, true);
    // One API error: info of a stream that does not exist.
    await assert.rejects(jsm.streams.info('MISSING'));
  });

  after(async () => {
    await nc.close();
    await srv.close();
  });

  test('/jsz reports config, usage and totals without details by default', async () => {
    const orders = await jsm.streams.info('ORDERS');
    const cache = await jsm.streams.info('CACHE');
    const account = await jsm.getAccountInfo();
    const jsz = await getJson(srv, '/jsz');
    assert.deepEqual(Object.keys(jsz), [
      'server_id', 'now', 'config', 'limits', 'memory', 'storage', 'reserved_memory', 'reserved_storage',
      'accounts', 'ha_assets', 'api', 'streams', 'consumers', 'messages', 'bytes',
    ]);
    assert.equal(jsz['server_id'], serverId);
    assert.match(jsz['now'] as string, RFC3339);
    const config = jsz['config'] as Json;
    assert.equal(config['store_dir'], srv.storeDir);
    assert.equal(config['max_memory'], Math.floor(totalmem() / 4) * 3);
    assert.ok((config['max_storage'] as number) > 0);
    assert.deepEqual(jsz['limits'], {});
    assert.equal(jsz['storage'], orders.state.bytes);
    assert.equal(jsz['memory'], cache.state.bytes);
    assert.ok(orders.state.bytes > 0 && cache.state.bytes > 0);
    assert.equal(jsz['reserved_storage'], 1_000_000);
    assert.equal(jsz['reserved_memory'], 4096);
    assert.equal(jsz['accounts'], 1);
    assert.equal(jsz['ha_assets'], 0);
    // $JS.API.INFO counts itself; nothing else reached the API since.
    assert.deepEqual(jsz['api'], { total: account.api.total, errors: 1 });
    assert.equal(account.api.errors, 1);
    assert.equal(jsz['streams'], 2);
    assert.equal(jsz['consumers'], 3);
    assert.equal(jsz['messages'], 7);
    assert.equal(jsz['bytes'], orders.state.bytes + cache.state.bytes);
    const varz = await getJson(srv, '/varz');
    assert.equal((varz['http_req_stats'] as Record<string, number>)['/jsz'], 1);
  });

  test('/jsz?accounts=true lists $G with uint64 reserved sizes, exactly as Go writes them', async () => {
    const text = await getText(srv, '/jsz?accounts=true');
    assert.ok(text.includes(`"reserved_memory": ${UINT64_MAX_TEXT},`), text);
    assert.ok(text.includes(`"reserved_storage": ${UINT64_MAX_TEXT},`), text);
    const jsz = JSON.parse(text) as Json;
    const details = accountDetails(jsz);
    assert.equal(details.length, 1);
    const detail = details[0]!;
    assert.deepEqual(Object.keys(detail), [
      'name', 'id', 'memory', 'storage', 'reserved_memory', 'reserved_storage', 'accounts', 'ha_assets', 'api',
    ]);
    assert.equal(detail['name'], '$G');
    assert.equal(detail['id'], '$G');
    assert.equal(detail['storage'], jsz['storage']);
    assert.equal(detail['memory'], jsz['memory']);
    assert.equal(detail['accounts'], 0);
    assert.equal(detail['ha_assets'], 0);
    assert.deepEqual(detail['api'], jsz['api']);
  });

  test('/jsz?streams=true adds stream_detail (sorted, led by this server) without config or consumers', async () => {
    const jsz = await getJson(srv, '/jsz?streams=true');
    const streams = streamDetails(jsz);
    assert.deepEqual(streams.map((s) => s['name']), ['CACHE', 'ORDERS']);
    const orders = streams[1]!;
    assert.deepEqual(Object.keys(orders), ['name', 'created', 'cluster', 'state']);
    assert.deepEqual(orders['cluster'], { leader: srv.broker.server.serverName });
    const info = await jsm.streams.info('ORDERS');
    assert.equal(orders['created'], info.created);
    const state = orders['state'] as Json;
    assert.equal(state['messages'], 5);
    assert.equal(state['bytes'], info.state.bytes);
    assert.equal(state['first_seq'], 1);
    assert.equal(state['last_seq'], 5);
    assert.equal(state['num_subjects'], 2);
    assert.equal(state['consumer_count'], 2);
    assert.equal((streams[0]!['state'] as Json)['consumer_count'], 1);
  });

  test('/jsz?consumers=true adds ConsumerInfo per stream; config only with config=true', async () => {
    const jsz = await getJson(srv, '/jsz?consumers=true');
    const orders = streamDetails(jsz).find((s) => s['name'] === 'ORDERS');
    const consumers = consumerDetails(orders);
    assert.deepEqual(consumers.map((c) => c['name']), ['audit', 'worker']);
    const worker = consumers[1]!;
    assert.equal(worker['config'], undefined);
    assert.equal(worker['stream_name'], 'ORDERS');
    assert.equal((worker['delivered'] as Json)['consumer_seq'], 4);
    assert.equal((worker['delivered'] as Json)['stream_seq'], 3);
    assert.equal((worker['ack_floor'] as Json)['consumer_seq'], 1);
    assert.equal((worker['ack_floor'] as Json)['stream_seq'], 1);
    assert.equal(worker['num_ack_pending'], 2);
    assert.equal(worker['num_redelivered'], 1);
    assert.equal(worker['num_pending'], 2);
    assert.equal(consumers[0]!['num_pending'], 2, 'audit sees the two orders.paid messages');
    assert.equal(orders?.['config'], undefined);

    const withConfig = await getJson(srv, '/jsz?consumers=true&config=true');
    const ordersWithConfig = streamDetails(withConfig).find((s) => s['name'] === 'ORDERS')!;
    assert.deepEqual(Object.keys(ordersWithConfig), ['name', 'created', 'cluster', 'config', 'state', 'consumer_detail']);
    assert.equal((ordersWithConfig['config'] as Json)['max_bytes'], 1_000_000);
    assert.deepEqual((ordersWithConfig['config'] as Json)['subjects'], ['orders.>']);
    const workerConfig = consumerDetails(ordersWithConfig).find((c) => c['name'] === 'worker')?.['config'] as Json;
    assert.equal(workerConfig['description'], 'order worker');
    assert.equal(workerConfig['ack_policy'], 'explicit');
  });

  test('/jsz account filter and paging follow nats-server Jsz', async () => {
    const named = await getJson(srv, '/jsz?acc=$G');
    assert.equal(accountDetails(named).length, 1);
    assert.equal(accountDetails(named)[0]!['stream_detail'], undefined, 'acc alone does not list streams');
    const namedStreams = await getJson(srv, '/jsz?acc=%24G&streams=true');
    assert.deepEqual(streamDetails(namedStreams).map((s) => s['name']), ['CACHE', 'ORDERS']);
    // An unknown account with streams=true lists nothing (nats-server PR #5229)...
    assert.equal((await getJson(srv, '/jsz?acc=NOPE&streams=true'))['account_details'], undefined);
    // ...but with accounts=true the filter falls through to the account list (nats-server quirk).
    assert.equal(accountDetails(await getJson(srv, '/jsz?acc=NOPE&accounts=true')).length, 1);
    assert.equal(accountDetails(await getJson(srv, '/jsz?accounts=true&offset=0&limit=1')).length, 1);
    assert.equal((await getJson(srv, '/jsz?accounts=true&offset=1'))['account_details'], undefined);
    assert.equal((await getJson(srv, '/jsz?accounts=true&offset=5'))['account_details'], undefined);
    // Negative offset/limit make nats-server panic (dropped connection); canopy lists nothing.
    assert.equal((await getJson(srv, '/jsz?accounts=true&offset=-1'))['account_details'], undefined);
    assert.equal((await getJson(srv, '/jsz?accounts=true&limit=-1'))['account_details'], undefined);
    // leader-only, raft and stream-leader-only change nothing on a single server.
    const all = await getJson(srv, '/jsz?consumers=true&leader-only=true&raft=true&stream-leader-only=true');
    assert.deepEqual(streamDetails(all).map((s) => s['name']), ['CACHE', 'ORDERS']);
    assert.equal(streamDetails(all)[1]!['stream_raft_group'], undefined);
  });

  test('/jsz rejects bad parameters with nats-server texts', async () => {
    assert.deepEqual(await getJson(srv, '/jsz?consumers=maybe', 400), {
      error: `Error decoding boolean for 'consumers': strconv.ParseBool: parsing "maybe": invalid syntax`,
    });
    assert.deepEqual(await getJson(srv, '/jsz?offset=x', 400), {
      error: `Error decoding int for 'offset': strconv.Atoi: parsing "x": invalid syntax`,
    });
  });

  test('/varz jetstream carries config, stats and limits', async () => {
    const varz = await getJson(srv, '/varz');
    const section = varz['jetstream'] as Json;
    assert.deepEqual(Object.keys(section), ['config', 'stats', 'limits']);
    const jsz = await getJson(srv, '/jsz');
    assert.deepEqual(section['config'], jsz['config']);
    assert.deepEqual(section['limits'], {});
    const orders = await jsm.streams.info('ORDERS');
    const stats = section['stats'] as Json;
    assert.deepEqual(Object.keys(stats), ['memory', 'storage', 'reserved_memory', 'reserved_storage', 'accounts', 'ha_assets', 'api']);
    assert.equal(stats['storage'], orders.state.bytes);
    assert.equal(stats['memory'], jsz['memory']);
    assert.equal(stats['reserved_storage'], 1_000_000);
    assert.equal(stats['reserved_memory'], 4096);
    assert.equal(stats['accounts'], 1);
    assert.equal(stats['ha_assets'], 0);
    assert.deepEqual(stats['api'], jsz['api']);
  });

  test('/healthz checks JetStream and the named account, stream and consumer', async () => {
    assert.equal(await getText(srv, '/healthz'), '{"status":"ok"}');
    assert.equal(await getText(srv, '/healthz?js-enabled-only=true'), '{"status":"ok"}');
    assert.equal(await getText(srv, '/healthz?js-server-only=true'), '{"status":"ok"}');
    assert.equal(await getText(srv, '/healthz?account=$G&stream=ORDERS&consumer=worker'), '{"status":"ok"}');
    assert.deepEqual(await getJson(srv, '/healthz?account=$G&stream=ORDERS&consumer=nope', 404), {
      status: 'unavailable',
      error: 'JetStream consumer "nope" not found for stream "ORDERS" on account "$G"',
    });
    assert.deepEqual(await getJson(srv, '/healthz?account=$G&stream=NOPE', 404), {
      status: 'unavailable',
      error: 'JetStream stream "NOPE" not found on account "$G"',
    });
    // Memory streams have nothing on disk: nats-server's check does not see them either.
    assert.equal((await getJson(srv, '/healthz?account=$G&stream=CACHE', 404))['status'], 'unavailable');
    assert.deepEqual(await getJson(srv, '/healthz?account=NOPE&details=true', 404), {
      status: 'error',
      errors: [{ type: 'ACCOUNT', account: 'NOPE', error: 'JetStream account "NOPE" not found' }],
    });
    // js-server-only skips the JetStream checks, so the unknown account does not matter.
    assert.equal(await getText(srv, '/healthz?account=NOPE&js-server-only=true'), '{"status":"ok"}');
  });

  test('/metrics exposes the exporter JetStream series with its names, labels and values', async () => {
    const jszRequests = ((await getJson(srv, '/varz'))['http_req_stats'] as Record<string, number>)['/jsz'];
    const text = await getText(srv, '/metrics');
    assert.ok(jszRequests !== undefined && jszRequests > 0);
    assert.equal(metricValue(text, 'gnatsd_varz_http_req_stats_jsz'), jszRequests);
    const serverName = srv.broker.server.serverName;
    assert.ok(text.includes('# HELP jetstream_server_total_streams Total number of streams in JetStream\n'));
    assert.ok(text.includes('# TYPE jetstream_server_total_streams gauge\n'));
    const server = metricSamples(text, 'jetstream_server_total_streams');
    assert.deepEqual(server, [
      {
        labels: { server_id: serverId, server_name: serverName, cluster: '', domain: '', meta_leader: '', is_meta_leader: 'true' },
        value: 2,
      },
    ]);
    const orders = await jsm.streams.info('ORDERS');
    const cache = await jsm.streams.info('CACHE');
    assert.equal(metricValue(text, 'jetstream_server_jetstream_disabled'), 0);
    assert.equal(metricValue(text, 'jetstream_server_total_consumers'), 3);
    assert.equal(metricValue(text, 'jetstream_server_total_messages'), 7);
    assert.equal(metricValue(text, 'jetstream_server_total_message_bytes'), orders.state.bytes + cache.state.bytes);
    assert.equal(metricValue(text, 'jetstream_server_max_memory'), Math.floor(totalmem() / 4) * 3);
    assert.equal(metricValue(text, 'jetstream_account_storage_used', { account: '$G' }), orders.state.bytes);
    assert.equal(metricValue(text, 'jetstream_account_memory_used', { account_id: '$G' }), cache.state.bytes);
    assert.equal(metricValue(text, 'jetstream_account_max_storage', { account_name: '$G' }), 2 ** 64);

    const [ordersMessages] = metricSamples(text, 'jetstream_stream_total_messages').filter((s) => s.labels['stream_name'] === 'ORDERS');
    assert.deepEqual(ordersMessages?.labels, {
      server_id: serverId, server_name: serverName, cluster: '', domain: '', meta_leader: '', is_meta_leader: 'true',
      account: '$G', account_name: '$G', account_id: '$G',
      stream_name: 'ORDERS', stream_leader: serverName, is_stream_leader: 'true', stream_raft_group: '',
    });
    assert.equal(ordersMessages?.value, 5);
    assert.equal(metricValue(text, 'jetstream_stream_total_messages', { stream_name: 'CACHE' }), 2);
    assert.equal(metricValue(text, 'jetstream_stream_total_bytes', { stream_name: 'ORDERS' }), orders.state.bytes);
    assert.equal(metricValue(text, 'jetstream_stream_first_seq', { stream_name: 'ORDERS' }), 1);
    assert.equal(metricValue(text, 'jetstream_stream_last_seq', { stream_name: 'ORDERS' }), 5);
    assert.equal(metricValue(text, 'jetstream_stream_consumer_count', { stream_name: 'ORDERS' }), 2);
    assert.equal(metricValue(text, 'jetstream_stream_subject_count', { stream_name: 'ORDERS' }), 2);
    assert.equal(metricValue(text, 'jetstream_stream_limit_bytes', { stream_name: 'CACHE' }), 4096);
    assert.equal(metricValue(text, 'jetstream_stream_limit_messages', { stream_name: 'ORDERS' }), -1);

    const worker = { stream_name: 'ORDERS', consumer_name: 'worker' };
    const [workerPending] = metricSamples(text, 'jetstream_consumer_num_pending').filter((s) => s.labels['consumer_name'] === 'worker');
    assert.equal(workerPending?.labels['consumer_desc'], 'order worker');
    assert.equal(workerPending?.labels['consumer_leader'], '');
    assert.equal(workerPending?.labels['is_consumer_leader'], 'true');
    assert.equal(workerPending?.value, 2);
    assert.equal(metricValue(text, 'jetstream_consumer_num_ack_pending', worker), 2);
    assert.equal(metricValue(text, 'jetstream_consumer_num_redelivered', worker), 1);
    assert.equal(metricValue(text, 'jetstream_consumer_num_waiting', worker), 0);
    assert.equal(metricValue(text, 'jetstream_consumer_delivered_consumer_seq', worker), 4);
    assert.equal(metricValue(text, 'jetstream_consumer_delivered_stream_seq', worker), 3);
    assert.equal(metricValue(text, 'jetstream_consumer_ack_floor_stream_seq', worker), 1);
    assert.equal(metricValue(text, 'jetstream_consumer_ack_floor_consumer_seq', worker), 1);
    const sinceDelivery = metricValue(text, 'jetstream_consumer_last_delivery_seconds', worker);
    assert.ok(sinceDelivery !== undefined && sinceDelivery >= 0 && sinceDelivery < 60, String(sinceDelivery));
    assert.ok(metricValue(text, 'jetstream_consumer_last_ack_seconds', worker) !== undefined);
    // The exporter emits last_* only when the consumer has delivered / been acked.
    assert.equal(metricValue(text, 'jetstream_consumer_last_delivery_seconds', { consumer_name: 'audit' }), undefined);
    assert.equal(metricValue(text, 'jetstream_consumer_num_pending', { consumer_name: 'audit' }), 2);
    assert.equal(metricValue(text, 'jetstream_consumer_num_pending', { stream_name: 'CACHE', consumer_name: 'reader' }), 2);
  });

  test('/metrics JetStream series are computed at scrape time', async () => {
    await jsm.consumers.add('CACHE', { durable_name: 'temp', ack_policy: AckPolicy.Explicit });
    await js.publish('cache.c', 'c');
    const before = await getText(srv, '/metrics');
    assert.equal(metricValue(before, 'jetstream_consumer_num_pending', { consumer_name: 'temp' }), 3);
    assert.equal(metricValue(before, 'jetstream_server_total_consumers'), 4);
    await jsm.consumers.delete('CACHE', 'temp');
    const later = await getText(srv, '/metrics');
    assert.equal(metricValue(later, 'jetstream_consumer_num_pending', { consumer_name: 'temp' }), undefined);
    assert.equal(metricValue(later, 'jetstream_server_total_consumers'), 3);
    assert.equal(metricValue(later, 'jetstream_stream_total_messages', { stream_name: 'CACHE' }), 3);
  });
});

test('with JetStream disabled /jsz is the disabled form and the JetStream series say so', async (t) => {
  const srv = await startTestBroker({ jetstream: false });
  t.after(() => srv.close());
  const jsz = await getJson(srv, '/jsz');
  assert.match(jsz['now'] as string, RFC3339);
  assert.deepEqual({ ...jsz, now: '' }, {
    server_id: srv.broker.server.serverId,
    now: '',
    disabled: true,
    config: { max_memory: 0, max_storage: 0 },
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
  });
  assert.deepEqual(Object.keys(jsz).slice(0, 4), ['server_id', 'now', 'disabled', 'config']);
  assert.deepEqual((await getJson(srv, '/jsz?accounts=true&consumers=true'))['account_details'], undefined);
  assert.deepEqual(await getJson(srv, '/jsz?leader-only=true', 400), { error: 'filtered response: not leader' });
  assert.deepEqual((await getJson(srv, '/varz'))['jetstream'], {});
  assert.equal(await getText(srv, '/healthz'), '{"status":"ok"}');
  assert.equal(await getText(srv, '/healthz?account=$G'), '{"status":"ok"}', 'no JetStream: nothing to find');
  const metrics = await getText(srv, '/metrics');
  assert.equal(metricValue(metrics, 'jetstream_server_jetstream_disabled'), 1);
  assert.equal(metricValue(metrics, 'jetstream_server_total_streams'), 0);
  assert.equal(metricValue(metrics, 'jetstream_server_max_memory'), 0);
  assert.deepEqual(metricSamples(metrics, 'jetstream_account_storage_used'), []);
});

test('/healthz reports a stored stream that could not be recovered', async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-jsz-test-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  // A stream meta JetStream will refuse to load (replicas > 1 on a single server), next to a good one.
  const storage = LmdbJetStreamStorage.open(storeDir);
  await storage.saveStreamMeta('GHOST', { config: { name: 'GHOST', subjects: ['ghost.>'], storage: 'file', num_replicas: 3 } });
  await storage.close();
  const srv = await startTestBroker({ store_dir: storeDir });
  t.after(() => srv.close());
  const nc = await connect({ servers: srv.url });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'GOOD', subjects: ['good.>'] });

  assert.deepEqual(await getJson(srv, '/healthz', 503), {
    status: 'unavailable',
    error: "JetStream stream '$G > GHOST' could not be recovered",
  });
  assert.deepEqual(await getJson(srv, '/healthz?details=true', 503), {
    status: 'error',
    errors: [{ type: 'STREAM', account: '$G', stream: 'GHOST', error: "JetStream stream '$G > GHOST' could not be recovered" }],
  });
  // Checks scoped to the healthy stream, or to the listener / JetStream alone, pass.
  assert.equal(await getText(srv, '/healthz?account=$G&stream=GOOD'), '{"status":"ok"}');
  assert.equal(await getText(srv, '/healthz?js-enabled-only=true'), '{"status":"ok"}');
  assert.equal(await getText(srv, '/healthz?js-server-only=1'), '{"status":"ok"}');
  const metrics = await getText(srv, '/metrics');
  assert.equal(metricValue(metrics, 'gnatsd_healthz_status'), 1);
  assert.equal(metricValue(metrics, 'jetstream_server_total_streams'), 1, 'GHOST is not loaded');
});

test('/healthz: JetStream configured but not running is unavailable (nats-server NewJSNotEnabledError)', async (t) => {
  const server = new Server({ options: resolveServerOptions({ addr: '127.0.0.1', port: -1, jetstream: true }), log: silentLogger });
  await server.start();
  // The monitor is given no JetStream although the options turn it on.
  const monitor = await startMonitor({ server, host: '127.0.0.1', port: 0, log: silentLogger });
  t.after(async () => {
    await monitor.close();
    await server.shutdown();
  });
  const url = `http://127.0.0.1:${monitor.port}`;
  const plain = await fetch(`${url}/healthz`);
  assert.equal(plain.status, 503);
  assert.equal(await plain.text(), '{"status":"unavailable","error":"JetStream not enabled (10076)"}');
  const detailed = await fetch(`${url}/healthz?details=1`);
  assert.equal(detailed.status, 503);
  assert.deepEqual(await detailed.json(), { status: 'error', errors: [{ type: 'JETSTREAM', error: 'JetStream not enabled (10076)' }] });
  const serverOnly = await fetch(`${url}/healthz?js-server-only=true`);
  assert.equal(serverOnly.status, 200);
  await serverOnly.body?.cancel();
});
