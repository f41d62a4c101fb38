/**
 * Subject grammar. The validity tables are the cases of nats-server's
 * server/sublist_test.go (TestSublistValidLiteralSubjects,
 * TestSublistValidlSubjects, TestSubjectIsLiteral, TestSubjectToken,
 * TestSublistMatchLiterals), kept as data; rows marked "canopy" are ours.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  isValidLiteralPublishSubject,
  isValidLiteralSubject,
  isValidPublishSubject,
  isValidSubject,
  numTokens,
  subjectHasWildcard,
  subjectIsLiteral,
  subjectMatchesFilter,
  subjectsOverlap,
  tokenAt,
  tokenize,
} from '../../../core/subjects/subject.ts';
import { fastCheckParameters } from './fast-check-parameters.ts';

type Row = readonly [subject: string, expected: boolean];

function checkTable(name: string, check: (subject: string) => boolean, rows: readonly Row[]): void {
  for (const [subject, expected] of rows) {
    assert.equal(check(subject), expected, `${name}(${JSON.stringify(subject)})`);
  }
}

describe('isValidSubject (nats-server IsValidSubject)', () => {
  test('nats-server TestSublistValidlSubjects cases', () => {
    checkTable('isValidSubject', isValidSubject, [
      ['.', false],
      ['.foo', false],
      ['foo.', false],
      ['foo..bar', false],
      ['>.bar', false],
      ['foo.>.bar', false],
      ['foo', true],
      ['foo.bar.*', true],
      ['foo.bar.>', true],
      ['*', true],
      ['>', true],
      ['foo*', true],
      ['foo**', true],
      ['foo.**', true],
      ['foo*bar', true],
      ['foo.*bar', true],
      ['foo*.bar', true],
      ['*bar', true],
      ['foo>', true],
      ['foo.>>', true],
      ['foo>bar', true],
      ['foo.>bar', true],
      ['foo>.bar', true],
      ['>bar', true],
    ]);
  });

  test('empty subject, wildcard placement (canopy)', () => {
    checkTable('isValidSubject', isValidSubject, [
      ['', false],
      ['*.>', true],
      ['*.*.*', true],
      ['>.>', false],
      ['>.*', false],
      ['foo.>.>', false],
      ['foo.bar..', false],
      ['..', false],
    ]);
  });

  test('exactly space, tab, LF, FF and CR are rejected, as a token or inside one', () => {
    for (const char of [' ', '\t', '\n', '\f', '\r']) {
      for (const subject of [char, `foo.${char}`, `foo${char}bar`, `foo.b${char}r.baz`, `${char}foo`]) {
        assert.equal(isValidSubject(subject), false, JSON.stringify(subject));
      }
    }
    // Outside nats-server's set " \t\n\f\r": vertical tab, NUL, DEL, latin1 bytes are allowed.
    for (const char of ['\v', '\u0000', '\u007f', '\u00ff', '-', '$', '_']) {
      assert.equal(isValidSubject(`foo.${char}.bar`), true, JSON.stringify(char));
    }
  });
});

describe('isValidLiteralSubject (pedantic PUB, nats-server IsValidLiteralSubject)', () => {
  test('nats-server TestSublistValidLiteralSubjects cases', () => {
    checkTable('isValidLiteralSubject', isValidLiteralSubject, [
      ['foo', true],
      ['.foo', false],
      ['foo.', false],
      ['foo..bar', false],
      ['foo.bar.*', false],
      ['foo.bar.>', false],
      ['*', false],
      ['>', false],
      ['foo*', true],
      ['foo**', true],
      ['foo.**', true],
      ['foo*bar', true],
      ['foo.*bar', true],
      ['foo*.bar', true],
      ['*bar', true],
      ['foo>', true],
      ['foo>>', true],
      ['foo.>>', true],
      ['foo>bar', true],
      ['foo.>bar', true],
      ['foo>.bar', true],
      ['>bar', true],
    ]);
  });

  test('empty subject is invalid; whitespace is not checked, like nats-server (canopy)', () => {
    checkTable('isValidLiteralSubject', isValidLiteralSubject, [
      ['', false],
      ['foo.*.bar', false],
      ['foo\fbar', true],
      ['foo\rbar', true],
    ]);
  });
});

describe('isValidLiteralPublishSubject (nats-server IsValidPublishSubject)', () => {
  test('valid and literal, whitespace checked', () => {
    checkTable('isValidLiteralPublishSubject', isValidLiteralPublishSubject, [
      ['foo.bar', true],
      ['foo*.>bar', true],
      ['foo.*', false],
      ['>', false],
      ['foo..bar', false],
      ['', false],
      ['foo bar', false],
      ['foo\fbar', false],
    ]);
  });
});

describe('isValidPublishSubject (non-pedantic PUB)', () => {
  test('accepts wildcard tokens and anything non-empty, as nats-server does', () => {
    checkTable('isValidPublishSubject', isValidPublishSubject, [
      ['$JS.API.CONSUMER.CREATE.ORDERS.c1.orders.*', true],
      ['$JS.API.CONSUMER.CREATE.KV_b.c1.$KV.b.>', true],
      ['>', true],
      ['*', true],
      ['foo..bar', true],
      ['foo', true],
      ['', false],
    ]);
  });
});

describe('subjectIsLiteral / subjectHasWildcard', () => {
  test('nats-server TestSubjectIsLiteral cases', () => {
    const rows: Row[] = [
      ['foo', true],
      ['foo.bar', true],
      ['foo*.bar', true],
      ['*', false],
      ['>', false],
      ['foo.*', false],
      ['foo.>', false],
      ['foo.*.>', false],
      ['foo.*.bar', false],
      ['foo.bar.>', false],
    ];
    checkTable('subjectIsLiteral', subjectIsLiteral, rows);
    checkTable(
      'subjectHasWildcard',
      subjectHasWildcard,
      rows.map(([subject, isLiteral]) => [subject, !isLiteral] as const),
    );
  });

  test('wildcard characters inside tokens are literal (canopy)', () => {
    checkTable('subjectHasWildcard', subjectHasWildcard, [
      ['*.foo', true],
      ['foo.>', true],
      ['a.*.b', true],
      ['**', false],
      ['>>', false],
      ['a.*b.c', false],
      ['a.b>.c', false],
      ['', false],
    ]);
  });
});

describe('numTokens / tokenAt / tokenize', () => {
  test('nats-server TestSubjectToken cases for tokenAt', () => {
    const subject = 'foo.bar.baz.*';
    assert.equal(tokenAt(subject, 0), '');
    assert.equal(tokenAt(subject, 1), 'foo');
    assert.equal(tokenAt(subject, 2), 'bar');
    assert.equal(tokenAt(subject, 3), 'baz');
    assert.equal(tokenAt(subject, 4), '*');
    assert.equal(tokenAt(subject, 5), '');
  });

  test('numTokens and tokenize keep empty tokens', () => {
    assert.equal(numTokens(''), 0);
    assert.equal(numTokens('foo'), 1);
    assert.equal(numTokens('foo.bar.>'), 3);
    assert.equal(numTokens('a..b.'), 4);
    assert.deepEqual(tokenize('foo.bar.>'), ['foo', 'bar', '>']);
    assert.deepEqual(tokenize('a..b.'), ['a', '', 'b', '']);
    assert.deepEqual(tokenize(''), ['']);
    assert.deepEqual(tokenize('x', ['w']), ['w', 'x']);
  });
});

/** Independent reference for the match rule, written the slow way (split + recursion). */
function referenceMatches(subject: string, filter: string): boolean {
  if (subject === '' || filter === '') return false;
  const subjectTokens = subject.split('.');
  if (subjectTokens.includes('')) return false;
  const filterTokens = filter.split('.');
  const matchFrom = (s: number, f: number): boolean => {
    if (f === filterTokens.length) return s === subjectTokens.length;
    if (filterTokens[f] === '>') return s < subjectTokens.length;
    if (s === subjectTokens.length) return false;
    if (filterTokens[f] !== '*' && filterTokens[f] !== subjectTokens[s]) return false;
    return matchFrom(s + 1, f + 1);
  };
  return matchFrom(0, 0);
}

