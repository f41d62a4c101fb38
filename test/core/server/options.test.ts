import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseSizeBytes, resolveServerOptions } from '../../../core/server/options.ts';
import { parseDurationMs } from '../../../core/util/duration.ts';

test('durations: seconds as numbers or text, Go-style units', () => {
  assert.equal(parseDurationMs(2), 2000);
  assert.equal(parseDurationMs('2'), 2000);
  assert.equal(parseDurationMs('0.5'), 500);
  assert.equal(parseDurationMs('100ms'), 100);
  assert.equal(parseDurationMs('2m'), 120_000);
  assert.equal(parseDurationMs('1h30m'), 5_400_000);
  assert.equal(parseDurationMs('1.5s'), 1500);
  for (const bad of ['', 'soon', '5 parsecs', '10x', 'm', -1]) assert.equal(parseDurationMs(bad), undefined, String(bad));
});

test('sizes: bytes or 1024-multiple units', () => {
  assert.equal(parseSizeBytes(1048576), 1048576);
  assert.equal(parseSizeBytes('1MB'), 1048576);
  assert.equal(parseSizeBytes('512kb'), 524288);
  assert.equal(parseSizeBytes('2 KiB'), 2048);
  for (const bad of ['', 'huge', '1.5MB', '1XB', 1.5, null]) assert.equal(parseSizeBytes(bad), undefined, String(bad));
});

test('defaults are nats-server\'s and the README\'s', () => {
  const options = resolveServerOptions({});
  assert.equal(options.port, 4222);
  assert.equal(options.httpPort, 8222);
  assert.equal(options.websocketPort, 8080);
  assert.equal(options.storeDir, './data');
  assert.equal(options.payloadBytesMax, 1048576);
  assert.equal(options.controlLineBytesMax, 4096);
  assert.equal(options.pendingBytesMax, 64 * 1024 * 1024);
  assert.equal(options.connectionsMax, 65536);
  assert.equal(options.pingIntervalMs, 120_000);
  assert.equal(options.pingsOutstandingMax, 2);
  assert.equal(options.authTimeoutMs, 2000);
  assert.equal(options.syncPolicy, 'always');
});

test('sync: "always" or an interval; nats-server\'s sync_interval is a synonym', () => {
  assert.equal(resolveServerOptions({ sync: 'always' }).syncPolicy, 'always');
  assert.deepEqual(resolveServerOptions({ sync: '1s' }).syncPolicy, { intervalMs: 1000 });
  assert.deepEqual(resolveServerOptions({ sync_interval: '2m' }).syncPolicy, { intervalMs: 120_000 });
  assert.deepEqual(resolveServerOptions({ sync: 5 }).syncPolicy, { intervalMs: 5000 });
});

test('ports: -1 picks a free port; 0 turns monitoring and WebSocket off', () => {
  const options = resolveServerOptions({ port: -1, http_port: 0, websocket_port: -1 });
  assert.equal(options.port, 0);
  assert.equal(options.httpPort, undefined);
  assert.equal(options.websocketPort, 0);
});

test('config file shapes: nested websocket block and nats-server synonyms', () => {
  const options = resolveServerOptions({ websocket: { port: 9000, host: '127.0.0.1' }, net: '127.0.0.2', jetstream_store_dir: '/x' });
  assert.equal(options.websocketPort, 9000);
  assert.equal(options.websocketHost, '127.0.0.1');
  assert.equal(options.host, '127.0.0.2');
  assert.equal(options.storeDir, '/x');
});

test('bad values name the key and what is allowed', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ port: 'abc' }, /^invalid value for "port": must be an integer from -1 to 65535 \(got "abc"\)$/],
    [{ port: 65536 }, /"port"/],
    [{ max_payload: 0 }, /"max_payload": must be at least 1 bytes/],
    [{ max_payload: '65MB' }, /"max_payload": must be at most/],
    [{ max_payload: '2MB', max_pending: '1MB' }, /"max_payload": must not exceed max_pending/],
    [{ ping_interval: 'often' }, /"ping_interval": must be a duration/],
    [{ sync: 'sometimes' }, /^invalid value for "sync": must be "always" or a duration such as "1s" or "2m" \(got "sometimes"\)$/],
    [{ sync: '0s' }, /"sync": must be at least 1 ms/],
    [{ log_level: 'chatty' }, /"log_level": must be one of fatal, error, warn, info, debug, trace, silent/],
    [{ server_name: 5 }, /"server_name": must be a string/],
    [{ bogus: 1 }, /"bogus": unknown option/],
  ];
  for (const [raw, pattern] of cases) {
    assert.throws(() => resolveServerOptions(raw), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, pattern);
      return true;
    });
  }
});
