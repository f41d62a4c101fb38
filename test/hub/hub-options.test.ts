/**
 * `canopy hub` option handling (hub/cli.ts) and startHub's requirements (hub/main.ts): config
 * file keys split between the link and the server, flags over the file, the leaf's keys refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveLinkOptions, type HubLinkOptions } from '../../core/server/link-options.ts';
import { ConfigError, resolveServerOptions } from '../../core/server/options.ts';
import { silentLogger } from '../../core/util/logger.ts';
import { hubOptionsFromArgv } from '../../hub/cli.ts';
import { startHub } from '../../hub/main.ts';

test('hub options: link keys of the config file go to the link, the rest to the server; flags win', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-hub-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hub.json');
  writeFileSync(config, JSON.stringify({ port: 4333, server_name: 'hub-eu', leaf_port: 7500, leaf_tokens: { 'gw-1': 'a', 'gw-2': { token: 'b' } }, link_heartbeat: '2s' }));
  const { options, link } = hubOptionsFromArgv({ config, leaf_host: '127.0.0.1', link_heartbeat: '3s', store_dir: dir });
  assert.equal(options.port, 4333);
  assert.equal(options.serverName, 'hub-eu');
  assert.equal(options.storeDir, dir);
  assert.equal(link.port, 7500);
  assert.equal(link.host, '127.0.0.1');
  assert.equal(link.heartbeatMs, 3000);
  assert.deepEqual([...link.tokens], [['gw-1', 'a'], ['gw-2', 'b']]);

  writeFileSync(config, JSON.stringify({ hub: 'ws://elsewhere:7422' }));
  assert.throws(() => hubOptionsFromArgv({ config }), (err: unknown) => err instanceof ConfigError && /canopy leaf, not of canopy hub/.test(err.message));
  writeFileSync(config, JSON.stringify({ no_such_option: 1 }));
  assert.throws(() => hubOptionsFromArgv({ config }), ConfigError);
});

test('startHub refuses to run without JetStream; with leaf_port 0 it runs without a leaf listener', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-hub-main-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { store_dir: dir, addr: '127.0.0.1', port: -1, http_port: 0, websocket_port: 0 };
  const link = resolveLinkOptions('hub', { leaf_port: -1, leaf_host: '127.0.0.1' }) as HubLinkOptions;
  await assert.rejects(startHub({ options: resolveServerOptions({ ...base, jetstream: 'false' }), link, log: silentLogger }), ConfigError);
  const hub = await startHub({ options: resolveServerOptions(base), link: resolveLinkOptions('hub', { leaf_port: 0 }) as HubLinkOptions, log: silentLogger });
  t.after(() => hub.close());
  assert.equal(hub.acceptor, undefined);
  assert.ok(hub.broker.jetstream !== undefined);
});