type MatchRow = readonly [subject: string, filter: string, expected: boolean];

function checkMatches(rows: readonly MatchRow[]): void {
  for (const [subject, filter, expected] of rows) {
    assert.equal(subjectMatchesFilter(subject, filter), expected, `${subject} vs filter ${filter}`);
  }
}

describe('subjectMatchesFilter', () => {
  test('nats-server TestSublistMatchLiterals cases (matchLiteral(literal, subject))', () => {
    checkMatches([
      ['foo', 'foo', true],
      ['foo', 'bar', false],
      ['foo', '*', true],
      ['foo', '>', true],
      ['foo.bar', '>', true],
      ['foo.bar', 'foo.>', true],
      ['foo.bar', 'bar.>', false],
      ['stats.test.22', 'stats.>', true],
      ['stats.test.22', 'stats.*.*', true],
      ['foo.bar', 'foo', false],
      ['stats.test.foos', 'stats.test.foos', true],
      ['stats.test.foos', 'stats.test.foo', false],
      ['stats.test', 'stats.test.*', false],
      ['stats.test.foos', 'stats.*', false],
      ['stats.test.foos', 'stats.*.*.foos', false],
      ['*bar', '*bar', true],
      ['foo*', 'foo*', true],
      ['foo*bar', 'foo*bar', true],
      ['foo.***.bar', 'foo.***.bar', true],
      ['>bar', '>bar', true],
      ['foo>', 'foo>', true],
      ['foo>bar', 'foo>bar', true],
      ['foo.>>>.bar', 'foo.>>>.bar', true],
    ]);
  });

  test('* and > tables (NATS-SPEC §1.7)', () => {
    checkMatches([
      ['foo', 'foo.*', false],
      ['foo.bar', 'foo.*', true],
      ['foo.bar.baz', 'foo.*', false],
      ['foo', 'foo.>', false],
      ['foo.bar', 'foo.>', true],
      ['foo.bar.baz', 'foo.>', true],
      ['foo', '*.>', false],
      ['foo.bar', '*.>', true],
      ['a.b.c.d', '*.>', true],
      ['a', '>', true],
      ['a.b.c', '>', true],
      ['a.b.c', 'a.*.c', true],
      ['a.x.d', 'a.*.c', false],
      ['foo*', 'foo', false],
    ]);
  });

  test('wildcard tokens in a published subject are literal tokens', () => {
    checkMatches([
      ['foo.*', 'foo.*', true],
      ['foo.*', 'foo.>', true],
      ['foo.*', 'foo.bar', false],
      ['foo.>', 'foo.>', true],
      ['foo.>', 'foo.*', true],
      ['foo.>', 'foo.bar.baz', false],
      ['*', 'foo', false],
      ['>', '>', true],
    ]);
  });

  test('a malformed published subject matches nothing, not even >', () => {
    for (const subject of ['', '.', '.foo', 'foo.', 'foo..bar', 'foo.bar.', 'a.b..']) {
      for (const filter of ['>', '*.>', 'foo.>', '*', 'foo.*', subject === '' ? 'x' : subject]) {
        assert.equal(subjectMatchesFilter(subject, filter), false, `${JSON.stringify(subject)} vs ${filter}`);
      }
    }
  });

  test('property: agrees with a split-based reference', () => {
    const token = fc.constantFrom('a', 'b', 'ab', '*', '>', '', 'a*');
    const subject = fc.array(token, { minLength: 0, maxLength: 5 }).map((tokens) => tokens.join('.'));
    const filterToken = fc.constantFrom('a', 'b', 'ab', '*', 'a*');
    const filter = fc
      .tuple(fc.array(filterToken, { minLength: 0, maxLength: 4 }), fc.boolean())
      .map(([tokens, hasTail]) => (hasTail ? [...tokens, '>'] : tokens).join('.'))
      .filter((text) => text.length > 0);
    fc.assert(
      fc.property(subject, filter, (published, subscribed) => {
        assert.equal(subjectMatchesFilter(published, subscribed), referenceMatches(published, subscribed));
      }),
      fastCheckParameters({ numRuns: 3000 }),
    );
  });
});

