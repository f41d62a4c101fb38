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

  test('a template or mapping changed by a stream update applies from the leaf\'s next connection', async () => {
    await fixture.jsm().streams.add({ name: 'AREA', subjects: ['area.>'], metadata: { 'canopy.ingest.streams': 'METERS', 'canopy.ingest.subject': 'area.old.{leaf}.{subject}' } });
    const key = { stream: 'METERS', incarnation: newIncarnation() };
    const first = await leaf('gwD');
    first.offer(key, 1, 2);
    assert.equal((await first.expect('cursor')).seq, 0);
    first.batch(key, messages(1, 1, 'kwh'));
    await first.cursorAt(key, 1);
    first.close();
    await fixture.jsm().streams.update('AREA', { subjects: ['area.>'], metadata: { 'canopy.ingest.streams': 'METERS', 'canopy.ingest.subject': 'area.new.{leaf}.{subject}' } });
    const second = await leaf('gwD');
    second.offer(key, 1, 2);
    assert.equal((await second.expect('cursor')).seq, 1, 'same target: the cursor is kept');
    second.batch(key, messages(2, 2, 'kwh'));
    await second.cursorAt(key, 2);
    assert.equal((await fixture.jsm().streams.getMessage('AREA', { seq: 1 }))?.subject, 'area.old.gwD.kwh');
    assert.equal((await fixture.jsm().streams.getMessage('AREA', { seq: 2 }))?.subject, 'area.new.gwD.kwh');
    second.close();
    // The mapping moves METERS to another stream: the next connection starts there from cursor 0.
    await fixture.jsm().streams.update('AREA', { subjects: ['area.>'], metadata: { 'canopy.ingest.subject': 'area.new.{leaf}.{subject}' } });
    await fixture.jsm().streams.add({ name: 'AREA2', subjects: ['area2.>'], metadata: { 'canopy.ingest.streams': 'METERS' } });
    const third = await leaf('gwD');
    third.offer(key, 1, 2);
    assert.equal((await third.expect('cursor')).seq, 0, 'a new target has nothing yet');
  });

  test('metadata values must be strings (nats-server decodes map[string]string)', async () => {
    await assert.rejects(
      fixture.jsm().streams.add({ name: 'BADMETA', subjects: ['badmeta'], metadata: { 'canopy.ingest.streams': ['A', 'B'] } as unknown as Record<string, string> }),
      /cannot unmarshal array into Go struct field StreamConfig.metadata of type map\[string\]string/,
    );
  });

  test('a "filtered" gap from a leaf is recorded as a gap: a leaf cannot skip its own data unseen', async () => {
    const client = await leaf('gwE');
    const key = { stream: 'SKIPPY', incarnation: newIncarnation() };
    client.offer(key, 1, 5);
    assert.equal((await client.expect('cursor')).seq, 0);
    client.gap(key, 1, 4, 'filtered');
    await client.cursorAt(key, 4);
    const status = fixture.hub().hub.acceptor!.status().find((entry) => entry.leaf === 'gwE')!;
    const row = status.streams.find((entry) => entry.stream === 'SKIPPY')!;
    assert.equal(row.gaps, 1);
    assert.equal(row.gapMsgs, 4);
  });
});

test('subject templates: {leaf} a whole token after literals, {subject} last; anything else is invalid', () => {
  assert.deepEqual(parseTemplate('{leaf}.{subject}'), { prefix: '', middle: '.' });
  assert.deepEqual(parseTemplate('eu.{leaf}.in.{subject}'), { prefix: 'eu.', middle: '.in.' });
  for (const bad of ['{subject}', 'x.{leaf}', '{leaf}.{subject}.x', 'a{leaf}.{subject}', '{leaf}.{leaf}.{subject}', '*.{leaf}.{subject}', '{leaf}.>.{subject}', '{leaf}..{subject}']) {
    assert.ok('invalid' in parseTemplate(bad), bad);
  }
});
