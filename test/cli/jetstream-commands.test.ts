/**
 * `canopy stream|consumer|kv` as users run them: the real CLI in a child process
 * against an in-process canopy broker with JetStream (a temp store dir), every
 * effect checked independently with the official nats.js clients.
 *
 * CANOPY_CLI_TEST_NATS_SERVER=1 runs the same tests against Debian's
 * `nats-server -js` instead (the reference the CLI was developed against).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { startTestBroker } from '../helpers/broker.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort, runCanopy, type CliRun } from '../helpers/processes.ts';

/** CLI startup goes through tsx; give it room on a busy machine. */
const CLI_TIMEOUT_MS = 30_000;
const NATS_SERVER_START_TIMEOUT_MS = 10_000;
const isAgainstNatsServer = process.env['CANOPY_CLI_TEST_NATS_SERVER'] === '1';

type Target = { readonly url: string; close(): Promise<void> };

/** `nats-server -js` on a free port with a temp store dir; resolves once it accepts clients. */
async function startNatsServer(): Promise<Target> {
  const storeDir = mkdtempSync(join(tmpdir(), 'canopy-cli-js-'));
  const port = await freePort();
  const child: ChildProcess = spawn('nats-server', ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(storeDir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      const probe = await connect({ servers: url, reconnect: false, timeout: 500 });
      await probe.close();
    }, { timeoutMs: NATS_SERVER_START_TIMEOUT_MS });
  } catch (err) {
    await close();
    throw err;
  }
  return { url, close };
}

async function startTarget(): Promise<Target> {
  if (isAgainstNatsServer) return await startNatsServer();
  const broker = await startTestBroker();
  return { url: broker.url, close: () => broker.close() };
}

type Result = { readonly code: number | string; readonly stdout: string; readonly stderr: string };