describe('subjectsOverlap (nats-server SubjectsCollide)', () => {
  test('cases', () => {
    const rows: readonly MatchRow[] = [
      ['foo.*', 'foo.*.bar.>', false],
      ['foo.*.bar.>', 'foo.*', false],
      ['foo.*', 'foo.foo', true],
      ['foo.*', '*.foo', true],
      ['foo.bar.>', '*.bar.foo', true],
      ['orders.>', 'orders.new', true],
      ['a.*.c', 'a.b.>', true],
      ['orders.new', 'orders.paid', false],
      ['orders.new', 'orders.new', true],
      ['orders.>', 'orders', false],
      ['>', 'anything.at.all', true],
      ['>', '*', true],
      ['*', 'a.b', false],
      ['*.*', '*.*.*', false],
      ['repub.>', 'orders.>', false],
      ['a.>', '*.b.>', true],
      ['*bar.x', 'foo.x', false], // nats-server says true: it treats a token starting with '*' as a wildcard
    ];
    for (const [a, b, expected] of rows) {
      assert.equal(subjectsOverlap(a, b), expected, `${a} ~ ${b}`);
      assert.equal(subjectsOverlap(b, a), expected, `${b} ~ ${a}`);
    }
  });

  test('property: true exactly when some literal subject matches both', () => {
    // Goal: check overlap against its definition. Method: two random filters over
    // {a, b, *} with an optional trailing '>', at most 4 tokens; any overlap has a
    // witness of at most 4 tokens over {a, b, z} ('z' stands for "anything else").
    const witnesses: string[] = [];
    const grow = (prefix: string, depth: number): void => {
      for (const token of ['a', 'b', 'z']) {
        const subject = prefix === '' ? token : `${prefix}.${token}`;
        witnesses.push(subject);
        if (depth < 4) grow(subject, depth + 1);
      }
    };
    grow('', 1);
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '*'), { minLength: 0, maxLength: 3 }), fc.boolean())
      .map(([tokens, hasTail]) => (hasTail || tokens.length === 0 ? [...tokens, '>'] : tokens).join('.'));
    fc.assert(
      fc.property(filter, filter, (a, b) => {
        const hasWitness = witnesses.some((w) => subjectMatchesFilter(w, a) && subjectMatchesFilter(w, b));
        assert.equal(subjectsOverlap(a, b), hasWitness, `${a} ~ ${b}`);
      }),
      fastCheckParameters({ numRuns: 2000 }),
    );
  });
});
