/** `canopy server` as users run it: a real process, real flags, real signals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthorizationError, connect, credsAuthenticator } from '@nats-io/transport-node';
import { eventually } from '../helpers/eventually.ts';
import { decoratedOperatorJwt, newTrustChain, newUser } from '../helpers/nats-jwt.ts';
import { freePort, runCanopy } from '../helpers/processes.ts';

test('canopy server starts, serves clients and monitoring, and exits 0 on SIGTERM', async (t) => {
  const port = await freePort();
  const httpPort = await freePort();
  const run = runCanopy(['server', '-a', '127.0.0.1', '-p', String(port), '-m', String(httpPort), '--websocket_port', '0', '--server_name', 'cli-test']);
  t.after(() => run.child.kill('SIGKILL'));
  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false }), { timeoutMs: 15_000, intervalMs: 100 });
  const sub = nc.subscribe('cli.>', { max: 1 });
  nc.publish('cli.works', 'yes');
  for await (const message of sub) assert.equal(message.string(), 'yes');
  const varz = (await (await fetch(`http://127.0.0.1:${httpPort}/varz`)).json()) as Record<string, unknown>;
  assert.equal(varz['server_name'], 'cli-test');
  assert.equal(varz['port'], port);
  const closed = nc.closed();
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
  await closed;
  assert.match(run.stdout(), /shutting down/);
  assert.match(run.stdout(), /server stopped/, 'the last log line is flushed before exit');
});

test('SIGINT also stops the server cleanly', async (t) => {
  const port = await freePort();
  const run = runCanopy(['server', '-a', '127.0.0.1', '-p', String(port), '-m', '0', '--websocket_port', '0']);
  t.after(() => run.child.kill('SIGKILL'));
  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false }), { timeoutMs: 15_000, intervalMs: 100 });
  await nc.close();
  run.child.kill('SIGINT');
  assert.equal(await run.exited, 0);
});

const badInvocations: { name: string; args: string[]; pattern: RegExp }[] = [
  { name: 'a non-numeric port', args: ['server', '--port', 'abc'], pattern: /"port".*integer from -1 to 65535.*"abc"/ },
  { name: 'a port out of range', args: ['server', '-p', '70000'], pattern: /"port".*65535/ },
  { name: 'an unknown flag', args: ['server', '--bogus', '1'], pattern: /bogus/i },
  { name: 'an unknown log level', args: ['server', '--log_level', 'loud'], pattern: /"log_level".*one of/ },
  { name: 'a max_payload that is not a size', args: ['server', '--max_payload', 'huge'], pattern: /"max_payload".*size/ },
  { name: 'a bad duration', args: ['server', '--ping_interval', 'soon'], pattern: /"ping_interval".*duration/ },
  { name: 'a missing config file', args: ['server', '-c', '/nonexistent/canopy.json'], pattern: /"config".*cannot read/ },
  { name: 'an unknown command', args: ['serve'], pattern: /serve/ },
];
for (const { name, args, pattern } of badInvocations) {
  test(`${name} gives one clear line and exit code 2`, async () => {
    const run = runCanopy(args);
    assert.equal(await run.exited, 2);
    const lines = run.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line expected, got:\n${run.stderr()}`);
    assert.match(lines[0]!, pattern);
  });
}

test('a config file sets options with the same keys as the flags; a flag overrides it; a bad key is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ addr: '127.0.0.1', port: 1, http_port: 0, websocket: { port: 0 }, max_payload: '2KB' }));
  const run = runCanopy(['server', '-c', good, '-p', String(port)]);
  t.after(() => run.child.kill('SIGKILL'));
  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false }), { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(nc.info?.max_payload, 2048);
  await nc.close();
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ max_connections: -5 }));
  const badRun = runCanopy(['server', '-c', bad]);
  assert.equal(await badRun.exited, 2);
  assert.match(badRun.stderr(), /invalid value for "max_connections": must be at least 1/);

  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ max_payloads: 5 }));
  const unknownRun = runCanopy(['server', '-c', unknown]);
  assert.equal(await unknownRun.exited, 2);
  assert.match(unknownRun.stderr(), /"max_payloads": unknown option/);
});

test('operator mode from a config file, as the README shows: .creds users connect, others are refused; users next to an operator stop it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-operator-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const chain = newTrustChain();
  const operatorFile = join(dir, 'operator.jwt');
  writeFileSync(operatorFile, decoratedOperatorJwt(chain.operatorJwt));
  const operatorMode = { operator: operatorFile, resolver: 'MEMORY', resolver_preload: { [chain.account.getPublicKey()]: chain.accountJwt } };
  const config = join(dir, 'canopy.json');
  writeFileSync(config, JSON.stringify({ addr: '127.0.0.1', http_port: 0, websocket: { port: 0 }, jetstream: false, ...operatorMode }));
  const port = await freePort();
  const run = runCanopy(['server', '-c', config, '-p', String(port)]);
  t.after(() => run.child.kill('SIGKILL'));
  const authenticator = credsAuthenticator(new TextEncoder().encode(newUser({ signer: chain.account }).creds));
  const nc = await eventually(() => connect({ servers: `127.0.0.1:${port}`, reconnect: false, authenticator }), { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(nc.info?.auth_required, true);
  await nc.close();
  await assert.rejects(connect({ servers: `127.0.0.1:${port}`, reconnect: false }), AuthorizationError);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);

  const both = join(dir, 'both.json');
  writeFileSync(both, JSON.stringify({ ...operatorMode, authorization: { users: [{ user: 'a', password: 'b' }] } }));
  const bothRun = runCanopy(['server', '-c', both]);
  assert.equal(await bothRun.exited, 2);
  assert.match(bothRun.stderr(), /^canopy: invalid value for "operator": cannot be combined with users .*operators do not allow users to be configured directly\n$/);
});
