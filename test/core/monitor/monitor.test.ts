/**
 * Monitoring endpoints against a real server: official nats.js clients connect,
 * publish and subscribe, then the test fetches /varz, /connz, /subsz, /healthz
 * and /metrics over HTTP and checks concrete values, shapes and error texts
 * (nats-server server/monitor.go is the reference).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startMonitor, type Monitor } from '../../../core/monitor/http.ts';
import { resolveServerOptions } from '../../../core/server/options.ts';
import { Server } from '../../../core/server/server.ts';
import { silentLogger } from '../../../core/util/logger.ts';
import { eventually } from '../../helpers/eventually.ts';

type Harness = {
  readonly server: Server;
  readonly monitor: Monitor;
  readonly natsUrl: string;
  readonly httpUrl: string;
  /** Connects an official client that never reconnects; closed by the test's cleanup. */
  client(name: string): Promise<NatsConnection>;
  getJson(path: string): Promise<Record<string, unknown>>;
};

/** Starts a server and its monitor on free loopback ports; everything is closed after the test. */
async function startHarness(t: TestContext, config: Record<string, unknown> = {}): Promise<Harness> {
  const server = new Server({
    // No JetStream here (test/core/monitor/jsz.test.ts covers it through a full broker).
    options: resolveServerOptions({ addr: '127.0.0.1', port: -1, http_port: -1, websocket_port: 0, jetstream: false, ...config }),
    log: silentLogger,
  });
  const { port } = await server.start();
  const monitor = await startMonitor({ server, host: '127.0.0.1', port: 0, log: silentLogger });
  const clients: NatsConnection[] = [];
  t.after(async () => {
    for (const client of clients) if (!client.isClosed()) await client.close();
    await monitor.close();
    await server.shutdown();
  });
  const natsUrl = `127.0.0.1:${port}`;
  const httpUrl = `http://127.0.0.1:${monitor.port}`;
  return {
    server,
    monitor,
    natsUrl,
    httpUrl,
    async client(name) {
      const client = await connect({ servers: natsUrl, name, reconnect: false });
      clients.push(client);
      return client;
    },
    async getJson(path) {
      const response = await fetch(httpUrl + path);
      assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
      assert.equal(response.headers.get('content-type'), 'application/json');
      return (await response.json()) as Record<string, unknown>;
    },
  };
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function connections(connz: Record<string, unknown>): Record<string, unknown>[] {
  return connz['connections'] as Record<string, unknown>[];
}

/** Subscribes with a callback and returns a live count of delivered messages. */
function countingSubscription(
  client: NatsConnection,
  subject: string,
  options: { queue?: string; max?: number } = {},
): { readonly count: number } {
  const counter = { count: 0 };
  client.subscribe(subject, {
    ...options,
    callback: () => {
      counter.count++;
    },
  });
  return counter;
}

async function publishMany(client: NatsConnection, subject: string, count: number, payload: string): Promise<void> {
  for (let i = 0; i < count; i++) client.publish(subject, payload);
  await client.flush();
}

test('varz counts messages, bytes, connections and subscriptions', async (t) => {
  const harness = await startHarness(t);
  const subscriber = await harness.client('subscriber');
  const publisher = await harness.client('publisher');
  const received = countingSubscription(subscriber, 'orders.>');
  await subscriber.flush();
  await publishMany(publisher, 'orders.new', 5, 'hello'); // 5 bytes each
  await eventually(() => assert.equal(received.count, 5));

  const varz = await harness.getJson('/varz');
  assert.equal(varz['server_id'], harness.server.serverId);
  assert.equal(varz['in_msgs'], 5);
  assert.equal(varz['out_msgs'], 5);
  assert.equal(varz['in_bytes'], 25);
  assert.equal(varz['out_bytes'], 25);
  assert.equal(varz['connections'], 2);
  assert.equal(varz['total_connections'], 2);
  assert.equal(varz['subscriptions'], 1);
  assert.equal(varz['slow_consumers'], 0);
  assert.equal(varz['port'], harness.server.addresses.port);
  assert.equal(varz['http_port'], harness.monitor.port);
  // Go encodings: time.Duration as integer nanoseconds, auth_timeout in seconds, RFC 3339 times.
  assert.equal(varz['ping_interval'], 120_000_000_000);
  assert.equal(varz['write_deadline'], 10_000_000_000);
  assert.equal(varz['auth_timeout'], 2);
  assert.match(varz['start'] as string, RFC3339);
  assert.match(varz['now'] as string, RFC3339);
  assert.match(varz['uptime'] as string, /^(\d+m)?\d+s$/);
  assert.ok((varz['mem'] as number) > 0);
  assert.ok((varz['cores'] as number) >= 1);
  assert.deepEqual(varz['jetstream'], {});
  assert.deepEqual(varz['websocket'], {});
  assert.deepEqual(varz['slow_consumer_stats'], { clients: 0, routes: 0, gateways: 0, leafs: 0 });
  // nats-server counts a /varz request before building the answer.
  assert.deepEqual(varz['http_req_stats'], { '/varz': 1 });

  await subscriber.close();
  await eventually(async () => {
    const after = await harness.getJson('/varz');
    assert.equal(after['connections'], 1);
    assert.equal(after['total_connections'], 2);
    assert.equal(after['subscriptions'], 0);
  });
});

test('varz is pretty-printed and reports the websocket listener when it is on', async (t) => {
  const harness = await startHarness(t, { websocket_port: -1, websocket_host: '127.0.0.1' });
  const response = await fetch(`${harness.httpUrl}/varz`);
  const text = await response.text();
  assert.ok(text.startsWith('{\n  "server_id": '), text.slice(0, 40));
  assert.equal(response.headers.get('access-control-allow-origin'), '*');
  const varz = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(varz['websocket'], {
    host: '127.0.0.1',
    port: harness.server.addresses.websocketPort,
    no_tls: true,
  });
});

test('connz pages with offset and limit and reports total', async (t) => {
  const harness = await startHarness(t);
  for (const name of ['c1', 'c2', 'c3']) await harness.client(name);
  const cids = [...harness.server.connections.keys()].sort((a, b) => a - b);
  assert.equal(cids.length, 3);

  const all = await harness.getJson('/connz');
  assert.equal(all['limit'], 1024);
  assert.equal(all['total'], 3);
  assert.equal(all['num_connections'], 3);
  assert.deepEqual(
    connections(all).map((c) => c['cid']),
    cids,
  );
  const first = connections(all)[0]!;
  assert.equal(first['kind'], 'Client');
  assert.equal(first['type'], 'nats');
  assert.equal(first['ip'], '127.0.0.1');
  assert.equal(first['name'], 'c1');
  assert.equal(first['lang'], 'nats.js');
  assert.match(first['start'] as string, RFC3339);
  assert.match(first['rtt'] as string, /^\d+(\.\d+)?(ns|µs|ms|s)$/);
  assert.equal(first['subscriptions_list'], undefined);

  const page = await harness.getJson('/connz?offset=1&limit=1');
  assert.equal(page['offset'], 1);
  assert.equal(page['limit'], 1);
  assert.equal(page['total'], 3);
  assert.equal(page['num_connections'], 1);
  assert.deepEqual(
    connections(page).map((c) => c['name']),
    ['c2'],
  );

  const beyond = await harness.getJson('/connz?offset=10');
  assert.equal(beyond['num_connections'], 0);
  assert.deepEqual(beyond['connections'], []);
  // nats-server parity: a non-positive limit means the default.
  assert.equal((await harness.getJson('/connz?limit=0'))['limit'], 1024);
});

test('connz sorts by msgs_from (descending) and by cid (ascending)', async (t) => {
  const harness = await startHarness(t);
  const quiet = await harness.client('quiet');
  const busy = await harness.client('busy');
  const medium = await harness.client('medium');
  await publishMany(quiet, 'a', 1, 'x');
  await publishMany(busy, 'a', 3, 'x');
  await publishMany(medium, 'a', 2, 'x');

  const byInMsgs = await harness.getJson('/connz?sort=msgs_from');
  assert.deepEqual(
    connections(byInMsgs).map((c) => [c['name'], c['in_msgs']]),
    [
      ['busy', 3],
      ['medium', 2],
      ['quiet', 1],
    ],
  );
  const byCid = await harness.getJson('/connz?sort=cid');
  assert.deepEqual(
    connections(byCid).map((c) => c['name']),
    ['quiet', 'busy', 'medium'],
  );
});

test('connz subs=detail lists subscription details; subs=1 lists subjects', async (t) => {
  const harness = await startHarness(t);
  const worker = await harness.client('worker');
  const publisher = await harness.client('publisher');
  const queued = countingSubscription(worker, 'orders.*', { queue: 'workers' });
  countingSubscription(worker, 'events.>', { max: 5 });
  await worker.flush();
  await publishMany(publisher, 'orders.new', 2, 'x');
  await eventually(() => assert.equal(queued.count, 2));

  const detailed = await harness.getJson(`/connz?subs=detail&cid=${worker.info!.client_id}`);
  const [info] = connections(detailed);
  assert.equal(info!['subscriptions'], 2);
  assert.equal(info!['subscriptions_list'], undefined);
  const details = (info!['subscriptions_list_detail'] as Record<string, unknown>[]).sort((a, b) =>
    String(a['subject']).localeCompare(String(b['subject'])),
  );
  const cid = worker.info!.client_id;
  // Open connections: no `account` (nats-server newClientSubDetail); `qgroup` and `max` only when set.
  assert.deepEqual(details, [
    { subject: 'events.>', sid: details[0]!['sid'], msgs: 0, max: 5, cid },
    { subject: 'orders.*', qgroup: 'workers', sid: details[1]!['sid'], msgs: 2, cid },
  ]);
  assert.match(details[0]!['sid'] as string, /^\d+$/);

  const plain = await harness.getJson(`/connz?subs=1&cid=${cid}`);
  assert.deepEqual((connections(plain)[0]!['subscriptions_list'] as string[]).sort(), ['events.>', 'orders.*']);
});

test('connz cid filter returns one connection and limit 1', async (t) => {
  const harness = await startHarness(t);
  await harness.client('one');
  const two = await harness.client('two');
  await harness.client('three');
  const cid = two.info!.client_id;
  const connz = await harness.getJson(`/connz?cid=${cid}`);
  assert.equal(connz['limit'], 1);
  assert.equal(connz['num_connections'], 1);
  assert.equal(connections(connz)[0]!['cid'], cid);
  assert.equal(connections(connz)[0]!['name'], 'two');
  const missing = await harness.getJson('/connz?cid=9999');
  assert.equal(missing['num_connections'], 0);
});

test('connz state=closed shows a closed client with reason and stop time', async (t) => {
  const harness = await startHarness(t);
  await harness.client('stayer');
  const leaver = await harness.client('leaver');
  leaver.subscribe('bye.*');
  await leaver.flush();
  const cid = leaver.info!.client_id;
  await leaver.close();

  const closed = await eventually(async () => {
    const connz = await harness.getJson('/connz?state=closed&subs=detail');
    assert.equal(connz['total'], 1);
    return connz;
  });
  const [info] = connections(closed);
  assert.equal(info!['cid'], cid);
  assert.equal(info!['name'], 'leaver');
  assert.equal(info!['reason'], 'Client Closed');
  assert.match(info!['stop'] as string, RFC3339);
  assert.deepEqual(Object.keys(info!).slice(0, 9), [
    'cid',
    'kind',
    'type',
    'ip',
    'port',
    'start',
    'last_activity',
    'stop',
    'reason',
  ]);
  // Closed connections keep their subscriptions, with the account (nats-server newSubDetail).
  assert.deepEqual(info!['subscriptions_list_detail'], [
    { account: '$G', subject: 'bye.*', sid: (info!['subscriptions_list_detail'] as { sid: string }[])[0]!.sid, msgs: 0, cid },
  ]);

  const open = await harness.getJson('/connz');
  assert.deepEqual(
    connections(open).map((c) => c['name']),
    ['stayer'],
  );
  assert.equal(connections(open)[0]!['reason'], undefined);
  const all = await harness.getJson('/connz?state=all');
  assert.equal(all['total'], 2);
  const sorted = await harness.getJson('/connz?state=closed&sort=reason');
  assert.equal(connections(sorted)[0]!['cid'], cid);
});

test('subsz reports sublist counters, lists subscriptions, and filters with test=', async (t) => {
  const harness = await startHarness(t);
  const client = await harness.client('subs');
  client.subscribe('orders.*');
  client.subscribe('orders.>', { queue: 'q' });
  client.subscribe('events.x');
  await client.flush();
  await publishMany(client, 'orders.new', 1, 'x');

  // Without a list, nats-server answers with the SublistStats counters only.
  const stats = await harness.getJson('/subsz');
  assert.deepEqual(Object.keys(stats), [
    'num_subscriptions',
    'num_cache',
    'num_inserts',
    'num_removes',
    'num_matches',
    'cache_hit_rate',
    'max_fanout',
    'avg_fanout',
  ]);
  assert.equal(stats['num_subscriptions'], 3);
  assert.equal(stats['num_inserts'], 3);
  assert.equal(stats['num_removes'], 0);
  assert.equal(stats['num_matches'], 1);
  assert.equal(stats['num_cache'], 1);
  assert.equal(stats['max_fanout'], 2); // orders.* plus the queue group on orders.>

  const listed = await harness.getJson('/subscriptionsz?subs=1');
  assert.equal(listed['server_id'], harness.server.serverId);
  assert.equal(listed['total'], 3);
  assert.equal(listed['limit'], 1024);
  const subjects = (listed['subscriptions_list'] as Record<string, unknown>[]).map((s) => s['subject']);
  assert.deepEqual([...subjects].sort(), ['events.x', 'orders.*', 'orders.>']);
  const queued = (listed['subscriptions_list'] as Record<string, unknown>[]).find((s) => s['subject'] === 'orders.>');
  assert.equal(queued!['account'], '$G');
  assert.equal(queued!['qgroup'], 'q');
  assert.equal(queued!['cid'], client.info!.client_id);

  const tested = await harness.getJson('/subsz?subs=1&test=orders.new');
  assert.deepEqual(
    (tested['subscriptions_list'] as Record<string, unknown>[]).map((s) => s['subject']).sort(),
    ['orders.*', 'orders.>'],
  );
  const paged = await harness.getJson('/subsz?subs=1&offset=1&limit=1');
  assert.equal((paged['subscriptions_list'] as unknown[]).length, 1);
  assert.equal(paged['offset'], 1);

  const varz = await harness.getJson('/varz');
  // Four requests; /subscriptionsz is counted as /subsz, as nats-server does.
  assert.equal((varz['http_req_stats'] as Record<string, number>)['/subsz'], 4);
  assert.equal((varz['http_req_stats'] as Record<string, number>)['/subscriptionsz'], undefined);
});

test('healthz answers {"status":"ok"} on one line', async (t) => {
  const harness = await startHarness(t);
  const response = await fetch(`${harness.httpUrl}/healthz`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/json');
  assert.equal(await response.text(), '{"status":"ok"}');

  const bad = await fetch(`${harness.httpUrl}/healthz?stream=ORDERS`);
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    status: 'error',
    error: '"account" must not be empty when checking stream health',
  });
  const detailed = await fetch(`${harness.httpUrl}/healthz?details=true&consumer=c`);
  assert.equal(detailed.status, 400);
  assert.deepEqual(await detailed.json(), {
    status: 'error',
    errors: [{ type: 'BAD_REQUEST', error: '"stream" must not be empty when checking consumer health' }],
  });
});

