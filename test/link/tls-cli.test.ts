/**
 * `canopy hub` and `canopy leaf` as real processes over a wss:// link (issue 4 "Security"):
 * the hub started with --leaf_tls_cert / --leaf_tls_key / --leaf_tls_ca / --leaf_tls_verify,
 * the leaf with --hub wss://… and --hub_tls_ca / --hub_tls_cert / --hub_tls_key (certificate
 * auth, no token). A message published on the leaf is read on the hub; both stop on SIGTERM.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startCanopyServer } from '../helpers/canopy-server.ts';
import { skipWithoutOpenssl, TestPki } from '../helpers/certs.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/processes.ts';

test('canopy hub with --leaf_tls_* and canopy leaf with --hub wss:// and --hub_tls_* start and sync', { skip: skipWithoutOpenssl() }, async (t) => {
  const pki = new TestPki();
  const dir = mkdtempSync(join(tmpdir(), 'canopy-tls-cli-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });
  const ca = pki.ca('link-ca');
  const server = pki.server(ca, 'hub');
  const client = pki.client(ca, 'gw-cli');
  const [hubPort, leafPort, linkPort] = [await freePort(), await freePort(), await freePort()];

  const hub = await startCanopyServer(hubPort, join(dir, 'hub'), {
    command: 'hub',
    extraArgs: [
      '--leaf_port', String(linkPort), '--leaf_host', '127.0.0.1', '--link_heartbeat', '1',
      '--leaf_tls_cert', server.certFile, '--leaf_tls_key', server.keyFile, '--leaf_tls_ca', ca.certFile, '--leaf_tls_verify', 'true',
    ],
  });
  t.after(() => hub.kill());
  const leaf = await startCanopyServer(leafPort, join(dir, 'leaf'), {
    command: 'leaf',
    extraArgs: [
      '--hub', `wss://127.0.0.1:${linkPort}`, '--leaf_name', 'gw-cli', '--link_heartbeat', '1',
      '--hub_tls_ca', ca.certFile, '--hub_tls_cert', client.certFile, '--hub_tls_key', client.keyFile,
    ],
  });
  t.after(() => leaf.kill());

  const leafNc = await connect({ servers: leaf.server, reconnect: false });
  t.after(() => leafNc.close());
  await (await jetstreamManager(leafNc)).streams.add({ name: 'CLI_TLS', subjects: ['cli.>'] });
  await jetstream(leafNc).publish('cli.reading', 'over wss');

  const hubNc = await connect({ servers: hub.server, reconnect: false });
  t.after(() => hubNc.close());
  const hubJsm = await jetstreamManager(hubNc);
  const stored = await eventually(async () => {
    const message = await hubJsm.streams.getMessage('CLI_TLS', { seq: 1 });
    assert.ok(message !== null, 'the message is on the hub');
    return message;
  }, { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(stored.subject, 'gw-cli.cli.reading');
  assert.equal(stored.string(), 'over wss');

  const listening = hub.logLines().find((line) => line['msg'] === 'listening for leaf connections');
  assert.deepEqual([listening?.['tls'], listening?.['verify']], [true, true]);
  const up = hub.logLines().find((line) => line['msg'] === 'leaf link up');
  assert.deepEqual([up?.['leaf'], up?.['tls'], up?.['auth']], ['gw-cli', true, 'cert']);
  await leafNc.close();
  await hubNc.close();
  assert.equal(await leaf.stop(), 0, leaf.logs());
  assert.equal(await hub.stop(), 0, hub.logs());
  assert.ok(!hub.logs().includes('PRIVATE KEY') && !leaf.logs().includes('PRIVATE KEY'), 'no key material in the logs');
});
