/**
 * `canopy pub|sub|req|reply` as users run them: the real CLI in a child process
 * against an in-process canopy broker, checked with the official nats.js client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { compileTemplate, formatKitchen, formatRfc3339, renderTemplate, TemplateError } from '../../scripts/cli/body-template.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';
import { exitCodeOf, freePort, runCanopyUntilTestEnds as canopy, type CliRun } from '../helpers/processes.ts';

/** CLI startup goes through tsx; give it room on a busy machine. */
const CLI_TIMEOUT_MS = 30_000;

let broker: TestBroker;
let nc: NatsConnection;

before(async () => {
  broker = await startTestBroker();
  nc = await connect({ servers: broker.url, reconnect: false });
});

after(async () => {
  await nc.close();
  await broker.close();
});

function stderrLines(run: CliRun): string[] {
  return run.stderr().trim().split('\n');
}

async function collect(subject: string, count: number): Promise<{ done: Promise<Msg[]> }> {
  const subscription = nc.subscribe(subject, { max: count });
  await nc.flush();
  const done = (async () => {
    const messages: Msg[] = [];
    for await (const msg of subscription) messages.push(msg);
    return messages;
  })();
  return { done };
}

test('pub --count with templates publishes the exact rendered payloads and headers', async (t) => {
  const received = await collect('cli.pub', 3);
  const run = canopy(t, ['pub', 'cli.pub', 'hello {{Count}}', '--count', '3', '-H', 'X-Seq:{{ .Count }}', '-H', 'X-Fixed: yes', '-s', broker.url]);
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  const messages = await received.done;
  assert.deepEqual(messages.map((m) => m.string()), ['hello 1', 'hello 2', 'hello 3']);
  assert.deepEqual(messages.map((m) => m.headers?.get('X-Seq')), ['1', '2', '3']);
  assert.deepEqual(messages.map((m) => m.headers?.get('X-Fixed')), ['yes', 'yes', 'yes']);
  assert.equal(run.stdout(), '');
  assert.equal(stderrLines(run).length, 1);
  assert.match(run.stderr(), /^Published 3 messages \(21 bytes\) to subject "cli\.pub"/);
});