test('metrics exposes exporter-named gauges with the current counter values', async (t) => {
  const harness = await startHarness(t);
  const subscriber = await harness.client('subscriber');
  const publisher = await harness.client('publisher');
  const received = countingSubscription(subscriber, 'm.*');
  await subscriber.flush();
  await publishMany(publisher, 'm.x', 4, 'abc');
  await eventually(() => assert.equal(received.count, 4));

  const response = await fetch(`${harness.httpUrl}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const id = harness.server.serverId;
  const expectSample = (name: string, value: number): void => {
    assert.ok(text.includes(`\n${name}{server_id="${id}"} ${value}\n`), `${name} ${value} missing`);
  };
  assert.ok(text.includes('# HELP gnatsd_varz_in_msgs varz_in_msgs\n# TYPE gnatsd_varz_in_msgs gauge\n'));
  expectSample('gnatsd_varz_in_msgs', 4);
  expectSample('gnatsd_varz_out_msgs', 4);
  expectSample('gnatsd_varz_in_bytes', 12);
  expectSample('gnatsd_varz_out_bytes', 12);
  expectSample('gnatsd_varz_connections', 2);
  expectSample('gnatsd_varz_total_connections', 2);
  expectSample('gnatsd_varz_subscriptions', 1);
  expectSample('gnatsd_varz_slow_consumers', 0);
  expectSample('gnatsd_subsz_num_subscriptions', 1);
  expectSample('gnatsd_healthz_status', 0);
  assert.ok(text.includes(`gnatsd_varz_version{server_id="${id}",value="2.10.29"} 1`));
  // prom-client's default process metrics share the registry.
  assert.match(text, /\nprocess_cpu_user_seconds_total \d/);
  assert.match(text, /\nnodejs_eventloop_lag_seconds /);

  // Values are read at scrape time.
  await publishMany(publisher, 'm.x', 1, 'abc');
  const again = await (await fetch(`${harness.httpUrl}/metrics`)).text();
  assert.ok(again.includes(`\ngnatsd_varz_in_msgs{server_id="${id}"} 5\n`));
});

test('bad query parameters get 400 with nats-server error texts; the monitor keeps serving', async (t) => {
  const harness = await startHarness(t);
  const cases: [string, string][] = [
    ['/connz?sort=bogus', 'invalid sorting option: bogus'],
    ['/connz?sort=stop', 'sort by stop only valid on closed connections'],
    ['/connz?sort=reason&state=all', 'sort by reason only valid on closed connections'],
    ['/connz?limit=abc', `Error decoding int for 'limit': strconv.Atoi: parsing "abc": invalid syntax`],
    ['/connz?offset=1.5', `Error decoding int for 'offset': strconv.Atoi: parsing "1.5": invalid syntax`],
    [
      '/connz?limit=99999999999999999999',
      `Error decoding int for 'limit': strconv.Atoi: parsing "99999999999999999999": value out of range`,
    ],
    ['/connz?cid=-1', `Error decoding uint64 for 'cid': strconv.ParseUint: parsing "-1": invalid syntax`],
    ['/connz?state=sleeping', 'Error decoding state for sleeping'],
    ['/connz?subs=maybe', `Error decoding boolean for 'subs': strconv.ParseBool: parsing "maybe": invalid syntax`],
    ['/connz?auth=yes', `Error decoding boolean for 'auth': strconv.ParseBool: parsing "yes": invalid syntax`],
    ['/connz?filter_subject=foo', 'filter by subject only valid with account filtering'],
    ['/subsz?subs=2', `Error decoding boolean for 'subs': strconv.ParseBool: parsing "2": invalid syntax`],
    ['/subsz?offset=x', `Error decoding int for 'offset': strconv.Atoi: parsing "x": invalid syntax`],
    ['/subsz?test=orders.*', 'invalid test subject, must be valid publish subject: orders.*'],
    ['/subsz?test=orders..new', 'invalid test subject, must be valid publish subject: orders..new'],
    ['/healthz?details=nope', `Error decoding boolean for 'details': strconv.ParseBool: parsing "nope": invalid syntax`],
  ];
  for (const [path, error] of cases) {
    const response = await fetch(harness.httpUrl + path);
    assert.equal(response.status, 400, path);
    assert.equal(response.headers.get('content-type'), 'application/json', path);
    assert.deepEqual(await response.json(), { error }, path);
  }
  const unknown = await fetch(`${harness.httpUrl}/varz/extra`);
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), { error: 'no monitoring endpoint at /varz/extra' });
  const post = await fetch(`${harness.httpUrl}/varz`, { method: 'POST' });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const healthz = await fetch(`${harness.httpUrl}/healthz`);
  assert.equal(healthz.status, 200);
  await healthz.body?.cancel();
});

test('root lists the endpoints; ?callback= wraps JSON as JSONP', async (t) => {
  const harness = await startHarness(t);
  const root = await fetch(`${harness.httpUrl}/`);
  assert.equal(root.status, 200);
  const html = await root.text();
  for (const path of ['varz', 'connz', 'subsz', 'healthz', 'metrics']) assert.ok(html.includes(`href="./${path}"`), path);
  const jsonp = await fetch(`${harness.httpUrl}/healthz?callback=show`);
  assert.equal(jsonp.headers.get('content-type'), 'application/javascript');
  assert.equal(await jsonp.text(), 'show({"status":"ok"})');
});

test('startMonitor binds the requested port and close() frees it', async (t) => {
  const harness = await startHarness(t);
  // A second monitor on the same port must fail to bind rather than crash.
  await assert.rejects(
    startMonitor({ server: harness.server, host: '127.0.0.1', port: harness.monitor.port, log: silentLogger }),
    /EADDRINUSE/,
  );
  const keepAlive = await fetch(`${harness.httpUrl}/healthz`);
  await keepAlive.text();
  await harness.monitor.close();
  await assert.rejects(fetch(`${harness.httpUrl}/healthz`));
});

test('leafz: a plain server has no links; a registered provider is reported with server_id and now', async (t) => {
  const harness = await startHarness(t);
  const off = await harness.getJson('/leafz');
  assert.equal(off['links'], 'off');
  assert.equal(typeof off['server_id'], 'string');
  assert.match(String(off['now']), RFC3339);
  harness.monitor.setLeafz(() => ({ role: 'hub', leafs: [{ leaf: 'gw1', connected: true }] }));
  const on = await harness.getJson('/leafz');
  assert.deepEqual([on['role'], on['leafs']], ['hub', [{ leaf: 'gw1', connected: true }]]);
  assert.equal(((await harness.getJson('/varz'))['http_req_stats'] as Record<string, number>)['/leafz'], 2);
});
