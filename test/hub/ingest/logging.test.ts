/**
 * What the hub logs about its leaves (STYLE.md §2.7): a child logger per link with `{ link, leaf }`,
 * info on up and down with the reason, warnings on gaps, incarnation changes and refused leaves,
 * an error on a refused stream; and the listener's start line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStream } from '../../../core/jetstream/api/stream-api.ts';
import { JsApiError } from '../../../core/jetstream/api/errors.generated.ts';
import { LinkTestClient, messages, newIncarnation, RecordingLogger, startTestHub } from './link-test-client.ts';

test('link lifecycle, gaps, incarnation changes and refusals are logged with the link and leaf bindings', async (t) => {
  const log = new RecordingLogger();
  const hub = await startTestHub({ log, tokens: { 'gw-log': 'tok' } });
  t.after(() => hub.close());
  const [listening] = log.find('listening for leaf connections', 'info');
  assert.equal(listening?.fields['port'], hub.hub.acceptor!.port);
  assert.equal(listening?.fields['component'], 'link');

  const refused = await LinkTestClient.open(hub.linkUrl);
  await refused.hello('gw-log', { token: 'nope' });
  await refused.waitClosed();
  assert.equal(log.find('leaf refused', 'warn')[0]?.fields['reason'], 'unknown leaf or wrong token');

  const client = await LinkTestClient.connect(hub.linkUrl, 'gw-log', { token: 'tok' });
  const first = { stream: 'LOGGED', incarnation: newIncarnation() };
  client.offer(first, 1, 4);
  await client.expect('cursor');
  client.batch(first, messages(1, 1));
  client.gap(first, 2, 3, 'limits');
  await client.cursorAt(first, 3);
  const second = { stream: 'LOGGED', incarnation: newIncarnation() };
  client.offer(second, 1, 1);
  await client.expect('cursor');
  client.offer({ stream: 'bad.name', incarnation: newIncarnation() }, 1, 1);
  await client.expect('error');
  // A stream whose hub stream refuses the very first message: no cursor, an error frame, an error log.
  const created = await createStream(hub.hub.broker.jetstream!, { name: 'TINY', subjects: ['tiny'], max_msg_size: 100 });
  assert.ok(!(created instanceof JsApiError));
  const tiny = { stream: 'TINY', incarnation: newIncarnation() };
  client.offer(tiny, 1, 1);
  await client.expect('cursor');
  client.batch(tiny, [{ ...messages(1, 1)[0]!, data: Buffer.alloc(500) }]);
  const refusal = await client.expect('error');
  assert.equal(refusal.code, 'stream');
  client.close();
  const [storeRefused] = log.find('leaf stream refused by the hub', 'error');
  assert.equal(storeRefused?.fields['stream'], 'TINY');
  assert.match(String(storeRefused?.fields['reason']), /refused message 1: .*(maximum|size)/i);

  const [up] = log.find('leaf link up', 'info');
  assert.equal(up?.fields['leaf'], 'gw-log');
  assert.equal(typeof up?.fields['link'], 'number');
  const [gap] = log.find('gap in a leaf stream recorded', 'warn');
  assert.deepEqual({ leaf: gap?.fields['leaf'], from: gap?.fields['from'], to: gap?.fields['to'], reason: gap?.fields['reason'] }, { leaf: 'gw-log', from: 2, to: 3, reason: 'limits' });
  const [incarnation] = log.find('leaf stream has a new incarnation', 'warn');
  assert.equal(incarnation?.fields['previous'], first.incarnation);
  assert.equal(incarnation?.fields['incarnation'], second.incarnation);
  const [streamRefused] = log.find('leaf stream refused', 'warn');
  assert.equal(streamRefused?.fields['stream'], 'bad.name');
  assert.equal(streamRefused?.fields['leaf'], 'gw-log');
  const down = await (async () => {
    for (let i = 0; i < 100; i++) {
      const [record] = log.find('leaf link down', 'info');
      if (record !== undefined) return record;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return undefined;
  })();
  assert.equal(down?.fields['leaf'], 'gw-log');
  assert.match(String(down?.fields['reason']), /peer closed/);
});
