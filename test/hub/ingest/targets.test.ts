/**
 * Where leaf streams land when the hub operator says so (hub/ingest/ingest-target.ts): another
 * target stream ("canopy.ingest.streams") and a subject template ("canopy.ingest.subject"),
 * driven by a raw link client, checked with the official nats.js JetStream client.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseTemplate } from '../../../hub/ingest/ingest-target.ts';
import { describeHub, messages, newIncarnation } from './link-test-client.ts';

describe('leaf streams landing in a hub stream the operator chose', () => {
  const fixture = describeHub();
  const leaf = fixture.leaf;

  test('two leaf streams of two leaves land in one regional stream under the template; each keeps its own cursor', async () => {
    await fixture.jsm().streams.add({
      name: 'REGION',
      subjects: ['eu.>'],
      metadata: { 'canopy.ingest.streams': 'ORDERS, EVENTS', 'canopy.ingest.subject': 'eu.{leaf}.in.{subject}' },
    });
    const a = await leaf('gwA');
    const b = await leaf('gwB');
    const orders = { stream: 'ORDERS', incarnation: newIncarnation() };
    const events = { stream: 'EVENTS', incarnation: newIncarnation() };
    for (const [client, key] of [[a, orders], [a, events], [b, orders]] as const) {
      client.offer(key, 1, 2);
      assert.equal((await client.expect('cursor')).seq, 0);
      client.batch(key, messages(1, 2, `${key.stream.toLowerCase()}.x`));
      await client.cursorAt(key, 2);
    }
    const info = await fixture.jsm().streams.info('REGION');
    assert.equal(info.state.messages, 6);
    const subjects: string[] = [];
    for (let seq = 1; seq <= 6; seq++) {
      const stored = await fixture.jsm().streams.getMessage('REGION', { seq });
      assert.ok(stored !== null);
      subjects.push(stored.subject);
      assert.equal(stored.subject.split('.')[1], stored.header.get('Canopy-Origin-Leaf'), 'the leaf name is the template token');
    }
    assert.deepEqual(subjects, ['eu.gwA.in.orders.x', 'eu.gwA.in.orders.x', 'eu.gwA.in.events.x', 'eu.gwA.in.events.x', 'eu.gwB.in.orders.x', 'eu.gwB.in.orders.x']);
    // No stream of the leaf streams' own names was created.
    await assert.rejects(fixture.jsm().streams.info('ORDERS'));
    await assert.rejects(fixture.jsm().streams.info('EVENTS'));

    // Each (leaf, stream) resumes from its own cursor, kept in REGION.
    const again = await leaf('gwA');
    again.offer(orders, 1, 2);
    assert.equal((await again.expect('cursor')).seq, 2);
    again.offer(events, 1, 2);
    assert.equal((await again.expect('cursor')).seq, 2);
  });

  test('a leaf stream claimed by two hub streams, or a template without {leaf}, is refused with the reason', async () => {
    await fixture.jsm().streams.add({ name: 'CLAIM_A', subjects: ['claim.a'], metadata: { 'canopy.ingest.streams': 'TWICE' } });
    await fixture.jsm().streams.add({ name: 'CLAIM_B', subjects: ['claim.b'], metadata: { 'canopy.ingest.streams': 'TWICE' } });
    await fixture.jsm().streams.add({ name: 'NO_NAMESPACE', subjects: ['flat.>'], metadata: { 'canopy.ingest.streams': 'FLAT', 'canopy.ingest.subject': 'flat.{subject}' } });
    const client = await leaf('gwC');
    client.offer({ stream: 'TWICE', incarnation: newIncarnation() }, 1, 1);
    const twice = await client.expect('error');
    assert.equal(twice.code, 'stream');
    assert.match(twice.text, /claimed by hub streams CLAIM_A, CLAIM_B/);
    client.offer({ stream: 'FLAT', incarnation: newIncarnation() }, 1, 1);
    const flat = await client.expect('error');
    assert.equal(flat.code, 'stream');
    assert.match(flat.text, /canopy\.ingest\.subject" must hold \{leaf\} once/);
    assert.equal((await fixture.jsm().streams.info('NO_NAMESPACE')).state.messages, 0);
  });
});

test('subject templates: {leaf} a whole token after literals, {subject} last; anything else is invalid', () => {
  assert.deepEqual(parseTemplate('{leaf}.{subject}'), { prefix: '', middle: '.' });
  assert.deepEqual(parseTemplate('eu.{leaf}.in.{subject}'), { prefix: 'eu.', middle: '.in.' });
  for (const bad of ['{subject}', 'x.{leaf}', '{leaf}.{subject}.x', 'a{leaf}.{subject}', '{leaf}.{leaf}.{subject}', '*.{leaf}.{subject}', '{leaf}.>.{subject}', '{leaf}..{subject}']) {
    assert.ok('invalid' in parseTemplate(bad), bad);
  }
});
