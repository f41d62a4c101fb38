/**
 * The client commands' credential and TLS flags (`--user`/`--password`, `--token`, `--nkey`,
 * `--creds`, `--tlsca`): `canopy sub` and `canopy pub` as child processes against in-process canopy
 * brokers that require them, a wrong password, and an unreadable file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';
import { eventually } from '../helpers/eventually.ts';
import { newTrustChain, newUser } from '../helpers/nats-jwt.ts';
import { CLI_EXIT_TIMEOUT_MS as CLI_TIMEOUT_MS, exitCodeOf, runCanopyUntilTestEnds as canopy } from '../helpers/processes.ts';

const LEAN = { jetstream: false, http_port: 0, websocket_port: 0 };

/** `canopy sub --count 1` then `canopy pub`, both with `flags`: the sub prints the payload and both exit 0. */
async function assertPubSub(t: { after(fn: () => void): void }, url: string, subject: string, flags: readonly string[]): Promise<void> {
  const sub = canopy(t, ['sub', subject, '--raw', '--count', '1', '-s', url, ...flags]);
  await eventually(() => assert.match(sub.stderr(), /Subscribing on/), { timeoutMs: CLI_TIMEOUT_MS, intervalMs: 50 });
  const pub = canopy(t, ['pub', subject, 'secured hello', '-s', url, ...flags]);
  assert.equal(await exitCodeOf(pub), 0, pub.stderr());
  assert.equal(await exitCodeOf(sub), 0, sub.stderr());
  assert.equal(sub.stdout(), 'secured hello\n');
}

describe('users and nkeys', () => {
  let broker: TestBroker;
  let pki: TestPki;
  let seedFile: string;
  before(async () => {
    pki = new TestPki('canopy-cli-auth-');
    const user = nkeys.createUser();
    seedFile = join(pki.dir, 'user.nk');
    writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
    broker = await startTestBroker({ ...LEAN, authorization: { users: [{ user: 'alice', password: 'pw' }, { nkey: user.getPublicKey() }] } });
  });
  after(async () => {
    await broker.close();
    pki.remove();
  });

  test('sub and pub connect with --user and --password', async (t) => {
    await assertPubSub(t, broker.url, 'cli.auth.user', ['--user', 'alice', '--password', 'pw']);
  });

  test('sub and pub connect with --nkey (a seed file)', async (t) => {
    await assertPubSub(t, broker.url, 'cli.auth.nkey', ['--nkey', seedFile]);
  });

  test('a wrong password is one line on stderr and exit 1', async (t) => {
    const run = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url, '--user', 'alice', '--password', 'wrong']);
    assert.equal(await exitCodeOf(run), 1, run.stderr());
    assert.equal(run.stderr().trim().split('\n').length, 1, run.stderr());
    assert.match(run.stderr(), /^canopy: cannot connect to .*authorization violation/i);
  });

  test('without credentials the server refuses the connection (exit 1)', async (t) => {
    const run = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url]);
    assert.equal(await exitCodeOf(run), 1, run.stderr());
  });

  test('an unreadable --nkey file is a usage error naming the flag (exit 2)', async (t) => {
    const run = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url, '--nkey', join(pki.dir, 'missing.nk')]);
    assert.equal(await exitCodeOf(run), 2, run.stderr());
    assert.match(run.stderr(), /^canopy: invalid value for "nkey": cannot read .*missing\.nk.* \(ENOENT\)\n$/);
  });
});

describe('creds (operator mode)', () => {
  let broker: TestBroker;
  let pki: TestPki;
  const chain = newTrustChain();
  before(async () => {
    pki = new TestPki('canopy-cli-creds-');
    broker = await startTestBroker({ ...LEAN, operator: chain.operatorJwt, resolver: 'MEMORY', resolver_preload: { [chain.account.getPublicKey()]: chain.accountJwt } });
  });
  after(async () => {
    await broker.close();
    pki.remove();
  });

  test('sub and pub connect with --creds (a .creds file)', async (t) => {
    const credsFile = join(pki.dir, 'user.creds');
    writeFileSync(credsFile, newUser({ signer: chain.account }).creds);
    await assertPubSub(t, broker.url, 'cli.auth.creds', ['--creds', credsFile]);
  });

  test('a .creds user of an account the server does not know is refused (exit 1)', async (t) => {
    const credsFile = join(pki.dir, 'stranger.creds');
    writeFileSync(credsFile, newUser({ signer: nkeys.createAccount() }).creds);
    const run = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url, '--creds', credsFile]);
    assert.equal(await exitCodeOf(run), 1, run.stderr());
    assert.match(run.stderr(), /^canopy: cannot connect to .*authorization violation/i);
  });

  test('a --creds file that is not a .creds file, or --creds with --nkey, is a usage error (exit 2)', async (t) => {
    const seedOnly = join(pki.dir, 'seed-only.creds');
    writeFileSync(seedOnly, `${new TextDecoder().decode(nkeys.createUser().getSeed())}\n`);
    const run = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url, '--creds', seedOnly]);
    assert.equal(await exitCodeOf(run), 2, run.stderr());
    assert.match(run.stderr(), /^canopy: invalid value for "creds": .*seed-only\.creds" does not hold a user JWT and seed \(a \.creds file\)\n$/);
    const both = canopy(t, ['pub', 'cli.auth.x', 'body', '-s', broker.url, '--creds', seedOnly, '--nkey', seedOnly]);
    assert.equal(await exitCodeOf(both), 2, both.stderr());
    assert.match(both.stderr(), /give only one of --nkey, --creds/);
  });
});

describe('token', () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ ...LEAN, authorization: { token: 'tok3n' } });
  });
  after(() => broker.close());

  test('sub and pub connect with --token', async (t) => {
    await assertPubSub(t, broker.url, 'cli.auth.token', ['--token', 'tok3n']);
  });
});

describe('TLS', { skip: skipWithoutOpenssl() }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let client: CertFiles;
  let broker: TestBroker;
  before(async () => {
    pki = new TestPki('canopy-cli-tls-');
    ca = pki.ca('ca');
    const server = pki.server(ca, 'server');
    client = pki.client(ca, 'client');
    broker = await startTestBroker({ ...LEAN, tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, timeout: 2 } });
  });
  after(async () => {
    await broker?.close();
    pki?.remove();
  });

  test('sub and pub connect with --tlsca', async (t) => {
    await assertPubSub(t, broker.url, 'cli.tls', ['--tlsca', ca.certFile]);
  });

  test('sub and pub connect with --tlsca, --tlscert and --tlskey', async (t) => {
    await assertPubSub(t, broker.url, 'cli.tls.cert', ['--tlsca', ca.certFile, '--tlscert', client.certFile, '--tlskey', client.keyFile]);
  });

  test('--tlscert without --tlskey is a usage error (exit 2)', async (t) => {
    const run = canopy(t, ['pub', 'cli.tls.x', 'body', '-s', broker.url, '--tlsca', ca.certFile, '--tlscert', client.certFile]);
    assert.equal(await exitCodeOf(run), 2, run.stderr());
    assert.match(run.stderr(), /"tlscert": give --tlscert and --tlskey together/);
  });
});
