/**
 * Sublist. Every behaviour is written once in `sublistSuite` and run against
 * three configurations (nats-server's testSublistX run as TestSublistX and
 * TestSublistXNoCache): the default cache, a 2-entry cache that evicts all the
 * time, and no cache. Cache-specific behaviour has its own suite below.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { subjectMatchesFilter } from '../../../core/subjects/subject.ts';
import {
  SUBLIST_CACHE_ENTRIES_MAX,
  Sublist,
  type SublistEntry,
  type SublistOptions,
  type SublistResult,
} from '../../../core/subjects/sublist.ts';
import { AssertionError } from '../../../core/util/assert.ts';
import { fastCheckParameters } from './fast-check-parameters.ts';

class Entry implements SublistEntry {
  static #nextId = 1;
  readonly id = Entry.#nextId++;
  constructor(
    readonly subject: string,
    readonly queue = '',
  ) {}
}

/** A comparable view of a result: sorted plain ids, and queue name → sorted ids. */
interface Canonical {
  readonly plain: readonly number[];
  readonly queues: Readonly<Record<string, readonly number[]>>;
}

function canonical(result: SublistResult<Entry>): Canonical {
  const queues: Record<string, number[]> = {};
  for (const group of result.queues) {
    assert.ok(group.length > 0, 'a queue group in a result is never empty');
    const name = group[0]!.queue;
    assert.ok(name !== '', 'queue group members have a queue name');
    assert.equal(queues[name], undefined, `queue group ${name} appears once`);
    assert.ok(
      group.every((entry) => entry.queue === name),
      `members of ${name} share the name`,
    );
    queues[name] = group.map((entry) => entry.id).sort((a, b) => a - b);
  }
  assert.ok(
    result.plain.every((entry) => entry.queue === ''),
    'plain entries have no queue',
  );
  return { plain: result.plain.map((entry) => entry.id).sort((a, b) => a - b), queues };
}

function ids(...entries: Entry[]): number[] {
  return entries.map((entry) => entry.id).sort((a, b) => a - b);
}

function assertPlain(sublist: Sublist<Entry>, subject: string, expected: readonly Entry[]): void {
  const result = sublist.match(subject);
  assert.deepEqual(canonical(result).plain, ids(...expected), `plain matches of ${subject}`);
}

function insertAll(sublist: Sublist<Entry>, ...entries: Entry[]): void {
  for (const entry of entries) sublist.insert(entry);
}

const CONFIGURATIONS: readonly (readonly [string, SublistOptions])[] = [
  ['default cache', {}],
  ['2-entry cache', { cacheEntriesMax: 2 }],
  ['no cache', { cacheEntriesMax: 0 }],
];