// Every test has its own streams, consumers and buckets, so they may run side by side (most of the
// time goes into starting the CLI through tsx).
describe(`canopy stream|consumer|kv against ${isAgainstNatsServer ? 'nats-server -js' : 'canopy'}`, { concurrency: 3 }, () => {
  let target: Target;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;

  before(async () => {
    target = await startTarget();
    nc = await connect({ servers: target.url, reconnect: false });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });

  after(async () => {
    await nc?.close();
    await target?.close();
  });

  /** Runs `canopy <args> -s <url>` to the end; the child is killed when the test ends, whatever happened. */
  async function canopy(t: { after(fn: () => void): void }, args: readonly string[]): Promise<Result> {
    const run: CliRun = runCanopy([...args, '-s', target.url]);
    t.after(() => run.child.kill('SIGKILL'));
    return await finished(run);
  }

  async function finished(run: CliRun): Promise<Result> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no exit within ${CLI_TIMEOUT_MS} ms`), CLI_TIMEOUT_MS);
    });
    const code = await Promise.race([run.exited, timeout]);
    clearTimeout(timer);
    return { code, stdout: run.stdout(), stderr: run.stderr() };
  }

  function assertOk(result: Result): void {
    assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  }

  /** Exit code `code` and exactly one stderr line, which is returned. */
  function assertFailsWithOneLine(result: Result, code: number): string {
    assert.equal(result.code, code, `exit ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `expected one stderr line, got: ${result.stderr}`);
    assert.match(lines[0] ?? '', /^canopy: /);
    return lines[0] ?? '';
  }

  async function streamInfoOrNull(name: string): Promise<StreamInfo | null> {
    try {
      return await jsm.streams.info(name);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10059) return null;
      throw err;
    }
  }

  async function publishNumbered(subjectPrefix: string, count: number): Promise<void> {
    for (let i = 1; i <= count; i++) await js.publish(`${subjectPrefix}.${i}`, `payload ${i}`);
  }

  test('stream add turns every flag into the StreamConfig the server stores', async (t) => {
    const result = await canopy(t, [
      'stream', 'add', 'CLI_ADD',
      '--subjects', 'cliadd.a.>,cliadd.b',
      '--storage', 'memory',
      '--retention', 'limits',
      '--max-msgs', '1000',
      '--max-bytes', '1MB',
      '--max-age', '1h',
      '--max-msg-size', '2KB',
      '--max-msgs-per-subject', '7',
      '--discard', 'new',
      '--dupe-window', '30s',
      '--allow-direct',
      '--allow-rollup',
      '--deny-delete',
      '--replicas', '1',
    ]);
    assertOk(result);
    assert.match(result.stdout, /^Stream CLI_ADD was created/);
    assert.match(result.stdout, /Maximum age: +1h0m0s/);
    const { config } = await jsm.streams.info('CLI_ADD');
    assert.deepEqual(config.subjects, ['cliadd.a.>', 'cliadd.b']);
    assert.equal(config.storage, 'memory');
    assert.equal(config.retention, 'limits');
    assert.equal(config.max_msgs, 1000);
    assert.equal(config.max_bytes, 1024 * 1024);
    assert.equal(config.max_age, 3_600_000_000_000);
    assert.equal(config.max_msg_size, 2048);
    assert.equal(config.max_msgs_per_subject, 7);
    assert.equal(config.discard, 'new');
    assert.equal(config.duplicate_window, 30_000_000_000);
    assert.equal(config.allow_direct, true);
    assert.equal(config.allow_rollup_hdrs, true);
    assert.equal(config.deny_delete, true);
    assert.equal(config.deny_purge, false);
    assert.equal(config.num_replicas, 1);
  });

  test('stream add --retention workqueue --deny-purge, then --json info prints the raw StreamInfo', async (t) => {
    assertOk(await canopy(t, ['stream', 'add', 'CLI_WQ', '--subjects', 'cliwq.>', '--retention', 'workqueue', '--deny-purge']));
    const info = await canopy(t, ['stream', 'info', 'CLI_WQ', '--json']);
    assertOk(info);
    const parsed = JSON.parse(info.stdout) as StreamInfo;
    assert.equal(parsed.config.name, 'CLI_WQ');
    assert.equal(parsed.config.retention, 'workqueue');
    assert.equal(parsed.config.deny_purge, true);
    assert.equal(parsed.state.messages, 0);
  });

  test('stream ls prints names; --long a table with messages, bytes and subjects', async (t) => {
    await jsm.streams.add({ name: 'CLI_LS', subjects: ['clils.>'] });
    await publishNumbered('clils', 3);
    const names = await canopy(t, ['stream', 'ls']);
    assertOk(names);
    assert.ok(names.stdout.split('\n').includes('CLI_LS'), names.stdout);
    const long = await canopy(t, ['stream', 'ls', '--long']);
    assertOk(long);
    const lines = long.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^Name +Messages +Bytes +Storage +Subjects$/);
    const bytes = (await jsm.streams.info('CLI_LS')).state.bytes;
    const row = lines.find((line) => line.startsWith('CLI_LS '));
    assert.ok(row !== undefined, long.stdout);
    assert.match(row, new RegExp(`^CLI_LS +3 +${bytes} B +file +clils\\.>$`));
  });

  test('stream info prints a readable summary of config and state', async (t) => {
    await jsm.streams.add({ name: 'CLI_INFO', subjects: ['cliinfo.*'], max_msgs_per_subject: 2 });
    await publishNumbered('cliinfo', 4);
    await js.publish('cliinfo.1', 'again');
    const result = await canopy(t, ['stream', 'info', 'CLI_INFO']);
    assertOk(result);
    assert.match(result.stdout, /^Stream CLI_INFO \(created \d{4}-\d\d-\d\dT/);
    assert.match(result.stdout, /Subjects: +cliinfo\.\*\n/);
    assert.match(result.stdout, /Maximum messages per subject: 2\n/);
    assert.match(result.stdout, /Messages: +5\n/);
    assert.match(result.stdout, /Last sequence: +5 @ \d{4}-/);
    assert.match(result.stdout, /Number of subjects: +4\n/);
  });

  test('stream get prints subject, sequence, time, headers and payload; --last-for picks the last on a subject', async (t) => {
    await jsm.streams.add({ name: 'CLI_GET', subjects: ['cliget.>'] });
    const h = headers();
    h.set('X-Trace', 'abc-123');
    await js.publish('cliget.one', 'first body', { headers: h });
    await js.publish('cliget.two', 'second body');
    await js.publish('cliget.one', 'third body');
    const bySeq = await canopy(t, ['stream', 'get', 'CLI_GET', '1']);
    assertOk(bySeq);
    assert.match(bySeq.stdout, /^Item: CLI_GET#1 received \d{4}-\d\d-\d\dT[\d:.]+Z on subject cliget\.one\n\nHeaders:\n {2}X-Trace: abc-123\n\nfirst body\n$/);
    const last = await canopy(t, ['stream', 'get', 'CLI_GET', '--last-for', 'cliget.one']);
    assertOk(last);
    assert.match(last.stdout, /^Item: CLI_GET#3 received .* on subject cliget\.one\n\nthird body\n$/);
    const missing = await canopy(t, ['stream', 'get', 'CLI_GET', '99']);
    assert.match(assertFailsWithOneLine(missing, 1), /no message found .*10037/);
  });

  test('stream purge needs --force, and purges with --keep, then by --subject', async (t) => {
    await jsm.streams.add({ name: 'CLI_PURGE', subjects: ['clipurge.>'] });
    await publishNumbered('clipurge', 6);
    await js.publish('clipurge.3', 'again');
    const refused = await canopy(t, ['stream', 'purge', 'CLI_PURGE']);
    assert.match(assertFailsWithOneLine(refused, 2), /--force/);
    assert.equal((await jsm.streams.info('CLI_PURGE')).state.messages, 7);
    const keep = await canopy(t, ['stream', 'purge', 'CLI_PURGE', '--keep', '5', '--force']);
    assertOk(keep);
    assert.equal(keep.stdout, 'Purged 2 messages from stream CLI_PURGE\n');
    assert.equal((await jsm.streams.info('CLI_PURGE')).state.first_seq, 3);
    const bySubject = await canopy(t, ['stream', 'purge', 'CLI_PURGE', '--subject', 'clipurge.3', '--force']);
    assertOk(bySubject);
    assert.equal(bySubject.stdout, 'Purged 2 messages from stream CLI_PURGE\n');
    const { state } = await jsm.streams.info('CLI_PURGE');
    assert.equal(state.messages, 3);
    assert.equal(state.first_seq, 4);
    assert.equal(state.last_seq, 7);
  });

  test('stream rm refuses without --force and deletes with it', async (t) => {
    await jsm.streams.add({ name: 'CLI_RM', subjects: ['clirm'] });
    const refused = await canopy(t, ['stream', 'rm', 'CLI_RM']);
    assert.match(assertFailsWithOneLine(refused, 2), /refusing to delete stream CLI_RM .*--force/);
    assert.notEqual(await streamInfoOrNull('CLI_RM'), null);
    const removed = await canopy(t, ['stream', 'rm', 'CLI_RM', '--force']);
    assertOk(removed);
    assert.equal(removed.stdout, 'Deleted stream CLI_RM\n');
    assert.equal(await streamInfoOrNull('CLI_RM'), null);
  });

  test('an unknown stream exits 1 with the server’s "stream not found" and its err_code', async (t) => {
    const info = await canopy(t, ['stream', 'info', 'CLI_NOPE']);
    assert.match(assertFailsWithOneLine(info, 1), /^canopy: cannot get stream CLI_NOPE: stream not found \(code 404, err_code 10059\)$/);
    const consumers = await canopy(t, ['consumer', 'ls', 'CLI_NOPE']);
    assert.match(assertFailsWithOneLine(consumers, 1), /stream not found .*10059/);
  });

  test('a bad flag exits 2 with one line and changes nothing on the server', async (t) => {
    const badStorage = await canopy(t, ['stream', 'add', 'CLI_BAD', '--storage', 'disk']);
    assert.match(assertFailsWithOneLine(badStorage, 2), /storage.*file, memory/);
    const unknownFlag = await canopy(t, ['stream', 'add', 'CLI_BAD', '--no-such-flag', 'x']);
    assert.match(assertFailsWithOneLine(unknownFlag, 2), /Unknown argument/);
    const badDuration = await canopy(t, ['stream', 'add', 'CLI_BAD', '--max-age', 'soon']);
    assert.match(assertFailsWithOneLine(badDuration, 2), /max-age.*duration/);
    const badName = await canopy(t, ['stream', 'add', 'CLI.BAD']);
    assert.match(assertFailsWithOneLine(badName, 2), /cannot contain/);
    assert.equal(await streamInfoOrNull('CLI_BAD'), null);
  });

  test('consumer add turns the flags into the ConsumerConfig; pull durable, push and ephemeral', async (t) => {
    await jsm.streams.add({ name: 'CLI_CADD', subjects: ['clicadd.>'] });
    await publishNumbered('clicadd', 3);
    const pull = await canopy(t, [
      'consumer', 'add', 'CLI_CADD', 'WORKER',
      '--filter', 'clicadd.>',
      '--deliver', '2',
      '--ack', 'explicit',
      '--max-deliver', '5',
      '--ack-wait', '45s',
      '--max-ack-pending', '50',
      '--pull',
    ]);
    assertOk(pull);
    assert.match(pull.stdout, /^Consumer WORKER was created on stream CLI_CADD/);
    const worker = await jsm.consumers.info('CLI_CADD', 'WORKER');
    assert.equal(worker.config.durable_name, 'WORKER');
    assert.equal(worker.config.filter_subject, 'clicadd.>');
    assert.equal(worker.config.deliver_policy, 'by_start_sequence');
    assert.equal(worker.config.opt_start_seq, 2);
    assert.equal(worker.config.ack_policy, 'explicit');
    assert.equal(worker.config.max_deliver, 5);
    assert.equal(worker.config.ack_wait, 45_000_000_000);
    assert.equal(worker.config.max_ack_pending, 50);
    assert.equal(worker.config.deliver_subject, undefined);
    assert.equal(worker.num_pending, 2);

    assertOk(await canopy(t, ['consumer', 'add', 'CLI_CADD', 'PUSHER', '--deliver-subject', 'clicadd_out', '--deliver', 'last', '--ack', 'none']));
    const pusher = await jsm.consumers.info('CLI_CADD', 'PUSHER');
    assert.equal(pusher.config.deliver_subject, 'clicadd_out');
    assert.equal(pusher.config.deliver_policy, 'last');
    assert.equal(pusher.config.ack_policy, 'none');

    assertOk(await canopy(t, ['consumer', 'add', 'CLI_CADD', 'EPHEMERAL', '--ephemeral', '--deliver', 'new']));
    const ephemeral = await jsm.consumers.info('CLI_CADD', 'EPHEMERAL');
    assert.equal(ephemeral.config.durable_name, undefined);
    assert.equal(ephemeral.config.deliver_policy, 'new');

    const conflict = await canopy(t, ['consumer', 'add', 'CLI_CADD', 'BOTH', '--pull', '--deliver-subject', 'x']);
    assert.match(assertFailsWithOneLine(conflict, 2), /push consumer/);
  });

  test('consumer ls and consumer info (readable and --json)', async (t) => {
    await jsm.streams.add({ name: 'CLI_CLS', subjects: ['clicls.>'] });
    await jsm.consumers.add('CLI_CLS', { durable_name: 'B_SECOND', ack_policy: 'explicit' });
    await jsm.consumers.add('CLI_CLS', { durable_name: 'A_FIRST', ack_policy: 'explicit', filter_subject: 'clicls.x' });
    const ls = await canopy(t, ['consumer', 'ls', 'CLI_CLS']);
    assertOk(ls);
    assert.equal(ls.stdout, 'A_FIRST\nB_SECOND\n');
    const info = await canopy(t, ['consumer', 'info', 'CLI_CLS', 'A_FIRST']);
    assertOk(info);
    assert.match(info.stdout, /^Consumer A_FIRST on stream CLI_CLS/);
    assert.match(info.stdout, /Filter: +clicls\.x\n/);
    assert.match(info.stdout, /Ack policy: +explicit\n/);
    assert.match(info.stdout, /Ack pending: +0\n/);
    const json = await canopy(t, ['consumer', 'info', 'CLI_CLS', 'B_SECOND', '--json']);
    assertOk(json);
    const parsed = JSON.parse(json.stdout) as { name: string; stream_name: string; config: { ack_policy: string } };
    assert.equal(parsed.name, 'B_SECOND');
    assert.equal(parsed.stream_name, 'CLI_CLS');
    assert.equal(parsed.config.ack_policy, 'explicit');
    const missing = await canopy(t, ['consumer', 'info', 'CLI_CLS', 'NOPE']);
    assert.match(assertFailsWithOneLine(missing, 1), /consumer not found .*10014/);
  });

  test('consumer next prints the messages in order and acks them: num_ack_pending is 0 afterwards', async (t) => {
    await jsm.streams.add({ name: 'CLI_NEXT', subjects: ['clinext.>'] });
    const h = headers();
    h.set('X-Order', '1');
    await js.publish('clinext.a', 'alpha', { headers: h });
    await js.publish('clinext.b', 'beta');
    await js.publish('clinext.c', 'gamma');
    await jsm.consumers.add('CLI_NEXT', { durable_name: 'READER', ack_policy: 'explicit' });
    const result = await canopy(t, ['consumer', 'next', 'CLI_NEXT', 'READER', '--count', '2']);
    assertOk(result);
    assert.match(result.stdout, /^\[#1\] stream CLI_NEXT seq 1, consumer seq 1, subject "clinext\.a", .*\nX-Order: 1\n\nalpha\n/);
    assert.match(result.stdout, /\[#2\] stream CLI_NEXT seq 2, consumer seq 2, subject "clinext\.b", .*\n\nbeta\n/);
    assert.ok(!result.stdout.includes('gamma'));
    const acked = await jsm.consumers.info('CLI_NEXT', 'READER');
    assert.equal(acked.num_ack_pending, 0);
    assert.equal(acked.ack_floor.stream_seq, 2);
    assert.equal(acked.num_pending, 1);

    const noAck = await canopy(t, ['consumer', 'next', 'CLI_NEXT', 'READER', '--no-ack']);
    assertOk(noAck);
    assert.match(noAck.stdout, /gamma/);
    const pending = await jsm.consumers.info('CLI_NEXT', 'READER');
    assert.equal(pending.num_ack_pending, 1);
    assert.equal(pending.ack_floor.stream_seq, 2);

    await jsm.consumers.add('CLI_NEXT', { durable_name: 'EMPTY', ack_policy: 'explicit', deliver_policy: 'new' });
    const empty = await canopy(t, ['consumer', 'next', 'CLI_NEXT', 'EMPTY', '--timeout', '1s']);
    assert.match(assertFailsWithOneLine(empty, 1), /no message arrived/);
  });

  test('consumer rm refuses without --force and deletes with it', async (t) => {
    await jsm.streams.add({ name: 'CLI_CRM', subjects: ['clicrm'] });
    await jsm.consumers.add('CLI_CRM', { durable_name: 'GONE', ack_policy: 'explicit' });
    const refused = await canopy(t, ['consumer', 'rm', 'CLI_CRM', 'GONE']);
    assert.match(assertFailsWithOneLine(refused, 2), /--force/);
    assert.equal((await jsm.consumers.info('CLI_CRM', 'GONE')).name, 'GONE');
    assertOk(await canopy(t, ['consumer', 'rm', 'CLI_CRM', 'GONE', '--force']));
    await assert.rejects(jsm.consumers.info('CLI_CRM', 'GONE'), (err: unknown) => err instanceof JetStreamApiError && err.code === 10014);
  });

  test('kv add maps its flags onto the KV_ stream', async (t) => {
    const result = await canopy(t, ['kv', 'add', 'CLIKV_ADD', '--history', '5', '--ttl', '1h', '--max-bytes', '1MB', '--max-value-size', '1KB', '--storage', 'memory']);
    assertOk(result);
    assert.match(result.stdout, /^Bucket CLIKV_ADD is ready/);
    const { config } = await jsm.streams.info('KV_CLIKV_ADD');
    assert.deepEqual(config.subjects, ['$KV.CLIKV_ADD.>']);
    assert.equal(config.max_msgs_per_subject, 5);
    assert.equal(config.max_age, 3_600_000_000_000);
    assert.equal(config.max_bytes, 1024 * 1024);
    assert.equal(config.max_msg_size, 1024);
    assert.equal(config.storage, 'memory');
    assert.equal(config.allow_rollup_hdrs, true);
  });

  test('kv put, get (latest, --revision, --raw), del, history and ls', async (t) => {
    assertOk(await canopy(t, ['kv', 'add', 'CLIKV', '--history', '10']));
    const put1 = await canopy(t, ['kv', 'put', 'CLIKV', 'user.name', 'bob']);
    assertOk(put1);
    assert.equal(put1.stdout, 'Stored CLIKV > user.name at revision 1\n');
    assertOk(await canopy(t, ['kv', 'put', 'CLIKV', 'user.name', '007']));
    assertOk(await canopy(t, ['kv', 'put', 'CLIKV', 'other', 'x y']));

    const latest = await canopy(t, ['kv', 'get', 'CLIKV', 'user.name']);
    assertOk(latest);
    assert.match(latest.stdout, /^CLIKV > user\.name revision 2 created \d{4}-[^\n]+\n\n007\n$/);
    const first = await canopy(t, ['kv', 'get', 'CLIKV', 'user.name', '--revision', '1']);
    assertOk(first);
    assert.match(first.stdout, /revision 1 .*\n\nbob\n$/);
    const raw = await canopy(t, ['kv', 'get', 'CLIKV', 'other', '--raw']);
    assertOk(raw);
    assert.equal(raw.stdout, 'x y');

    const keys = await canopy(t, ['kv', 'ls', 'CLIKV']);
    assertOk(keys);
    assert.equal(keys.stdout, 'other\nuser.name\n');
    const buckets = await canopy(t, ['kv', 'ls']);
    assertOk(buckets);
    assert.ok(buckets.stdout.split('\n').includes('CLIKV'), buckets.stdout);

    assertOk(await canopy(t, ['kv', 'del', 'CLIKV', 'user.name']));
    const entry = await (await new Kvm(js).open('CLIKV')).get('user.name');
    assert.equal(entry?.operation, 'DEL');
    const deleted = await canopy(t, ['kv', 'get', 'CLIKV', 'user.name']);
    assert.match(assertFailsWithOneLine(deleted, 1), /user\.name .*deleted at revision 4/);

    const history = await canopy(t, ['kv', 'history', 'CLIKV', 'user.name']);
    assertOk(history);
    const rows = history.stdout.trimEnd().split('\n');
    assert.match(rows[0] ?? '', /^Revision +Op +Created +Length +Value$/);
    assert.match(rows[1] ?? '', /^1 +PUT +\S+ +3 +bob$/);
    assert.match(rows[2] ?? '', /^2 +PUT +\S+ +3 +007$/);
    assert.match(rows[3] ?? '', /^4 +DEL +\S+ +0$/);
    assert.equal(rows.length, 4);

    assertOk(await canopy(t, ['kv', 'del', 'CLIKV', 'other', '--purge']));
    const purged = await jsm.streams.info('KV_CLIKV', { subjects_filter: '$KV.CLIKV.other' });
    assert.deepEqual(purged.state.subjects, { '$KV.CLIKV.other': 1 });
    const afterPurge = await canopy(t, ['kv', 'ls', 'CLIKV']);
    assertOk(afterPurge);
    assert.equal(afterPurge.stdout, '');

    const missingBucket = await canopy(t, ['kv', 'get', 'CLIKV_NOPE', 'k']);
    assert.match(assertFailsWithOneLine(missingBucket, 1), /stream not found .*10059/);
  });

  test('kv watch prints the current values, then updates, and exits after --count', async (t) => {
    const kv = await new Kvm(js).create('CLIKV_WATCH');
    await kv.put('a', 'one');
    const run = runCanopy(['kv', 'watch', 'CLIKV_WATCH', '--count', '3', '-s', target.url]);
    t.after(() => run.child.kill('SIGKILL'));
    await eventually(() => assert.match(run.stdout(), /PUT CLIKV_WATCH > a: one\n/), { timeoutMs: CLI_TIMEOUT_MS });
    await kv.put('b', 'two');
    await kv.delete('a');
    const result = await finished(run);
    assertOk(result);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, result.stdout);
    assert.match(lines[0] ?? '', /^\[\d{4}-[^\]]+\] PUT CLIKV_WATCH > a: one$/);
    assert.match(lines[1] ?? '', /^\[\d{4}-[^\]]+\] PUT CLIKV_WATCH > b: two$/);
    assert.match(lines[2] ?? '', /^\[\d{4}-[^\]]+\] DEL CLIKV_WATCH > a$/);
  });
});