test('pub expands ID, TimeStamp, Unix and Random, and reads the body from --stdin', async (t) => {
  const received = await collect('cli.pub.shapes', 2);
  const run = canopy(t, ['pub', 'cli.pub.shapes', '--stdin', '--count', '2', '-s', broker.url], {
    input: '{{ID}}|{{TimeStamp}}|{{Unix}}|{{Random 5 5}}|{{Random(2,3)}}',
  });
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  const [first, second] = (await received.done).map((m) => m.string().split('|'));
  assert.ok(first !== undefined && second !== undefined);
  assert.match(first[0]!, /^[A-Za-z0-9]{22}$/);
  assert.notEqual(first[0], second[0], 'every {{ID}} is unique');
  assert.match(first[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  assert.ok(Math.abs(Number(first[2]) - Date.now() / 1000) < 120);
  assert.match(first[3]!, /^[A-Za-z0-9]{5}$/);
  assert.match(first[4]!, /^[A-Za-z0-9]{2,3}$/);
});

test('sub --count 2 prints both messages like the nats CLI and exits 0', async (t) => {
  const run = canopy(t, ['sub', 'cli.sub.>', '--count', '2', '-s', broker.url]);
  await eventually(() => assert.match(run.stderr(), /Subscribing on "cli\.sub\.>"/), { timeoutMs: CLI_TIMEOUT_MS, intervalMs: 50 });
  const messageHeaders = headers();
  messageHeaders.set('K', 'v');
  nc.publish('cli.sub.a', 'hello');
  nc.publish('cli.sub.b', 'world', { headers: messageHeaders, reply: 'cli.inbox' });
  await nc.flush();
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  assert.equal(
    run.stdout(),
    '[#1] Received on "cli.sub.a"\nhello\n\n[#2] Received on "cli.sub.b" with reply "cli.inbox"\nK: v\n\nworld\n\n',
  );
});

test('sub --raw --queue prints payloads only', async (t) => {
  const run = canopy(t, ['sub', 'cli.raw', '--queue', 'workers', '--raw', '--count', '2', '-s', broker.url]);
  await eventually(() => assert.match(run.stderr(), /in queue group "workers"/), { timeoutMs: CLI_TIMEOUT_MS, intervalMs: 50 });
  nc.publish('cli.raw', 'one');
  nc.publish('cli.raw', 'two');
  await nc.flush();
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  assert.equal(run.stdout(), 'one\ntwo\n');
});

test('req prints the reply of a responder and sends the templated body and headers', async (t) => {
  const seen: { body: string; header: string | undefined }[] = [];
  const responder = nc.subscribe('cli.svc', {
    callback: (err, msg) => {
      if (err !== null) return;
      seen.push({ body: msg.string(), header: msg.headers?.get('A') });
      msg.respond(`echo:${msg.string()}`);
    },
  });
  t.after(() => responder.unsubscribe());
  await nc.flush();
  const run = canopy(t, ['req', 'cli.svc', 'ping {{Count}}', '--count', '2', '-H', 'A:b', '-s', broker.url]);
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  assert.equal(run.stdout(), 'echo:ping 1\necho:ping 2\n');
  assert.deepEqual(seen, [
    { body: 'ping 1', header: 'b' },
    { body: 'ping 2', header: 'b' },
  ]);
  assert.match(run.stderr(), /Received with rtt/);
});

test('req with no responder exits 1 with one clear line', async (t) => {
  const run = canopy(t, ['req', 'cli.nobody', 'hi', '--raw', '-s', broker.url]);
  assert.equal(await exitCodeOf(run), 1);
  assert.deepEqual(stderrLines(run), ['canopy: no responders are available for "cli.nobody"']);
  assert.equal(run.stdout(), '');
});

test('req to a subscriber that never answers times out with exit 1', async (t) => {
  const silent = nc.subscribe('cli.silent');
  t.after(() => silent.unsubscribe());
  await nc.flush();
  const run = canopy(t, ['req', 'cli.silent', 'hi', '--raw', '--timeout', '200ms', '-s', broker.url]);
  assert.equal(await exitCodeOf(run), 1);
  assert.deepEqual(stderrLines(run), ['canopy: request on "cli.silent" timed out after 200 ms']);
});

test('reply answers nats.js requests with the templated body, then exits after --count', async (t) => {
  const run = canopy(t, ['reply', 'cli.rep', 'pong {{Count}}: {{Request}}', '--count', '2', '-s', broker.url]);
  await eventually(() => assert.match(run.stderr(), /Listening on "cli\.rep" in group "NATS-RPLY-22"/), { timeoutMs: CLI_TIMEOUT_MS, intervalMs: 50 });
  assert.equal((await nc.request('cli.rep', 'a', { timeout: 5000 })).string(), 'pong 1: a');
  assert.equal((await nc.request('cli.rep', 'b', { timeout: 5000 })).string(), 'pong 2: b');
  assert.equal(await exitCodeOf(run), 0, run.stderr());
  assert.match(run.stdout(), /^\[#1\] Received on "cli\.rep" with reply "_INBOX\.[^"]+"\na\n\n\[#2\]/);
});

test('reply --echo returns the request payload and headers', async (t) => {
  const run = canopy(t, ['reply', 'cli.echo', '--echo', '--count', '1', '-s', broker.url]);
  await eventually(() => assert.match(run.stderr(), /Listening on "cli\.echo"/), { timeoutMs: CLI_TIMEOUT_MS, intervalMs: 50 });
  const requestHeaders = headers();
  requestHeaders.set('Trace', '42');
  const reply = await nc.request('cli.echo', 'same bytes', { timeout: 5000, headers: requestHeaders });
  assert.equal(reply.string(), 'same bytes');
  assert.equal(reply.headers?.get('Trace'), '42');
  assert.equal(await exitCodeOf(run), 0, run.stderr());
});

const badInvocations: { name: string; args: string[]; pattern: RegExp }[] = [
  { name: 'a non-numeric --count', args: ['pub', 'x', 'y', '--count', 'abc'], pattern: /^canopy: invalid value for "count": must be an integer/ },
  { name: 'an unknown flag', args: ['sub', 'x', '--bogus'], pattern: /^canopy: Unknown argument: bogus/ },
  { name: 'an unknown template', args: ['pub', 'x', '{{Nope}}'], pattern: /^canopy: invalid value for "body": unknown template \{\{Nope\}\}/ },
  { name: 'a malformed header', args: ['req', 'x', '-H', 'novalue'], pattern: /^canopy: invalid value for "header": "novalue" must look like Key:Value/ },
  { name: 'a bad server URL', args: ['pub', 'x', '-s', 'http://example.com'], pattern: /^canopy: invalid value for "server".*nats:\/\// },
  { name: 'a missing subject', args: ['reply'], pattern: /^canopy: Not enough non-option arguments/ },
];
for (const { name, args, pattern } of badInvocations) {
  test(`${name} exits 2 with one line`, async (t) => {
    const run = canopy(t, args);
    assert.equal(await exitCodeOf(run), 2);
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, `one line expected, got:\n${run.stderr()}`);
    assert.match(lines[0]!, pattern);
  });
}

test('a refused connection exits 1 with one line naming the server', async (t) => {
  const port = await freePort();
  const run = canopy(t, ['pub', 'x', 'y', '-s', `nats://127.0.0.1:${port}`]);
  assert.equal(await exitCodeOf(run), 1);
  assert.deepEqual(stderrLines(run), [`canopy: cannot connect to nats://127.0.0.1:${port}: connection refused`]);
});

test('templates: natscli spellings render; unknown names and bad Random arguments are errors', () => {
  const now = new Date(2026, 0, 2, 15, 4, 5);
  const template = compileTemplate('{{Count}} {{ .Cnt }} {{Time}} {{Request}} {{Unix}}');
  assert.equal(
    renderTemplate(template, { count: 7, request: 'req', now }),
    `7 7 3:04PM req ${Math.floor(now.getTime() / 1000)}`,
  );
  assert.equal(renderTemplate(compileTemplate('{{Count}}', { isEnabled: false }), { count: 1 }), '{{Count}}');
  assert.equal(formatKitchen(new Date(2026, 0, 2, 0, 7)), '12:07AM');
  assert.match(formatRfc3339(now), /^2026-01-02T15:04:05(Z|[+-]\d\d:\d\d)$/);
  assert.throws(() => compileTemplate('{{Nope}}'), TemplateError);
  assert.throws(() => compileTemplate('{{Random 1}}'), TemplateError);
  assert.throws(() => compileTemplate('{{Count 3}}'), TemplateError);
  assert.throws(() => compileTemplate('open {{Count'), TemplateError);
  for (let i = 0; i < 50; i++) {
    const text = renderTemplate(compileTemplate('{{Random 3 6}}'), { count: 1 });
    assert.match(text, /^[A-Za-z0-9]{3,6}$/);
  }
});