function sublistSuite(name: string, options: SublistOptions): void {
  const make = (): Sublist<Entry> => new Sublist<Entry>(options);

  describe(`Sublist (${name})`, () => {
    test('count follows inserts and removes', () => {
      const sublist = make();
      const entries = [new Entry('foo'), new Entry('bar'), new Entry('foo.bar'), new Entry('foo', 'q')];
      insertAll(sublist, ...entries);
      assert.equal(sublist.count, 4);
      assert.equal(sublist.remove(entries[0]!), true);
      assert.equal(sublist.count, 3);
    });

    test('literal subjects match only themselves', () => {
      const sublist = make();
      const foo = new Entry('foo');
      const fooBarBaz = new Entry('foo.bar.baz');
      insertAll(sublist, foo, fooBarBaz);
      assertPlain(sublist, 'foo', [foo]);
      assertPlain(sublist, 'foo.bar.baz', [fooBarBaz]);
      // nats-server bug report #18: a two-token publish does not match a one-token sub.
      assertPlain(sublist, 'foo.bar', []);
      assertPlain(sublist, 'fo', []);
      assertPlain(sublist, 'foo.bar.baz.qux', []);
    });

    test('* matches exactly one token', () => {
      const sublist = make();
      const fooStar = new Entry('foo.*');
      insertAll(sublist, fooStar);
      assertPlain(sublist, 'foo', []);
      assertPlain(sublist, 'foo.bar', [fooStar]);
      assertPlain(sublist, 'foo.bar.baz', []);
      assertPlain(sublist, 'bar.foo', []);
    });

    test('* in the middle and at the end, next to a literal', () => {
      const sublist = make();
      const literal = new Entry('a.b.c');
      const middle = new Entry('a.*.c');
      const end = new Entry('a.b.*');
      const all = new Entry('*.*.*');
      insertAll(sublist, literal, middle, end, all);
      assertPlain(sublist, 'a.b.c', [literal, middle, end, all]);
      assertPlain(sublist, 'a.x.c', [middle, all]);
      assertPlain(sublist, 'a.b.x', [end, all]);
      assertPlain(sublist, 'x.y.z', [all]);
      assertPlain(sublist, 'a.b', []);
    });

    test('> matches one or more tokens', () => {
      const sublist = make();
      const fooTail = new Entry('foo.>');
      const starTail = new Entry('*.>');
      const tail = new Entry('>');
      insertAll(sublist, fooTail, starTail, tail);
      assertPlain(sublist, 'foo', [tail]);
      assertPlain(sublist, 'foo.bar', [fooTail, starTail, tail]);
      assertPlain(sublist, 'foo.bar.baz', [fooTail, starTail, tail]);
      assertPlain(sublist, 'bar.baz', [starTail, tail]);
      assertPlain(sublist, 'bar', [tail]);
    });

    test('> after literal and * tokens (nats-server testSublistFullWildcard)', () => {
      const sublist = make();
      const literal = new Entry('a.b.c');
      const tail = new Entry('a.>');
      const mixed = new Entry('a.*.c.>');
      insertAll(sublist, literal, tail, mixed);
      assertPlain(sublist, 'a.b.c', [literal, tail]);
      assertPlain(sublist, 'a.b.c.d', [tail, mixed]);
      assertPlain(sublist, 'a.x.c.d.e', [tail, mixed]);
    });

    test('* and > tokens in a published subject are literal tokens', () => {
      const sublist = make();
      const fooStar = new Entry('foo.*');
      const fooBar = new Entry('foo.bar');
      const fooTail = new Entry('foo.>');
      const fooBarBaz = new Entry('foo.bar.baz');
      insertAll(sublist, fooStar, fooBar, fooTail, fooBarBaz);
      assertPlain(sublist, 'foo.*', [fooStar, fooTail]);
      assertPlain(sublist, 'foo.>', [fooStar, fooTail]);
      assertPlain(sublist, 'foo.*.baz', [fooTail]);
      // The JetStream case: consumer create with a wildcard filter in the subject.
      const api = new Entry('$JS.API.CONSUMER.CREATE.*.>');
      sublist.insert(api);
      assertPlain(sublist, '$JS.API.CONSUMER.CREATE.ORDERS.c1.orders.*', [api]);
    });

    test('wildcard characters inside a token are literal (nats-server testSublistInsertWithWildcardsAsLiterals)', () => {
      const sublist = make();
      for (const subject of ['foo.*-', 'foo.>-', 'foo.a*', 'foo.>b']) {
        const entry = new Entry(subject);
        sublist.insert(entry);
        assertPlain(sublist, 'foo.bar', []);
        assertPlain(sublist, subject, [entry]);
        assert.equal(sublist.remove(new Entry('foo.bar')), false);
        assert.equal(sublist.remove(entry), true);
        assert.equal(sublist.count, 0);
      }
    });

    test('a malformed published subject matches nothing, even with a > subscription', () => {
      const sublist = make();
      insertAll(sublist, new Entry('>'), new Entry('foo.>'), new Entry('*.*'));
      for (const subject of ['', '.', '.foo', 'foo.', 'foo..bar', 'foo.bar.']) {
        assert.deepEqual(canonical(sublist.match(subject)), { plain: [], queues: {} }, JSON.stringify(subject));
        assert.equal(sublist.hasInterest(subject), false, JSON.stringify(subject));
      }
    });

    test('queue subscriptions are grouped by name (nats-server testSublistBasicQueueResults)', () => {
      const sublist = make();
      const plain = new Entry('foo');
      const bar1 = new Entry('foo', 'bar');
      const baz1 = new Entry('foo', 'baz');
      sublist.insert(bar1);
      assert.deepEqual(canonical(sublist.match('foo')), { plain: [], queues: { bar: ids(bar1) } });
      sublist.insert(baz1);
      assert.deepEqual(canonical(sublist.match('foo')), { plain: [], queues: { bar: ids(bar1), baz: ids(baz1) } });
      sublist.insert(plain);
      const bar2 = new Entry('foo', 'bar');
      const baz2 = new Entry('foo', 'baz');
      insertAll(sublist, bar2, baz2);
      assert.deepEqual(canonical(sublist.match('foo')), {
        plain: ids(plain),
        queues: { bar: ids(bar1, bar2), baz: ids(baz1, baz2) },
      });
      sublist.remove(plain);
      sublist.remove(bar1);
      assert.deepEqual(canonical(sublist.match('foo')), { plain: [], queues: { bar: ids(bar2), baz: ids(baz1, baz2) } });
      sublist.remove(bar2); // the last "bar" member
      assert.deepEqual(canonical(sublist.match('foo')), { plain: [], queues: { baz: ids(baz1, baz2) } });
      sublist.remove(baz1);
      sublist.remove(baz2);
      assert.deepEqual(canonical(sublist.match('foo')), { plain: [], queues: {} });
      assert.equal(sublist.nodeCount, 0);
    });

    test('one queue group spans wildcard and literal subscriptions', () => {
      const sublist = make();
      const literal = new Entry('foo.bar', 'workers');
      const star = new Entry('foo.*', 'workers');
      const tail = new Entry('>', 'workers');
      const other = new Entry('foo.*', 'others');
      insertAll(sublist, literal, star, tail, other);
      assert.deepEqual(canonical(sublist.match('foo.bar')), {
        plain: [],
        queues: { workers: ids(literal, star, tail), others: ids(other) },
      });
      assert.deepEqual(canonical(sublist.match('foo.baz')), {
        plain: [],
        queues: { workers: ids(star, tail), others: ids(other) },
      });
    });

    test('remove is by identity and reports whether something was removed', () => {
      const sublist = make();
      const entry = new Entry('a.b.c.d');
      const queued = new Entry('a.b.c.d', 'q');
      insertAll(sublist, entry, queued);
      assert.equal(sublist.remove(new Entry('a.b.c.d')), false, 'an equal but different object');
      assert.equal(sublist.remove(new Entry('a.b.c')), false, 'a prefix');
      assert.equal(sublist.remove(new Entry('a.b.c.d.e')), false, 'a longer subject');
      assert.equal(sublist.remove(new Entry('a.b.c.d', 'other')), false, 'another queue');
      assert.equal(sublist.remove(new Entry('a.b..d')), false, 'a malformed subject');
      assert.equal(sublist.count, 2);
      assert.equal(sublist.remove(entry), true);
      assert.equal(sublist.remove(entry), false, 'already removed');
      assertPlain(sublist, 'a.b.c.d', []);
      assert.equal(sublist.remove(queued), true);
      assert.equal(sublist.count, 0);
    });

    test('removing wildcard subscriptions (nats-server testSublistRemoveWildcard)', () => {
      const sublist = make();
      const literal = new Entry('a.b.c.d');
      const star = new Entry('a.b.*.d');
      const tail = new Entry('a.b.>');
      insertAll(sublist, literal, star, tail);
      assertPlain(sublist, 'a.b.c.d', [literal, star, tail]);
      sublist.remove(literal);
      assertPlain(sublist, 'a.b.c.d', [star, tail]);
      sublist.remove(tail);
      assertPlain(sublist, 'a.b.c.d', [star]);
      sublist.remove(star);
      assertPlain(sublist, 'a.b.c.d', []);
      assert.equal(sublist.count, 0);
    });

    test('removing the last subscriptions prunes every node', () => {
      const sublist = make();
      for (const subject of ['a.b.c.d.e.f', 'a.b.*.d.e.>', '>', '*', 'a.*.>']) {
        assert.equal(sublist.nodeCount, 0);
        const entry = new Entry(subject);
        sublist.insert(entry);
        assert.equal(sublist.nodeCount, subject.split('.').length, subject);
        sublist.remove(entry);
        assert.equal(sublist.nodeCount, 0, subject);
      }
    });

    test('pruning stops at nodes that still hold subscriptions or children', () => {
      const sublist = make();
      const short = new Entry('a.b');
      const long = new Entry('a.b.c.d');
      const sibling = new Entry('a.x');
      insertAll(sublist, short, long, sibling);
      assert.equal(sublist.nodeCount, 5); // a, b, x, c, d
      sublist.remove(long);
      assert.equal(sublist.nodeCount, 3);
      assertPlain(sublist, 'a.b', [short]);
      sublist.remove(short);
      assert.equal(sublist.nodeCount, 2);
      assertPlain(sublist, 'a.x', [sibling]);
      sublist.remove(sibling);
      assert.equal(sublist.nodeCount, 0);
    });

    test('many subscriptions on one subject: remove from the middle, first and last', () => {
      // Goal: the identity index a large node builds keeps removal exact.
      // Method: 100 subscriptions (past the index threshold), remove some, check the rest.
      const sublist = make();
      const entries = Array.from({ length: 100 }, () => new Entry('foo'));
      const queued = Array.from({ length: 100 }, () => new Entry('foo', 'q'));
      insertAll(sublist, ...entries, ...queued);
      const removed = [entries[50]!, entries[0]!, entries[99]!, queued[7]!, queued[0]!];
      for (const entry of removed) assert.equal(sublist.remove(entry), true);
      const expected = canonical(sublist.match('foo'));
      assert.equal(expected.plain.length, 97);
      assert.equal(expected.queues['q']!.length, 98);
      assert.deepEqual(expected.plain, ids(...entries.filter((entry) => !removed.includes(entry))));
      for (const entry of [...entries, ...queued]) sublist.remove(entry);
      assert.equal(sublist.count, 0);
      assert.equal(sublist.nodeCount, 0);
      assertPlain(sublist, 'foo', []);
    });

    test('a returned result never changes afterwards', () => {
      const sublist = make();
      const first = new Entry('foo.bar');
      const group = new Entry('foo.bar', 'q');
      insertAll(sublist, first, group);
      const held = sublist.match('foo.bar');
      const heldPlain = [...held.plain];
      const heldGroup = [...held.queues[0]!];
      insertAll(sublist, new Entry('foo.bar'), new Entry('foo.*'), new Entry('>', 'q'), new Entry('foo.>', 'r'));
      sublist.remove(first);
      assert.deepEqual([...held.plain], heldPlain);
      assert.equal(held.queues.length, 1);
      assert.deepEqual([...held.queues[0]!], heldGroup);
      assert.equal(canonical(sublist.match('foo.bar')).plain.length, 2);
    });

    test('no interest returns one shared empty result (nats-server TestSublistSharedEmptyResult)', () => {
      const sublist = make();
      sublist.insert(new Entry('baz'));
      const foo = sublist.match('foo');
      const bar = sublist.match('bar');
      assert.equal(foo.plain.length + foo.queues.length, 0);
      assert.equal(foo, bar);
    });

    test('hasInterest agrees with match', () => {
      const sublist = make();
      insertAll(sublist, new Entry('a.*.c'), new Entry('b.>'), new Entry('c', 'q'), new Entry('d.e'));
      const subjects = ['a.b.c', 'a.b', 'a.b.c.d', 'b', 'b.x', 'b.x.y', 'c', 'd', 'd.e', 'd.e.f', 'x', 'a.*.c', '*'];
      for (const subject of subjects) {
        const result = sublist.match(subject);
        assert.equal(sublist.hasInterest(subject), result.plain.length + result.queues.length > 0, subject);
      }
    });

    test('all returns every entry once', () => {
      const sublist = make();
      const entries = [
        new Entry('foo.bar.baz'),
        new Entry('foo'),
        new Entry('baz'),
        new Entry('foo.*'),
        new Entry('>'),
        new Entry('foo', 'q'),
        new Entry('foo.>', 'r'),
      ];
      insertAll(sublist, ...entries);
      const out: Entry[] = [];
      assert.equal(sublist.all(out), out);
      assert.deepEqual(ids(...out), ids(...entries));
    });

    test('removeBatch removes what is present and reports the number', () => {
      const sublist = make();
      const keep = new Entry('foo.*');
      const gone = [new Entry('foo.bar'), new Entry('foo.>'), new Entry('foo.bar', 'q')];
      insertAll(sublist, keep, ...gone);
      assert.equal(canonical(sublist.match('foo.bar')).plain.length, 3);
      const genid = sublist.genid;
      assert.equal(sublist.removeBatch([...gone, new Entry('foo.bar')]), 3);
      assert.ok(sublist.genid > genid);
      assert.deepEqual(canonical(sublist.match('foo.bar')), { plain: ids(keep), queues: {} });
      assert.equal(sublist.removeBatch(gone), 0);
    });

    test('genid changes on every insert and remove, not on match or a failed remove', () => {
      const sublist = make();
      const entry = new Entry('foo');
      const ids: number[] = [sublist.genid];
      sublist.insert(entry);
      ids.push(sublist.genid);
      sublist.match('foo');
      assert.equal(sublist.genid, ids[1]);
      sublist.remove(new Entry('foo'));
      assert.equal(sublist.genid, ids[1]);
      sublist.remove(entry);
      ids.push(sublist.genid);
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!, ids.join(','));
    });

    test('stats count inserts, removes and matches', () => {
      const sublist = make();
      const entries = [new Entry('foo'), new Entry('bar'), new Entry('baz'), new Entry('foo.bar.baz')];
      insertAll(sublist, ...entries);
      sublist.remove(entries[1]!);
      sublist.remove(new Entry('nope'));
      sublist.match('a.b.c');
      sublist.match('foo');
      sublist.match('foo');
      const stats = sublist.stats();
      assert.equal(stats.count, 3);
      assert.equal(stats.inserts, 4);
      assert.equal(stats.removes, 1);
      assert.equal(stats.matches, 3);
      assert.equal(stats.cacheCount, sublist.cacheCount);
    });

    test('inserting an invalid subject or the same entry twice is a programmer error', () => {
      const sublist = make();
      for (const subject of ['', '.foo', 'foo.', 'foo..bar', 'foo.>.bar', '>.>']) {
        assert.throws(() => sublist.insert(new Entry(subject)), AssertionError, JSON.stringify(subject));
        assert.equal(sublist.nodeCount, 0, `no nodes left behind by ${JSON.stringify(subject)}`);
      }
      const entry = new Entry('foo', 'q');
      sublist.insert(entry);
      assert.throws(() => sublist.insert(entry), AssertionError);
      assert.equal(sublist.count, 1);
    });

    test('property: match equals a brute-force matcher across interleaved inserts and removes', () => {
      // Goal: the trie, the cache and its targeted updates never disagree with the
      // definition. Method: random operation sequences; after each one, every probe
      // subject is matched and compared with `subjectMatchesFilter` over the live
      // entries (checked against an independent reference in subject.test.ts).
      const subscribeToken = fc.constantFrom('a', 'b', 'c', '*');
      const subscribeSubject = fc
        .tuple(fc.array(subscribeToken, { minLength: 0, maxLength: 3 }), fc.boolean())
        .map(([tokens, hasTail]) => (hasTail || tokens.length === 0 ? [...tokens, '>'] : tokens).join('.'));
      const publishSubject = fc.oneof(
        { weight: 9, arbitrary: fc.array(fc.constantFrom('a', 'b', 'c', '*', '>'), { minLength: 1, maxLength: 4 }) },
        { weight: 1, arbitrary: fc.constantFrom(['a', ''], ['', 'b'], ['a', '', 'c']) },
      );
      const operation = fc.oneof(
        fc.record({ kind: fc.constant('insert' as const), subject: subscribeSubject, queue: fc.constantFrom('', '', 'q', 'r') }),
        fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('match' as const), subject: publishSubject.map((tokens) => tokens.join('.')) }),
      );
      fc.assert(
        fc.property(fc.array(operation, { minLength: 1, maxLength: 40 }), (operations) => {
          const sublist = make();
          const live: Entry[] = [];
          const probes = new Set(['a', 'a.b', 'a.b.c', '*', 'a.*', '>', 'b.>.c']);
          for (const op of operations) {
            if (op.kind === 'insert') {
              const entry = new Entry(op.subject, op.queue);
              sublist.insert(entry);
              live.push(entry);
            } else if (op.kind === 'remove') {
              if (live.length === 0) continue;
              const [entry] = live.splice(op.pick % live.length, 1);
              assert.equal(sublist.remove(entry!), true);
            } else {
              probes.add(op.subject);
            }
            for (const subject of probes) {
              const expected = expectedCanonical(live, subject);
              assert.deepEqual(canonical(sublist.match(subject)), expected, `match ${JSON.stringify(subject)}`);
              assert.equal(sublist.hasInterest(subject), expected.plain.length + Object.keys(expected.queues).length > 0);
            }
            assert.equal(sublist.count, live.length);
          }
          for (const entry of live) sublist.remove(entry);
          assert.equal(sublist.nodeCount, 0);
        }),
        fastCheckParameters({ numRuns: 300 }),
      );
    });
  });
}

