/**
 * The README's `npm start` runs the single-file bundle (`npm run build`, then
 * `node dist/canopy.mjs server`). This builds it and serves a client from it, so a
 * bundling problem (a module esbuild cannot inline) fails here and not on a user's machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/processes.ts';

test('npm run build produces a bundle that serves clients and stops on SIGTERM', async (t) => {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  const port = await freePort();
  const child = spawn(process.execPath, ['--max-semi-space-size=1', 'dist/canopy.mjs', 'server', '-a', '127.0.0.1', '-p', String(port), '-m', '0', '--websocket_port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false }), { timeoutMs: 15_000, intervalMs: 100 });
  const reply = nc.subscribe('bundle.q', { callback: (_err, message) => { message.respond('from the bundle'); } });
  assert.equal((await nc.request('bundle.q', '', { timeout: 2000 })).string(), 'from the bundle');
  reply.unsubscribe();
  await nc.close();
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
