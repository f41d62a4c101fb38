/**
 * The README's security examples work as written (issue 6 "the README has a security
 * section with a working example config"): the JSON blocks under "Client authentication"
 * and "Accounts" are read from README.md itself, a server is started on each, and the
 * official client does what the text around them says.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';

const README = readFileSync('README.md', 'utf8');

/** The first ```json block after the heading `heading`. */
function jsonAfter(heading: string): Record<string, unknown> {
  const start = README.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has "${heading}"`);
  const block = /```json\n([\s\S]*?)\n```/.exec(README.slice(start));
  assert.ok(block !== null, `a json block follows "${heading}"`);
  return JSON.parse(block[1]!) as Record<string, unknown>;
}

/** The README's text quoting a value after `label` in backquotes (e.g. the nkey seed). */
function quoted(pattern: RegExp): string {
  const match = pattern.exec(README);
  assert.ok(match !== null, `README quotes ${pattern}`);
  return match[1]!;
}

async function start(t: { after(fn: () => unknown): void }, config: Record<string, unknown>): Promise<TestBroker> {
  const broker = await startTestBroker({ jetstream: true, http_port: 0, websocket_port: 0, ...config });
  t.after(() => broker.close());
  return broker;
}

async function open(t: { after(fn: () => unknown): void }, broker: TestBroker, options: Record<string, unknown>): Promise<NatsConnection> {
  const nc = await connect({ servers: broker.url, reconnect: false, ...options });
  t.after(() => nc.close());
  return nc;
}

test('README "Client authentication": app with s3cr3t (bcrypt), ops with its plain password, the nkey user with the quoted seed; a wrong password is refused', async (t) => {
  const broker = await start(t, jsonAfter('## Client authentication'));
  const app = await open(t, broker, { user: 'app', pass: 's3cr3t' });
  const ops = await open(t, broker, { user: 'ops', pass: 'dev-only-plain' });
  const seed = quoted(/\(`(SU[A-Z2-7]{56})` here/);
  const nkeyUser = await open(t, broker, { authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) });
  const sub = nkeyUser.subscribe('ops.>', { max: 1 });
  await nkeyUser.flush();
  ops.publish('ops.deploy', 'go');
  for await (const message of sub) assert.equal(message.string(), 'go');
  // ops may publish only to ops.>: the README's permissions entry.
  const secret = app.subscribe('app.secret');
  await app.flush();
  ops.publish('app.secret', 'no');
  await ops.flush();
  await app.flush();
  assert.equal(secret.getProcessed(), 0, "ops's publish outside ops.> was not delivered");
  await assert.rejects(connect({ servers: broker.url, user: 'app', pass: 'wrong', reconnect: false }), /Authorization Violation/i);
});

test('README "Accounts": sensor telemetry reaches dash under site1.; dash calls calibrate through the service import; no credentials means dash; $G is isolated', async (t) => {
  const broker = await start(t, jsonAfter('### Accounts'));
  const sensor = await open(t, broker, { user: 'sensor', pass: 's3nsor' });
  const dash = await open(t, broker, {});
  const ops = await open(t, broker, { user: 'ops', pass: '0ps' });
  const telemetry = dash.subscribe('site1.telemetry.>', { max: 1 });
  const opsSees = ops.subscribe('>');
  await dash.flush();
  await ops.flush();
  sensor.subscribe('calibrate.*', {
    callback: (_err, message) => {
      message.respond(`calibrated via ${message.subject}`);
    },
  });
  await sensor.flush();
  sensor.publish('telemetry.t1', '21.5');
  for await (const message of telemetry) {
    assert.equal(message.subject, 'site1.telemetry.t1');
    assert.equal(message.string(), '21.5');
  }
  const answer = await dash.request('calibrate', 'now', { timeout: 5000 });
  assert.equal(answer.string(), 'calibrated via calibrate.now');
  await ops.flush();
  assert.equal(opsSees.getProcessed(), 0, 'a > subscriber of $G saw nothing of the other accounts');
});