function expectedCanonical(live: readonly Entry[], subject: string): Canonical {
  const plain: number[] = [];
  const queues: Record<string, number[]> = {};
  for (const entry of live) {
    if (!subjectMatchesFilter(subject, entry.subject)) continue;
    if (entry.queue === '') plain.push(entry.id);
    else (queues[entry.queue] ??= []).push(entry.id);
  }
  for (const name of Object.keys(queues)) queues[name]!.sort((a, b) => a - b);
  return { plain: plain.sort((a, b) => a - b), queues };
}

for (const [name, options] of CONFIGURATIONS) sublistSuite(name, options);

describe('Sublist cache', () => {
  test('defaults to SUBLIST_CACHE_ENTRIES_MAX = 1024 entries (nats-server slCacheMax)', () => {
    assert.equal(SUBLIST_CACHE_ENTRIES_MAX, 1024);
    const sublist = new Sublist<Entry>();
    for (let i = 0; i < 3000; i++) sublist.match(`subject.${i}`);
    assert.ok(sublist.cacheCount <= 1024 && sublist.cacheCount > 512, String(sublist.cacheCount));
  });

  test('the bound is never exceeded, checked after each of 10k distinct subjects', () => {
    for (const cacheEntriesMax of [1, 3, 100, SUBLIST_CACHE_ENTRIES_MAX]) {
      const sublist = new Sublist<Entry>({ cacheEntriesMax });
      sublist.insert(new Entry('subject.*'));
      let peak = 0;
      for (let i = 0; i < 10_000; i++) {
        sublist.match(`subject.${i}`);
        peak = Math.max(peak, sublist.cacheCount);
        assert.ok(sublist.cacheCount <= cacheEntriesMax, `${sublist.cacheCount} > ${cacheEntriesMax}`);
      }
      assert.equal(peak, cacheEntriesMax, 'the cache does fill up to its bound');
    }
  });

  test('a repeated match is answered from the cache', () => {
    const sublist = new Sublist<Entry>();
    sublist.insert(new Entry('foo.*'));
    const first = sublist.match('foo.bar');
    assert.equal(sublist.stats().cacheHits, 0);
    assert.equal(sublist.match('foo.bar'), first);
    assert.equal(sublist.stats().cacheHits, 1);
    assert.equal(sublist.cacheCount, 1);
  });

  test('cacheEntriesMax 0 disables the cache', () => {
    const sublist = new Sublist<Entry>({ cacheEntriesMax: 0 });
    sublist.insert(new Entry('foo'));
    sublist.match('foo');
    sublist.match('foo');
    assert.equal(sublist.cacheCount, 0);
    assert.equal(sublist.stats().cacheHits, 0);
    assert.equal(sublist.stats().cacheCount, 0);
  });

  test('an insert that affects a cached subject updates it in place of evicting it', () => {
    const sublist = new Sublist<Entry>();
    const fooStar = new Entry('foo.*');
    const fooBar = new Entry('foo.bar');
    insertAll(sublist, fooStar, fooBar);
    assertPlain(sublist, 'foo.baz', [fooStar]);
    assertPlain(sublist, 'foo.bar', [fooStar, fooBar]);
    const cached = sublist.cacheCount;
    const fooTail = new Entry('foo.>');
    sublist.insert(fooTail); // nats-server TestSublistCache: a wildcard insert reaches cached subjects
    assert.equal(sublist.cacheCount, cached);
    const hits = sublist.stats().cacheHits;
    assertPlain(sublist, 'foo.bar', [fooStar, fooBar, fooTail]);
    assertPlain(sublist, 'foo.baz', [fooStar, fooTail]);
    assert.equal(sublist.stats().cacheHits, hits + 2, 'both answered from the updated cache');
    const literal = new Entry('foo.baz');
    const queued = new Entry('foo.baz', 'q');
    insertAll(sublist, literal, queued);
    assert.deepEqual(canonical(sublist.match('foo.baz')), {
      plain: ids(fooStar, fooTail, literal),
      queues: { q: ids(queued) },
    });
    assert.equal(sublist.stats().cacheHits, hits + 3);
  });

  test('a remove that affects a cached subject is reflected by the next match', () => {
    const sublist = new Sublist<Entry>();
    const literal = new Entry('a.b.c.d');
    const star = new Entry('a.b.*.d');
    const tail = new Entry('a.b.>');
    insertAll(sublist, literal, star, tail);
    assertPlain(sublist, 'a.b.c.d', [literal, star, tail]);
    sublist.remove(literal);
    assertPlain(sublist, 'a.b.c.d', [star, tail]);
    sublist.remove(tail);
    assertPlain(sublist, 'a.b.c.d', [star]);
    sublist.remove(star);
    assertPlain(sublist, 'a.b.c.d', []);
  });

  test('an insert or remove that does not affect a cached subject keeps its entry', () => {
    const sublist = new Sublist<Entry>();
    sublist.insert(new Entry('foo.bar'));
    const held = sublist.match('foo.bar');
    const other = [new Entry('baz.*'), new Entry('foo.baz'), new Entry('foo.bar.>'), new Entry('foo.*.x')];
    insertAll(sublist, ...other);
    for (const entry of other) sublist.remove(entry);
    const hits = sublist.stats().cacheHits;
    assert.equal(sublist.match('foo.bar'), held, 'same cached object');
    assert.equal(sublist.stats().cacheHits, hits + 1);
  });

  test('a cached empty result gains a new subscription', () => {
    const sublist = new Sublist<Entry>();
    assertPlain(sublist, 'orders.new', []);
    assert.equal(sublist.cacheCount, 1);
    const entry = new Entry('orders.>');
    sublist.insert(entry);
    assertPlain(sublist, 'orders.new', [entry]);
    assert.equal(sublist.match('x'), sublist.match('y'), 'the shared empty result is not mutated');
    assert.equal(sublist.match('x').plain.length, 0);
  });

  test('cached subjects with wildcard tokens are updated like any other', () => {
    const sublist = new Sublist<Entry>();
    assertPlain(sublist, 'foo.*', []);
    assertPlain(sublist, 'foo.>', []);
    const literal = new Entry('foo.bar');
    const star = new Entry('foo.*');
    insertAll(sublist, literal, star);
    assertPlain(sublist, 'foo.*', [star]);
    assertPlain(sublist, 'foo.>', [star]);
  });

  test('malformed subjects are not cached', () => {
    const sublist = new Sublist<Entry>();
    sublist.insert(new Entry('>'));
    for (const subject of ['foo..bar', '.', 'foo.']) sublist.match(subject);
    assert.equal(sublist.cacheCount, 0);
  });

  test('stats: hit rate and fan-out over cached results (nats-server SublistStats)', () => {
    const sublist = new Sublist<Entry>();
    insertAll(sublist, new Entry('foo'), new Entry('foo', 'g'), new Entry('foo', 'g'), new Entry('foo', 'h'));
    sublist.insert(new Entry('bar'));
    sublist.match('foo'); // fan-out 3: one plain + two groups
    sublist.match('bar'); // 1
    sublist.match('baz'); // 0
    sublist.match('foo'); // hit
    const stats = sublist.stats();
    assert.equal(stats.matches, 4);
    assert.equal(stats.cacheHits, 1);
    assert.equal(stats.cacheHitRate, 0.25);
    assert.equal(stats.cacheCount, 3);
    assert.equal(stats.maxFanout, 3);
    assert.equal(stats.avgFanout, 4 / 3);
    const empty = new Sublist<Entry>().stats();
    assert.equal(empty.cacheHitRate, 0);
    assert.equal(empty.avgFanout, 0);
  });

  test('cacheEntriesMax must be a non-negative integer', () => {
    for (const cacheEntriesMax of [-1, 1.5, Number.NaN]) {
      assert.throws(() => new Sublist<Entry>({ cacheEntriesMax }), AssertionError, String(cacheEntriesMax));
    }
  });
});
