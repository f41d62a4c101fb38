/**
 * Nothing a client sends to the JetStream API can crash the server or leave it
 * unable to serve. Method: fast-check generates request bodies (random JSON, with
 * the real field names of stream, consumer, get and pull requests, given values of
 * every type) and subjects (every API verb, with odd names); each request must get
 * an answer or be ignored, and afterwards a normal stream create/publish/fetch works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startTestBroker } from '../../helpers/broker.ts';
import { recordingLogger } from '../../helpers/recording-logger.ts';

const FIELDS = [
  'name', 'subjects', 'retention', 'max_consumers', 'max_msgs', 'max_bytes', 'max_age', 'max_msgs_per_subject', 'max_msg_size',
  'discard', 'storage', 'num_replicas', 'no_ack', 'duplicate_window', 'mirror', 'sources', 'sealed', 'deny_delete', 'deny_purge',
  'allow_rollup_hdrs', 'allow_direct', 'metadata', 'consumer_limits', 'first_seq', 'republish', 'subject_transform',
  'stream_name', 'config', 'action', 'durable_name', 'deliver_policy', 'opt_start_seq', 'opt_start_time', 'ack_policy', 'ack_wait',
  'max_deliver', 'backoff', 'filter_subject', 'filter_subjects', 'replay_policy', 'max_waiting', 'max_ack_pending', 'deliver_subject',
  'deliver_group', 'idle_heartbeat', 'flow_control', 'headers_only', 'inactive_threshold', 'batch', 'expires', 'no_wait',
  'max_bytes', 'seq', 'last_by_subj', 'next_by_subj', 'filter', 'keep', 'offset', 'subject', 'subjects_filter', 'deleted_details',
];
const VERBS = [
  'INFO', 'STREAM.CREATE.S', 'STREAM.UPDATE.S', 'STREAM.INFO.S', 'STREAM.NAMES', 'STREAM.LIST', 'STREAM.DELETE.S', 'STREAM.PURGE.S',
  'STREAM.MSG.GET.S', 'STREAM.MSG.DELETE.S', 'DIRECT.GET.S', 'DIRECT.GET.S.a.b', 'CONSUMER.CREATE.S', 'CONSUMER.CREATE.S.C',
  'CONSUMER.CREATE.S.C.a.>', 'CONSUMER.DURABLE.CREATE.S.C', 'CONSUMER.INFO.S.C', 'CONSUMER.NAMES.S', 'CONSUMER.LIST.S',
  'CONSUMER.DELETE.S.C', 'CONSUMER.MSG.NEXT.S.C', 'STREAM.CREATE.', 'STREAM.INFO.*', 'CONSUMER.CREATE.S.*', 'STREAM.X.Y',
];

const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -1, 1, 2 ** 53, -(2 ** 63), 1e300, Number.NaN, '', '>', '*', 'a.b', '$JS.>', 'new', 'all', 'explicit', 'file', 'memory', 'S', 'C'),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...FIELDS), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { maxKeys: 8 }).map((object) => JSON.stringify(object)),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '{', '[]', 'null', '{"config":null}', '{"config":{"durable_name":"C"}}', '{"batch":-1}', '{"expires":-5}'),
);

test('random JetStream API requests never crash the server or break it', async (t) => {
  const log = recordingLogger();
  const broker = await startTestBroker({}, log);
  t.after(() => broker.close());
  const nc = await connect({ servers: broker.url });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'S', subjects: ['a.>'] });
  const js = jetstream(nc);
  await js.publish('a.b', 'x');
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...VERBS), body, fc.boolean(), async (verb, text, withHeaders) => {
      const subject = `$JS.API.${verb}`;
      const options = withHeaders ? { timeout: 300, headers: headers() } : { timeout: 300 };
      try {
        await nc.request(subject, text, options);
        answered++;
      } catch {
        // No answer (an ignored request) or a no-responders status are both acceptable outcomes.
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(answered > 100, `most requests got an answer (${answered})`);
  // Every refusal came from a handler's own checks: none reached the API's catch-all (an
  // exception or a failed assertion on the way, answered as a bare 'bad request').
  const failures = log.records.filter((record) => record.msg === 'api request failed');
  assert.deepEqual(failures.map((record) => String(record.fields['err'])), []);
  // The server still works normally.
  await jsm.streams.delete('S').catch(() => undefined);
  await jsm.streams.add({ name: 'AFTER', subjects: ['after'] });
  const ack = await js.publish('after', 'still fine');
  assert.equal(ack.stream, 'AFTER');
  await jsm.consumers.add('AFTER', { durable_name: 'D', ack_policy: 'explicit' as never });
  const consumer = await js.consumers.get('AFTER', 'D');
  const message = await consumer.next({ expires: 2000 });
  assert.equal(message?.string(), 'still fine');
});

test('a purge request with a malformed seq, keep or filter is a bad request (10003) and purges nothing', async (t) => {
  // Regression (found by test/core/server fuzzing): a fractional or huge seq reached an
  // assertion in the store's purge plan, and a negative seq or a non-string filter was read as
  // "absent", purging the whole stream. nats-server refuses them all when it unmarshals the request.
  const broker = await startTestBroker();
  t.after(() => broker.close());
  const nc = await connect({ servers: broker.url });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'P', subjects: ['p.>'] });
  const js = jetstream(nc);
  for (let i = 0; i < 3; i++) await js.publish(`p.${i}`, 'x');
  const bodies = ['{"seq":1.5}', '{"seq":1e20}', '{"seq":-1}', '{"seq":"2"}', '{"keep":-1}', '{"keep":0.5}', '{"keep":true}', '{"filter":5}', '{"filter":["p.>"]}'];
  for (const text of bodies) {
    const reply = (await nc.request('$JS.API.STREAM.PURGE.P', text, { timeout: 2000 })).json<{ error?: { code: number; err_code: number } }>();
    assert.deepEqual(reply.error && { code: reply.error.code, err_code: reply.error.err_code }, { code: 400, err_code: 10003 }, text);
  }
  assert.equal((await jsm.streams.info('P')).state.messages, 3, 'nothing was purged');
  // null means absent, as in Go: the whole stream is purged.
  const reply = (await nc.request('$JS.API.STREAM.PURGE.P', '{"seq":null,"keep":null,"filter":null}', { timeout: 2000 })).json<{ purged?: number }>();
  assert.equal(reply.purged, 3);
});

test('a stream config whose sources is not a list is an invalid config (10052), like subjects', async (t) => {
  // Regression (found by fuzzing raw requests at the API): a `sources` object or number reached
  // a spread in the config checks, threw a TypeError and was answered as an internal failure.
  const broker = await startTestBroker();
  t.after(() => broker.close());
  const nc = await connect({ servers: broker.url });
  t.after(() => nc.close());
  for (const sources of ['5', '{"name":"S"}', 'true']) {
    const text = `{"name":"X","subjects":["x"],"sources":${sources}}`;
    const reply = (await nc.request('$JS.API.STREAM.CREATE.X', text, { timeout: 2000 })).json<{ type: string; error?: { err_code: number; description: string } }>();
    assert.equal(reply.type, 'io.nats.jetstream.api.v1.stream_create_response', text);
    assert.deepEqual(reply.error && [reply.error.err_code, reply.error.description], [10052, 'sources must be a list'], text);
  }
});
