/** `canopy leaf`: option resolution (config file split between server and link) and a real process stopped by signals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ConfigError, resolveServerOptions } from '../../core/server/options.ts';
import { leafOptionsFromArgv } from '../../leaf/cli.ts';
import { startLeaf } from '../../leaf/main.ts';
import { silentLogger } from '../../core/util/logger.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/processes.ts';
import { FakeHub } from './link/fake-hub.ts';
import { recordingLogger } from '../helpers/recording-logger.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-leaf-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a config file is split: link keys to the leaf link, the rest to the server; flags win', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'leaf.json');
  writeFileSync(
    config,
    JSON.stringify({ port: 4333, websocket: { port: 0 }, store_dir: join(dir, 'data'), hub: 'ws://hub-a:7422, wss://hub-b:7422', leaf_name: 'pi-7', hub_token: 't0k', link_heartbeat: '2s', link_compression: true }),
  );
  const { options, link } = leafOptionsFromArgv({ config, leaf_name: 'pi-8', port: '4444' });
  assert.equal(options.port, 4444);
  assert.equal(options.websocketPort, undefined);
  assert.equal(options.storeDir, join(dir, 'data'));
  assert.deepEqual(link, { role: 'leaf', hubUrls: ['ws://hub-a:7422', 'wss://hub-b:7422'], leafName: 'pi-8', hubToken: 't0k', heartbeatMs: 2000, isCompressionWanted: true });
});

test('hub-only keys, a missing hub and bad values are ConfigErrors naming the key', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'leaf.json');
  writeFileSync(config, JSON.stringify({ hub: 'ws://hub:7422', leaf_port: 7422 }));
  assert.throws(() => leafOptionsFromArgv({ config }), (err: unknown) => err instanceof ConfigError && err.key === 'leaf_port');
  assert.throws(() => leafOptionsFromArgv({}), (err: unknown) => err instanceof ConfigError && err.key === 'hub');
  assert.throws(() => leafOptionsFromArgv({ hub: 'http://hub' }), (err: unknown) => err instanceof ConfigError && err.key === 'hub');
  assert.throws(() => leafOptionsFromArgv({ hub: 'ws://hub', link_heartbeat: 'soon' }), (err: unknown) => err instanceof ConfigError && err.key === 'link_heartbeat');
});

test('startLeaf refuses to run without JetStream, or with a heartbeat or token the link cannot use', async (t) => {
  const dir = tempDir(t);
  const link = { role: 'leaf', hubUrls: ['ws://127.0.0.1:1'], leafName: 'x', hubToken: undefined, heartbeatMs: 1000, isCompressionWanted: false } as const;
  const noJetStream = resolveServerOptions({ store_dir: dir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0, jetstream: false });
  await assert.rejects(startLeaf({ options: noJetStream, link, log: silentLogger }), (err: unknown) => err instanceof ConfigError && err.key === 'jetstream');
  const options = resolveServerOptions({ store_dir: dir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0 });
  await assert.rejects(startLeaf({ options, link: { ...link, heartbeatMs: 120_000 }, log: silentLogger }), (err: unknown) => err instanceof ConfigError && err.key === 'link_heartbeat');
  await assert.rejects(startLeaf({ options, link: { ...link, hubToken: '' }, log: silentLogger }), (err: unknown) => err instanceof ConfigError && err.key === 'hub_token');
  await assert.rejects(startLeaf({ options, link: { ...link, hubToken: 'x'.repeat(4097) }, log: silentLogger }), (err: unknown) => err instanceof ConfigError && err.key === 'hub_token');
});

test('close() stops the link first (the hub hears a going-away close), then the broker', async (t) => {
  const dir = tempDir(t);
  const hub = await FakeHub.start();
  t.after(() => hub.close());
  const log = recordingLogger();
  const options = resolveServerOptions({ store_dir: dir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0 });
  const leaf = await startLeaf({ options, link: { role: 'leaf', hubUrls: [hub.url], leafName: 'order', hubToken: undefined, heartbeatMs: 1000, isCompressionWanted: false }, log });
  await eventually(() => assert.equal(leaf.link.status().state, 'up'));
  await leaf.close();
  const messages = log.records.map((record) => record.msg);
  assert.ok(messages.indexOf('link stopped') >= 0 && messages.indexOf('link stopped') < messages.indexOf('shutting down'), messages.join(' | '));
  assert.equal(leaf.link.status().state, 'stopped');
  await eventually(() => assert.equal(hub.connections[0]?.closeCode, 1001));
  assert.equal(hub.connections[0]?.closeReason, 'stopped');
});

test('canopy leaf syncs to the hub and stops cleanly on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const hub = await FakeHub.start();
  t.after(() => hub.close());
  const port = await freePort();
  const args = ['leaf', '--hub', hub.url, '--leaf_name', 'cli-leaf', '--hub_token', 'cli-token', '-a', '127.0.0.1', '-p', String(port), '-m', '0', '--websocket_port', '0', '--store_dir', join(dir, 'data'), '--link_heartbeat', '1'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/canopy.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  // 'close', not 'exit': the output is complete only once the pipes are closed.
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));

  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false }), { timeoutMs: 15_000, intervalMs: 100 });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'CLI', subjects: ['cli.>'] });
  await jetstream(nc).publish('cli.x', 'hello hub');
  await eventually(() => {
    const hello = hub.connections.find((connection) => connection.hello !== undefined)?.hello;
    assert.equal(hello?.leaf, 'cli-leaf');
    assert.equal(hello?.token, 'cli-token');
    assert.equal(hello?.heartbeatMs, 1000);
    assert.equal(hub.framesOf('batch').length, 1);
  }, { timeoutMs: 10_000 });
  await nc.close();
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  await eventually(() => assert.equal(hub.connections.at(-1)?.closeCode, 1001));
  assert.match(stdout, /link up/);
  assert.match(stdout, /link stopped/);
  assert.match(stdout, /server stopped/);
  assert.ok(!stdout.includes('cli-token'), 'the token is never logged');
});

test('issue 6: a leaf\'s monitoring listens on 127.0.0.1 unless a host is given', async (t) => {
  const dir = tempDir(t);
  const hub = await FakeHub.start();
  t.after(() => hub.close());
  const { options, link } = leafOptionsFromArgv({ hub: hub.url, leaf_name: 'mon', store_dir: dir, addr: '127.0.0.1', port: '-1', http_port: '-1', websocket_port: '0' });
  assert.equal(options.httpHost, '127.0.0.1');
  const leaf = await startLeaf({ options, link, log: silentLogger });
  t.after(() => leaf.close());
  const port = leaf.broker.monitor?.port;
  const varz = (await (await fetch(`http://127.0.0.1:${port}/varz`)).json()) as Record<string, unknown>;
  assert.equal(varz['http_host'], '127.0.0.1');
});

test('a gateway\'s config_problems (firmware-images setup) are logged at error and shown on /leafz; a bad list is a ConfigError', async (t) => {
  const dir = tempDir(t);
  const hub = await FakeHub.start();
  t.after(() => hub.close());
  const config = join(dir, 'leaf.json');
  const problems = ['canopy.conf line 3: port must be a port number, 1 to 65535, not "42x"; port is left unset'];
  writeFileSync(config, JSON.stringify({ hub: hub.url, leaf_name: 'gw', store_dir: dir, addr: '127.0.0.1', port: -1, http_port: -1, config_problems: problems }));
  const { options, link, configProblems } = leafOptionsFromArgv({ config });
  assert.deepEqual(configProblems, problems);
  const log = recordingLogger();
  const leaf = await startLeaf({ options, link, log, configProblems });
  t.after(() => leaf.close());
  assert.ok(log.records.some((e) => e.level === 'error' && e.msg === 'config problem' && e.fields['problem'] === problems[0]), JSON.stringify(log.records.slice(0, 5)));
  const leafz = (await (await fetch(`http://127.0.0.1:${leaf.broker.monitor?.port}/leafz`)).json()) as Record<string, unknown>;
  assert.deepEqual(leafz['config_problems'], problems);
  assert.equal(leafz['leaf'], 'gw');

  writeFileSync(config, JSON.stringify({ hub: hub.url, config_problems: 'not a list' }));
  assert.throws(() => leafOptionsFromArgv({ config }), (err: unknown) => err instanceof ConfigError && err.key === 'config_problems');
  writeFileSync(config, JSON.stringify({ hub: hub.url }));
  assert.deepEqual(leafOptionsFromArgv({ config }).configProblems, []);
});
