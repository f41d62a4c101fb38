/**
 * Tests for core/protocol/parser.ts.
 *
 * Every fixture goes through `parseAllWays`: whole, byte by byte, and split in two at
 * every index; all must give the same operations and the same error (STYLE.md §2.8).
 * The expected behaviour is nats-server's (server/parser.go, server/client.go); cases
 * marked "nats-server" come from its parser_test.go TestShouldFail / TestParsePubArg.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError, ProtocolErrorCode, ProtocolErrorText } from '../../../core/protocol/errors.ts';
import type { OpHandler } from '../../../core/protocol/op-handler.ts';
import { Parser, type ParserOptions } from '../../../core/protocol/parser.ts';
import { AssertionError } from '../../../core/util/assert.ts';
import { escapeBytes, parseSize } from '../../../core/util/bytes.ts';
import { fastCheckParameters } from '../subjects/fast-check-parameters.ts';

type RecordedOp =
  | { op: 'connect'; json: string }
  | { op: 'pub'; subject: string; reply: string; headerBytes: number; data: Buffer }
  | { op: 'sub'; subject: string; queue: string; sid: string }
  | { op: 'unsub'; sid: string; maxMsgs: number }
  | { op: 'ping' }
  | { op: 'pong' };

/** Stores every operation as a plain object, copying the buffers it is lent. */
class RecordingHandler implements OpHandler {
  readonly ops: RecordedOp[] = [];
  onConnect(json: Buffer): void {
    this.ops.push({ op: 'connect', json: json.toString('latin1') });
  }
  onPub(subject: string, reply: string, headerBytes: number, data: Buffer): void {
    this.ops.push({ op: 'pub', subject, reply, headerBytes, data: Buffer.from(data) });
  }
  onSub(subject: string, queue: string, sid: string): void {
    this.ops.push({ op: 'sub', subject, queue, sid });
  }
  onUnsub(sid: string, maxMsgs: number): void {
    this.ops.push({ op: 'unsub', sid, maxMsgs });
  }
  onPing(): void {
    this.ops.push({ op: 'ping' });
  }
  onPong(): void {
    this.ops.push({ op: 'pong' });
  }
}

interface Limits {
  controlLineBytesMax: number;
  payloadBytesMax: number;
  headersSupported?: boolean;
}
const DEFAULT_LIMITS: Limits = { controlLineBytesMax: 4096, payloadBytesMax: 1024 * 1024 };
/** Small limits, so limit cases stay short enough to split at every index. */
const SMALL_LIMITS: Limits = { controlLineBytesMax: 64, payloadBytesMax: 100 };

interface RecordedError {
  code: string;
  errText: string | undefined;
  state: string;
}
interface Outcome {
  ops: RecordedOp[];
  error?: RecordedError;
}

function makeParser(limits: Limits, handler: OpHandler): Parser {
  const options: ParserOptions = { handler, ...limits };
  return new Parser(options);
}

/** Feeds `chunks` in order; stops at the first ProtocolError (anything else is rethrown). */
function parseChunks(chunks: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): Outcome {
  const handler = new RecordingHandler();
  const parser = makeParser(limits, handler);
  for (const chunk of chunks) {
    try {
      parser.parse(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      assert.ok(error.snippet.length > 0, 'a ProtocolError carries a snippet');
      return { ops: handler.ops, error: { code: error.code, errText: error.errText, state: error.state } };
    }
  }
  return { ops: handler.ops };
}

function toBuffer(input: string | Uint8Array): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'latin1') : Buffer.from(input);
}

/**
 * Parses `input` whole, byte by byte, and split at every index; asserts that all agree
 * and returns the outcome.
 */
function parseAllWays(input: string | Uint8Array, limits: Limits = DEFAULT_LIMITS): Outcome {
  const bytes = toBuffer(input);
  const whole = parseChunks([bytes], limits);
  const byByte: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) byByte.push(bytes.subarray(i, i + 1));
  assert.deepStrictEqual(parseChunks(byByte, limits), whole, 'byte by byte');
  for (let split = 0; split <= bytes.length; split++) {
    const halves = [bytes.subarray(0, split), bytes.subarray(split)];
    assert.deepStrictEqual(parseChunks(halves, limits), whole, `split at ${split}`);
  }
  return whole;
}

function pub(subject: string, reply: string, data: string, headerBytes = 0): RecordedOp {
  return { op: 'pub', subject, reply, headerBytes, data: Buffer.from(data, 'latin1') };
}

function assertOps(input: string, expected: RecordedOp[], limits: Limits = DEFAULT_LIMITS): void {
  assert.deepStrictEqual(parseAllWays(input, limits), { ops: expected });
}

function assertError(
  input: string,
  expected: { code: string; errText: string | undefined; state: string },
  options: { limits?: Limits; opsBefore?: RecordedOp[] } = {},
): void {
  const outcome = parseAllWays(input, options.limits ?? DEFAULT_LIMITS);
  assert.deepStrictEqual(outcome, { ops: options.opsBefore ?? [], error: expected }, JSON.stringify(input));
}

const unknownOperation = (state: string) => ({
  code: ProtocolErrorCode.unknownOperation,
  errText: ProtocolErrorText.unknownOperation,
  state,
});
const badArguments = (state: string) => ({ code: ProtocolErrorCode.badArguments, errText: undefined, state });
const controlLineTooLong = (state: string) => ({
  code: ProtocolErrorCode.controlLineTooLong,
  errText: ProtocolErrorText.maxControlLineExceeded,
  state,
});
const payloadTooLarge = (state: string) => ({
  code: ProtocolErrorCode.payloadTooLarge,
  errText: ProtocolErrorText.maxPayloadViolation,
  state,
});

describe('Parser: valid operations', () => {
  it('PING and PONG, case-insensitive, with CRLF or LF', () => {
    assertOps('PING\r\n', [{ op: 'ping' }]);
    assertOps('PONG\r\n', [{ op: 'pong' }]);
    assertOps('ping\r\nPiNg\npong\r\nPoNg\n', [{ op: 'ping' }, { op: 'ping' }, { op: 'pong' }, { op: 'pong' }]);
  });

  it('PING/PONG ignore anything up to LF, as nats-server does', () => {
    // nats-server TestParsePing: "PING  \r  \n" is a PING; OP_PING skips every byte but LF.
    assertOps('PING  \r  \n', [{ op: 'ping' }]);
    assertOps('PINGX\r\nPONGG\r\n', [{ op: 'ping' }, { op: 'pong' }]);
  });

  it('a repeated publish subject is reused only when every byte matches', () => {
    // The parser reuses the previous subject string when the bytes are equal; same-length
    // subjects that differ anywhere (first, middle, last byte) must still come out as themselves.
    assertOps('PUB a.b 1\r\n1\r\nPUB a.b 1\r\n2\r\nPUB a.c 1\r\n3\r\nPUB b.c 1\r\n4\r\nPUB bxc 1\r\n5\r\nHPUB bxc 0 1\r\n6\r\n', [
      pub('a.b', '', '1'),
      pub('a.b', '', '2'),
      pub('a.c', '', '3'),
      pub('b.c', '', '4'),
      pub('bxc', '', '5'),
      pub('bxc', '', '6'),
    ]);
  });

  it('CONNECT hands over the raw JSON bytes', () => {
    assertOps('CONNECT {"verbose":false,"pedantic":true}\r\n', [
      { op: 'connect', json: '{"verbose":false,"pedantic":true}' },
    ]);
    assertOps('connect \t {"a":1} \n', [{ op: 'connect', json: '{"a":1} ' }]);
    // nats-server OP_CONNECT: no space needed; an empty argument is the connection's to refuse.
    assertOps('CONNECT{}\r\n', [{ op: 'connect', json: '{}' }]);
    assertOps('CONNECT \r\n', [{ op: 'connect', json: '' }]);
  });

  it('PUB with and without reply', () => {
    assertOps('PUB foo 5\r\nhello\r\n', [pub('foo', '', 'hello')]);
    assertOps('PUB foo.bar INBOX.22 11\r\nhello world\r\n', [pub('foo.bar', 'INBOX.22', 'hello world')]);
    assertOps('pub foo 2\r\nhi\r\nPuB foo r 2\r\nhi\r\n', [pub('foo', '', 'hi'), pub('foo', 'r', 'hi')]);
  });

  it('PUB arguments separated by any run of spaces and tabs (nats-server TestParsePubArg)', () => {
    const cases: Array<[string, string, string, number]> = [
      ['a 2', 'a', '', 2],
      ['a 222', 'a', '', 222],
      [' foo 22', 'foo', '', 22],
      ['foo 22 ', 'foo', '', 22],
      [' foo   22 ', 'foo', '', 22],
      ['foo bar 22', 'foo', 'bar', 22],
      ['  foo   bar  22  ', 'foo', 'bar', 22],
      ['  foo     2222  ', 'foo', '', 2222],
      ['a\t2', 'a', '', 2],
      ['\tfoo\t22\t', 'foo', '', 22],
      ['foo\t\t\t22', 'foo', '', 22],
      ['\tfoo\tbar\t22\t', 'foo', 'bar', 22],
      ['\t \tfoo\t \t \tbar\t \t22\t \t', 'foo', 'bar', 22],
      ['\t \tfoo\t \t \t\t\t2222\t \t', 'foo', '', 2222],
    ];
    for (const [argument, subject, reply, size] of cases) {
      const payload = 'x'.repeat(size);
      const outcome = parseChunks([Buffer.from(`PUB ${argument}\r\n${payload}\r\n`)]);
      assert.deepStrictEqual(outcome, { ops: [pub(subject, reply, payload)] }, JSON.stringify(argument));
    }
    assertOps('PUB\tfoo \t bar\t 3 \r\nabc\r\n', [pub('foo', 'bar', 'abc')]);
  });

  it('PUB control line may end in a bare LF; the payload must end in CRLF', () => {
    assertOps('PUB foo 5\nhello\r\n', [pub('foo', '', 'hello')]);
  });

  it('PUB zero-length payload, leading zeros in the size', () => {
    assertOps('PUB foo 0\r\n\r\nPUB foo 005\r\nhello\r\n', [pub('foo', '', ''), pub('foo', '', 'hello')]);
  });

  it('PUB payload containing CRLF and protocol text is opaque', () => {
    const payload = 'PUB x 1\r\ny\r\nPING\r\n-ERR\r\n';
    assertOps(`PUB foo ${payload.length}\r\n${payload}\r\nPING\r\n`, [pub('foo', '', payload), { op: 'ping' }]);
  });

  it('PUB binary payload bytes pass through unchanged', () => {
    const payload = Buffer.from([0, 1, 0x0d, 0x0a, 0x80, 0xff, 0x0a]);
    const input = Buffer.concat([Buffer.from(`PUB bin ${payload.length}\r\n`), payload, Buffer.from('\r\n')]);
    assert.deepStrictEqual(parseAllWays(input), {
      ops: [{ op: 'pub', subject: 'bin', reply: '', headerBytes: 0, data: payload }],
    });
  });

  it('HPUB with headers, with and without reply', () => {
    const headers = 'NATS/1.0\r\nFoo: Bar\r\n\r\n';
    const body = 'hello';
    const total = headers.length + body.length;
    assertOps(`HPUB foo ${headers.length} ${total}\r\n${headers}${body}\r\n`, [pub('foo', '', headers + body, headers.length)]);
    assertOps(`hpub foo INBOX.1 ${headers.length} ${total}\r\n${headers}${body}\r\n`, [
      pub('foo', 'INBOX.1', headers + body, headers.length),
    ]);
  });

  it('HPUB with header size 0 (as nats.js sends) is valid', () => {
    assertOps('HPUB $JS.API.INFO _INBOX.x 0 2\r\n{}\r\n', [pub('$JS.API.INFO', '_INBOX.x', '{}', 0)]);
    assertOps('HPUB foo 0 0\r\n\r\n', [pub('foo', '', '', 0)]);
  });

  it('SUB with and without queue group', () => {
    assertOps('SUB foo 1\r\n', [{ op: 'sub', subject: 'foo', queue: '', sid: '1' }]);
    assertOps('sub foo.* workers 22\n', [{ op: 'sub', subject: 'foo.*', queue: 'workers', sid: '22' }]);
    assertOps('SUB\tfoo \t q\t\t9 \r\n', [{ op: 'sub', subject: 'foo', queue: 'q', sid: '9' }]);
  });

  it('SUB splits on a stray CR like nats-server splitArg; PUB keeps it in the token', () => {
    assertOps('SUB foo\r 1\r\n', [{ op: 'sub', subject: 'foo', queue: '', sid: '1' }]);
    assertOps('PUB foo\r 1\r\nx\r\n', [pub('foo\r', '', 'x')]);
  });

  it('subjects are not validated by the parser', () => {
    assertOps('SUB foo..bar 1\r\nPUB >.* 0\r\n\r\n', [
      { op: 'sub', subject: 'foo..bar', queue: '', sid: '1' },
      pub('>.*', '', ''),
    ]);
  });

  it('UNSUB with and without max', () => {
    assertOps('UNSUB 1\r\n', [{ op: 'unsub', sid: '1', maxMsgs: 0 }]);
    assertOps('unsub 1 5\r\n', [{ op: 'unsub', sid: '1', maxMsgs: 5 }]);
    assertOps('UNSUB\t7\t 10 \n', [{ op: 'unsub', sid: '7', maxMsgs: 10 }]);
  });

  it('UNSUB with a max nats-server cannot parse means unsubscribe now (maxMsgs 0)', () => {
    // nats-server processUnsub: parseSize -1 → max <= 0 → immediate unsubscribe, no error.
    assertOps('UNSUB 1 abc\r\nUNSUB 2 -5\r\nUNSUB 3 0\r\nUNSUB 4 1234567890\r\n', [
      { op: 'unsub', sid: '1', maxMsgs: 0 },
      { op: 'unsub', sid: '2', maxMsgs: 0 },
      { op: 'unsub', sid: '3', maxMsgs: 0 },
      { op: 'unsub', sid: '4', maxMsgs: 0 },
    ]);
  });

  it('INFO and +OK from a client are ignored', () => {
    assertOps('INFO {"server_id":"x","port":4222}\r\nPING\r\n', [{ op: 'ping' }]);
    assertOps('INFO null\r\n+OK\r\n+ok\n+OKAY\r\nPONG\r\n', [{ op: 'pong' }]);
  });

  it('a realistic client session', () => {
    const input =
      'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\nPING\r\n' +
      'SUB _INBOX.abc.* 1\r\n' +
      'HPUB $JS.API.STREAM.INFO.S _INBOX.abc.1 0 0\r\n\r\n' +
      'PUB orders.1 3\r\nabc\r\nUNSUB 1 2\r\nPONG\r\n';
    assertOps(input, [
      { op: 'connect', json: '{"verbose":false,"headers":true,"protocol":1}' },
      { op: 'ping' },
      { op: 'sub', subject: '_INBOX.abc.*', queue: '', sid: '1' },
      pub('$JS.API.STREAM.INFO.S', '_INBOX.abc.1', '', 0),
      pub('orders.1', '', 'abc'),
      { op: 'unsub', sid: '1', maxMsgs: 2 },
      { op: 'pong' },
    ]);
  });

  it('a payload whole in the chunk is a view into the chunk, not a copy', () => {
    const chunk = Buffer.from('PING\r\nPUB foo 5\r\nhello\r\n');
    const views: Buffer[] = [];
    const handler: OpHandler = {
      onConnect() {},
      onPub(_subject, _reply, _headerBytes, data) {
        views.push(data);
      },
      onSub() {},
      onUnsub() {},
      onPing() {},
      onPong() {},
    };
    makeParser(DEFAULT_LIMITS, handler).parse(chunk);
    assert.equal(views.length, 1);
    assert.equal(views[0]!.buffer, chunk.buffer);
    assert.equal(views[0]!.byteOffset, chunk.byteOffset + 'PING\r\nPUB foo 5\r\n'.length);
    assert.equal(views[0]!.length, 5);
  });
});

describe('Parser: unknown operations', () => {
  it('bad verbs are Unknown Protocol Operation in the state that saw the byte (nats-server TestShouldFail)', () => {
    const cases: Array<[string, string]> = [
      ['xxx', 'OP_START'],
      ['XYZ\r\n', 'OP_START'],
      [' PING\r\n', 'OP_START'],
      ['\r\n', 'OP_START'],
      ['\n', 'OP_START'],
      ['Px', 'OP_P'],
      ['PIx', 'OP_PI'],
      ['PINx', 'OP_PIN'],
      ['POx', 'OP_PO'],
      ['PONx', 'OP_PON'],
      ['PUx', 'OP_PU'],
      ['PUBX foo 1\r\n', 'OP_PUB'],
      ['PUB\r\n', 'OP_PUB'],
      ['Hx', 'OP_H'],
      ['HPx', 'OP_HP'],
      ['HPUx', 'OP_HPU'],
      ['HPUBX foo 0 1\r\n', 'OP_HPUB'],
      ['Sx', 'OP_S'],
      ['SUx', 'OP_SU'],
      ['SUB\r\n', 'OP_SUB'],
      ['SUBS foo 1\r\n', 'OP_SUB'],
      ['Ux', 'OP_U'],
      ['UNx', 'OP_UN'],
      ['UNSx', 'OP_UNS'],
      ['UNSUx', 'OP_UNSU'],
      ['UNSUBx', 'OP_UNSUB'],
      ['UNSUBUNSUB 1\r\n', 'OP_UNSUB'],
      ['UNSUB_2\r\n', 'OP_UNSUB'],
      ['UNSUB\r\n', 'OP_UNSUB'],
      ['Cx', 'OP_C'],
      ['COx', 'OP_CO'],
      ['CONx', 'OP_CON'],
      ['CONNx', 'OP_CONN'],
      ['CONNEx', 'OP_CONNE'],
      ['CONNECx', 'OP_CONNEC'],
      ['Ix', 'OP_I'],
      ['INx', 'OP_IN'],
      ['INFx', 'OP_INF'],
      ['+x', 'OP_PLUS'],
      ['+Ox', 'OP_PLUS_O'],
      ['-x', 'OP_MINUS'],
      ['-Ex', 'OP_MINUS_E'],
      ['-ERx', 'OP_MINUS_ER'],
      ['-ERRx', 'OP_MINUS_ERR'],
      ['-ERR\r\n', 'OP_MINUS_ERR'],
    ];
    for (const [input, state] of cases) assertError(input, unknownOperation(state));
  });

  it('server-only and route-only ops from a client are Unknown Protocol Operation', () => {
    // nats-server OP_START: no M for clients; R, L, A only for routes/leafs/gateways.
    assertError('MSG foo 1 2\r\nhi\r\n', unknownOperation('OP_START'));
    assertError('RS+ $G foo\r\n', unknownOperation('OP_START'));
    assertError('LS+ $G foo\r\n', unknownOperation('OP_START'));
    assertError('A+ foo\r\n', unknownOperation('OP_START'));
    // Deliberately stricter than nats-server, which has no client guard on HMSG.
    assertError('HMSG foo 1 0 2\r\nhi\r\n', unknownOperation('OP_H'));
  });

  it('operations before the bad byte are dispatched', () => {
    // nats-server OP_START: an empty line is an unknown operation.
    assertError('PING\r\n\r\n', unknownOperation('OP_START'), { opsBefore: [{ op: 'ping' }] });
    assertError('PING\r\nSUB foo 1\r\nBOGUS\r\n', unknownOperation('OP_START'), {
      opsBefore: [{ op: 'ping' }, { op: 'sub', subject: 'foo', queue: '', sid: '1' }],
    });
  });

  it('the byte after a payload must be CR, then LF', () => {
    // nats-server TestShouldFail: "PUB foo 2\r\nok \r\n", "PUB foo 2\r\nok\r \n".
    assertError('PUB foo 2\r\nok \r\n', unknownOperation('MSG_END_R'));
    assertError('PUB foo 2\r\nok\r \n', unknownOperation('MSG_END_N'));
    assertError('PUB foo 2\r\nok\n', unknownOperation('MSG_END_R'));
    assertError('PUB foo 2\r\nokk\r\n', unknownOperation('MSG_END_R'));
    assertError('PUB foo 2\r\no\r\n', unknownOperation('MSG_END_R'));
    assertError('HPUB foo 0 2\r\nok\r\r', unknownOperation('MSG_END_N'));
  });

  it('the error carries an escaped snippet of at most 32 bytes from the offset', () => {
    const parser = makeParser(DEFAULT_LIMITS, new RecordingHandler());
    const input = Buffer.from('PING\r\nPUBX\x00\xff' + 'y'.repeat(40), 'latin1');
    const error = captureProtocolError(() => parser.parse(input));
    assert.equal(error.offset, 9);
    assert.equal(error.state, 'OP_PUB');
    assert.equal(error.snippet, '"X\\x00\\xff' + 'y'.repeat(29) + '"');
    assert.match(error.message, /state=OP_PUB offset=9/);
  });
});

describe('Parser: malformed arguments close without -ERR', () => {
  it('PUB with a wrong argument count or a bad size (nats-server processPub)', () => {
    assertError('PUB foo\r\n', badArguments('PUB_ARG'));
    assertError('PUB  \r\n', badArguments('PUB_ARG'));
    assertError('PUB foo bar       \r\n', badArguments('PUB_ARG'));
    assertError('PUB a b c d\r\n', badArguments('PUB_ARG'));
    assertError('PUB a b c 5\r\n', badArguments('PUB_ARG'));
    assertError('PUB foo -1\r\n', badArguments('PUB_ARG'));
    assertError('PUB foo +1\r\n', badArguments('PUB_ARG'));
    assertError('PUB foo 5x\r\n', badArguments('PUB_ARG'));
    assertError('PUB foo 0x5\r\n', badArguments('PUB_ARG'));
    // nats-server parseSize: more than 9 digits is a bad size, not a payload violation.
    assertError('PUB foo 0000000005\r\n', badArguments('PUB_ARG'));
    assertError('PUB foo 2222222222222222\r\n', badArguments('PUB_ARG'));
  });

  it('HPUB with a wrong argument count, bad sizes, or header size > total (nats-server processHeaderPub)', () => {
    assertError('HPUB foo 5\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB a b c d e\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB foo x 5\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB foo -1 5\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB foo 2 y\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB foo 10 5\r\n', badArguments('HPUB_ARG'));
    assertError('HPUB foo r 6 5\r\n', badArguments('HPUB_ARG'));
  });

  it('SUB and UNSUB with a wrong argument count (nats-server parseSub, processUnsub)', () => {
    assertError('SUB  \r\n', badArguments('SUB_ARG'));
    assertError('SUB foo\r\n', badArguments('SUB_ARG'));
    assertError('SUB foo bar baz 22\r\n', badArguments('SUB_ARG'));
    assertError('UNSUB \r\n', badArguments('UNSUB_ARG'));
    assertError('UNSUB          \t       \r\n', badArguments('UNSUB_ARG'));
    assertError('UNSUB 1 2 3\r\n', badArguments('UNSUB_ARG'));
  });

  it('INFO that is not a JSON object (nats-server processInfo json.Unmarshal)', () => {
    assertError('INFO  \r\n', badArguments('INFO_ARG'));
    assertError('INFO {bad\r\n', badArguments('INFO_ARG'));
    assertError('INFO [1]\r\n', badArguments('INFO_ARG'));
    assertError('INFO "x"\r\n', badArguments('INFO_ARG'));
    assertError('INFO 42\r\n', badArguments('INFO_ARG'));
  });

  it('-ERR from a client closes without -ERR (nats-server processErr)', () => {
    assertError("PING\r\n-ERR 'oops'\r\nPING\r\n", { code: ProtocolErrorCode.clientError, errText: undefined, state: 'MINUS_ERR_ARG' }, {
      opsBefore: [{ op: 'ping' }],
    });
  });

  it('HPUB while headers are not supported closes without -ERR', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, headersSupported: false };
    assertError('PUB foo 0\r\n\r\nHPUB foo 0 2\r\nhi\r\n', { code: ProtocolErrorCode.headersNotSupported, errText: undefined, state: 'HPUB_ARG' }, {
      limits,
      opsBefore: [pub('foo', '', '')],
    });
  });

  it('setHeadersSupported from onConnect applies to the rest of the same chunk', () => {
    const handler = new RecordingHandler();
    const parser = makeParser({ ...DEFAULT_LIMITS, headersSupported: false }, {
      ...bindHandler(handler),
      onConnect(json) {
        handler.onConnect(json);
        parser.setHeadersSupported((JSON.parse(json.toString()) as { headers?: boolean }).headers === true);
      },
    });
    parser.parse(Buffer.from('CONNECT {"headers":true}\r\nHPUB foo 0 2\r\nhi\r\n'));
    assert.deepStrictEqual(handler.ops, [{ op: 'connect', json: '{"headers":true}' }, pub('foo', '', 'hi', 0)]);
  });
});

describe('Parser: limits', () => {
  // SMALL_LIMITS: controlLineBytesMax 64, payloadBytesMax 100.
  const argumentOf = (length: number) => 'a'.repeat(length - 2) + ' 1';

  it('a PUB control line of exactly the limit passes, one byte more fails (whole and split)', () => {
    assert.equal(argumentOf(64).length, 64);
    assertOps(`PUB ${argumentOf(64)}\r\nx\r\n`, [pub('a'.repeat(62), '', 'x')], SMALL_LIMITS);
    assertOps(`PUB ${argumentOf(64)}\nx\r\n`, [pub('a'.repeat(62), '', 'x')], SMALL_LIMITS);
    assertError(`PUB ${argumentOf(65)}\r\nx\r\n`, controlLineTooLong('PUB_ARG'), { limits: SMALL_LIMITS });
    assertError(`PUB ${argumentOf(65)}\nx\r\n`, controlLineTooLong('PUB_ARG'), { limits: SMALL_LIMITS });
  });

  it('the limit counts argument bytes: verb, whitespace after it and the line ending are free', () => {
    assertOps(`pub  \t ${argumentOf(64)}\r\nx\r\n`, [pub('a'.repeat(62), '', 'x')], SMALL_LIMITS);
  });

  it('SUB, UNSUB, HPUB, CONNECT and INFO lines are limited too', () => {
    assertOps(`SUB ${'s'.repeat(62)} 1\r\n`, [{ op: 'sub', subject: 's'.repeat(62), queue: '', sid: '1' }], SMALL_LIMITS);
    assertError(`SUB ${'s'.repeat(63)} 1\r\n`, controlLineTooLong('SUB_ARG'), { limits: SMALL_LIMITS });
    assertError(`UNSUB ${'1'.repeat(65)}\r\n`, controlLineTooLong('UNSUB_ARG'), { limits: SMALL_LIMITS });
    assertError(`HPUB ${'h'.repeat(61)} 0 1\r\nx\r\n`, controlLineTooLong('HPUB_ARG'), { limits: SMALL_LIMITS });
    const json = JSON.stringify({ name: 'n'.repeat(53) });
    assert.equal(json.length, 64);
    assertOps(`CONNECT ${json}\r\n`, [{ op: 'connect', json }], SMALL_LIMITS);
    assertError(`CONNECT ${json} \r\n`, controlLineTooLong('CONNECT_ARG'), { limits: SMALL_LIMITS });
    assertError(`INFO ${json}  \r\n`, controlLineTooLong('INFO_ARG'), { limits: SMALL_LIMITS });
    assertError(`-ERR ${'e'.repeat(65)}\r\n`, controlLineTooLong('MINUS_ERR_ARG'), { limits: SMALL_LIMITS });
  });

  it('the default limit (4096) at the edge', () => {
    const subject = 's'.repeat(4094);
    const ok = Buffer.from(`PUB ${subject} 1\r\nx\r\n`);
    const tooLong = Buffer.from(`PUB ${subject}s 1\r\nx\r\n`);
    for (const split of [0, 3, 4, 100, 4097, 4098, 4099, 4100, ok.length]) {
      assert.deepStrictEqual(parseChunks([ok.subarray(0, split), ok.subarray(split)]), { ops: [pub(subject, '', 'x')] });
      assert.deepStrictEqual(parseChunks([tooLong.subarray(0, split), tooLong.subarray(split)]), {
        ops: [],
        error: controlLineTooLong('PUB_ARG'),
      });
    }
  });

  it('a line that never ends fails as soon as it passes the limit, without buffering it', () => {
    const parser = makeParser(SMALL_LIMITS, new RecordingHandler());
    parser.parse(Buffer.from('SUB '));
    let fedBytes = 0;
    const chunk = Buffer.alloc(10, 'x');
    const error = captureProtocolError(() => {
      for (let round = 0; round < 1000; round++) {
        parser.parse(chunk);
        fedBytes += chunk.length;
      }
    });
    assert.equal(error.code, ProtocolErrorCode.controlLineTooLong);
    assert.equal(error.errText, ProtocolErrorText.maxControlLineExceeded);
    assert.equal(fedBytes, 60, 'the chunk taking the line from 60 to 70 bytes is refused');
  });

  it('PING/PONG/+OK bodies and whitespace runs are bounded by the limit (stricter than nats-server)', () => {
    assertOps(`PING${' '.repeat(64)}\r\n`, [{ op: 'ping' }], SMALL_LIMITS);
    assertError(`PING${' '.repeat(65)}\r\n`, controlLineTooLong('OP_PING'), { limits: SMALL_LIMITS });
    assertError(`PONG${'x'.repeat(65)}\n`, controlLineTooLong('OP_PONG'), { limits: SMALL_LIMITS });
    assertError(`+OK${'x'.repeat(65)}\r\n`, controlLineTooLong('OP_PLUS_OK'), { limits: SMALL_LIMITS });
    // The whitespace counted is what OP_PUB_SPC skips, after the one that ends the verb.
    assertOps(`PUB${' '.repeat(65)}foo 0\r\n\r\n`, [pub('foo', '', '')], SMALL_LIMITS);
    assertError(`PUB${' '.repeat(66)}foo 0\r\n\r\n`, controlLineTooLong('OP_PUB_SPC'), { limits: SMALL_LIMITS });
    assertOps(`CONNECT${' '.repeat(64)}{}\r\n`, [{ op: 'connect', json: '{}' }], SMALL_LIMITS);
    assertError(`CONNECT${' '.repeat(65)}{}\r\n`, controlLineTooLong('OP_CONNECT'), { limits: SMALL_LIMITS });
  });

  it('PUB size at max_payload passes, one byte more is a Maximum Payload Violation', () => {
    const payload = 'p'.repeat(100);
    assertOps(`PUB foo 100\r\n${payload}\r\n`, [pub('foo', '', payload)], SMALL_LIMITS);
    assertError(`PUB foo 101\r\n${payload}p\r\n`, payloadTooLarge('PUB_ARG'), { limits: SMALL_LIMITS });
  });

  it('HPUB total size is what max_payload limits', () => {
    const headers = 'NATS/1.0\r\n\r\n';
    const body = 'b'.repeat(100 - headers.length);
    assertOps(`HPUB foo ${headers.length} 100\r\n${headers}${body}\r\n`, [pub('foo', '', headers + body, headers.length)], SMALL_LIMITS);
    assertError(`HPUB foo ${headers.length} 101\r\n${headers}${body}b\r\n`, payloadTooLarge('HPUB_ARG'), { limits: SMALL_LIMITS });
    // nats-server order: header size > total is checked before max_payload.
    assertError('HPUB foo 200 150\r\n', badArguments('HPUB_ARG'), { limits: SMALL_LIMITS });
  });

  it('a payload far larger than the chunk size arrives whole', () => {
    const payload = Buffer.alloc(300_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const input = Buffer.concat([Buffer.from(`PUB big ${payload.length}\r\n`), payload, Buffer.from('\r\nPING\r\n')]);
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < input.length; offset += 1000) chunks.push(input.subarray(offset, offset + 1000));
    assert.deepStrictEqual(parseChunks(chunks), {
      ops: [{ op: 'pub', subject: 'big', reply: '', headerBytes: 0, data: payload }, { op: 'ping' }],
    });
  });
});

describe('Parser: lifecycle', () => {
  it('is dead after a ProtocolError: parse asserts', () => {
    const handler = new RecordingHandler();
    const parser = makeParser(DEFAULT_LIMITS, handler);
    assert.throws(() => parser.parse(Buffer.from('BAD\r\n')), ProtocolError);
    assert.throws(() => parser.parse(Buffer.from('PING\r\n')), AssertionError);
    assert.deepStrictEqual(handler.ops, []);
  });

  it('is dead after a handler throws', () => {
    const parser = makeParser(DEFAULT_LIMITS, {
      ...bindHandler(new RecordingHandler()),
      onPing() {
        throw new Error('handler failed');
      },
    });
    assert.throws(() => parser.parse(Buffer.from('PING\r\n')), /handler failed/);
    assert.throws(() => parser.parse(Buffer.from('PONG\r\n')), AssertionError);
  });

  it('exposes the nats-server state name between chunks', () => {
    const parser = makeParser(DEFAULT_LIMITS, new RecordingHandler());
    const states: string[] = [];
    for (const byte of Buffer.from('PING\r\n')) {
      parser.parse(Buffer.from([byte]));
      states.push(parser.stateName);
    }
    // nats-server TestParsePing.
    assert.deepStrictEqual(states, ['OP_P', 'OP_PI', 'OP_PIN', 'OP_PING', 'OP_PING', 'OP_START']);
    parser.parse(Buffer.from('PUB foo 5\r\nhel'));
    assert.equal(parser.stateName, 'MSG_PAYLOAD');
    parser.parse(Buffer.from('lo\r'));
    assert.equal(parser.stateName, 'MSG_END_N');
  });

  it('rejects nonsensical limits', () => {
    assert.throws(() => makeParser({ controlLineBytesMax: 0, payloadBytesMax: 1 }, new RecordingHandler()), AssertionError);
    assert.throws(() => makeParser({ controlLineBytesMax: 1.5, payloadBytesMax: 1 }, new RecordingHandler()), AssertionError);
    assert.throws(() => makeParser({ controlLineBytesMax: 10, payloadBytesMax: -1 }, new RecordingHandler()), AssertionError);
  });
});

describe('bytes helpers', () => {
  it('parseSize accepts 1 to 9 ASCII digits only', () => {
    const size = (text: string) => parseSize(Buffer.from(text), 0, text.length);
    assert.equal(size('0'), 0);
    assert.equal(size('007'), 7);
    assert.equal(size('1048576'), 1048576);
    assert.equal(size('999999999'), 999999999);
    assert.equal(size('1000000000'), -1);
    assert.equal(size(''), -1);
    assert.equal(size('-1'), -1);
    assert.equal(size('1 '), -1);
    assert.equal(size('1e3'), -1);
    assert.equal(parseSize(Buffer.from('xx42yy'), 2, 4), 42);
  });

  it('escapeBytes quotes like Go %q for ASCII and hex-escapes the rest', () => {
    const bytes = Buffer.from('a"\\\r\n\t\x00\x7f\xe9 z', 'latin1');
    assert.equal(escapeBytes(bytes, 0, bytes.length), '"a\\"\\\\\\r\\n\\t\\x00\\x7f\\xe9 z"');
    assert.equal(escapeBytes(bytes, 1, 1), '""');
  });
});

// ---------------------------------------------------------------------------------------
// Property tests.

/** A generated valid operation: its wire bytes and what the handler must record. */
interface GeneratedOp {
  bytes: Buffer;
  expected: RecordedOp | undefined;
}

const tokenArbitrary = fc.stringMatching(/^[A-Za-z0-9_.$*>:-]{1,24}$/);
const separatorArbitrary = fc.stringMatching(/^[ \t]{1,3}$/);
const lineEndArbitrary = fc.constantFrom('\r\n', '\n');
/** Verb in random letter case. */
function verbArbitrary(verb: string): fc.Arbitrary<string> {
  return fc
    .array(fc.boolean(), { minLength: verb.length, maxLength: verb.length })
    .map((isUpper) => [...verb].map((letter, k) => (isUpper[k] ? letter.toUpperCase() : letter.toLowerCase())).join(''));
}

/**
 * Payload bytes: random binary, or pieces that look like the protocol (CRLF, bare CR and
 * LF, whole control lines), which a payload must carry through untouched.
 */
function payloadArbitrary(maxLength: number): fc.Arbitrary<Uint8Array> {
  const piece = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom('\r\n', '\r', '\n', '\r\n\r\n', 'PUB a 1\r\nx\r\n', 'PING\r\n', '-ERR x\r\n', 'NATS/1.0\r\n').map((text) => Buffer.from(text)),
  );
  return fc.oneof(
    fc.uint8Array({ maxLength }),
    fc.array(piece, { maxLength: 8 }).map((pieces) => new Uint8Array(Buffer.concat(pieces).subarray(0, maxLength))),
  );
}

function op(bytes: string | Buffer, expected: RecordedOp | undefined): GeneratedOp {
  return { bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, expected };
}

const pubArbitrary = fc
  .record({
    verb: verbArbitrary('pub'),
    subject: tokenArbitrary,
    reply: fc.option(tokenArbitrary, { nil: undefined }),
    payload: payloadArbitrary(300),
    separator: separatorArbitrary,
    lineEnd: lineEndArbitrary,
  })
  .map(({ verb, subject, reply, payload, separator, lineEnd }) => {
    const line = [verb, subject, ...(reply === undefined ? [] : [reply]), String(payload.length)].join(separator) + lineEnd;
    const data = Buffer.from(payload);
    return op(Buffer.concat([Buffer.from(line, 'latin1'), data, Buffer.from('\r\n')]), {
      op: 'pub',
      subject,
      reply: reply ?? '',
      headerBytes: 0,
      data,
    });
  });

const hpubArbitrary = fc
  .record({
    verb: verbArbitrary('hpub'),
    subject: tokenArbitrary,
    reply: fc.option(tokenArbitrary, { nil: undefined }),
    headers: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,10}$/), fc.stringMatching(/^[ -~]{0,20}$/)), { maxLength: 3 }),
    hasHeaderBlock: fc.boolean(),
    payload: payloadArbitrary(200),
    separator: separatorArbitrary,
  })
  .map(({ verb, subject, reply, headers, hasHeaderBlock, payload, separator }) => {
    const headerBlock = hasHeaderBlock ? `NATS/1.0\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n` : '';
    const data = Buffer.concat([Buffer.from(headerBlock, 'latin1'), Buffer.from(payload)]);
    const sizes = [String(headerBlock.length), String(data.length)];
    const line = [verb, subject, ...(reply === undefined ? [] : [reply]), ...sizes].join(separator) + '\r\n';
    return op(Buffer.concat([Buffer.from(line, 'latin1'), data, Buffer.from('\r\n')]), {
      op: 'pub',
      subject,
      reply: reply ?? '',
      headerBytes: headerBlock.length,
      data,
    });
  });

const subArbitrary = fc
  .record({
    verb: verbArbitrary('sub'),
    subject: tokenArbitrary,
    queue: fc.option(tokenArbitrary, { nil: undefined }),
    sid: fc.stringMatching(/^[0-9]{1,6}$/),
    separator: separatorArbitrary,
    lineEnd: lineEndArbitrary,
  })
  .map(({ verb, subject, queue, sid, separator, lineEnd }) =>
    op([verb, subject, ...(queue === undefined ? [] : [queue]), sid].join(separator) + lineEnd, {
      op: 'sub',
      subject,
      queue: queue ?? '',
      sid,
    }),
  );

const unsubArbitrary = fc
  .record({
    verb: verbArbitrary('unsub'),
    sid: fc.stringMatching(/^[0-9]{1,6}$/),
    maxMsgs: fc.option(fc.integer({ min: 0, max: 999_999_999 }), { nil: undefined }),
    lineEnd: lineEndArbitrary,
  })
  .map(({ verb, sid, maxMsgs, lineEnd }) =>
    op(`${verb} ${sid}${maxMsgs === undefined ? '' : ` ${maxMsgs}`}${lineEnd}`, { op: 'unsub', sid, maxMsgs: maxMsgs ?? 0 }),
  );

const connectArbitrary = fc
  .record({ verb: verbArbitrary('connect'), json: fc.json({ maxDepth: 2 }), lineEnd: lineEndArbitrary })
  // Serialized JSON never contains a raw CR or LF (JSON.stringify escapes them).
  .map(({ verb, json, lineEnd }) => {
    const jsonBytes = Buffer.from(json, 'utf8');
    const bytes = Buffer.concat([Buffer.from(`${verb} `), jsonBytes, Buffer.from(lineEnd)]);
    return op(bytes, { op: 'connect', json: jsonBytes.toString('latin1') });
  });

const simpleArbitrary = fc.oneof(
  fc.tuple(verbArbitrary('ping'), lineEndArbitrary).map(([verb, end]) => op(verb + end, { op: 'ping' })),
  fc.tuple(verbArbitrary('pong'), lineEndArbitrary).map(([verb, end]) => op(verb + end, { op: 'pong' })),
  fc.tuple(verbArbitrary('+ok'), lineEndArbitrary).map(([verb, end]) => op(verb + end, undefined)),
  fc.constant(op('INFO {"server_id":"s","version":"2.10.0"}\r\n', undefined)),
);

const validOpArbitrary: fc.Arbitrary<GeneratedOp> = fc.oneof(
  { weight: 4, arbitrary: pubArbitrary },
  { weight: 2, arbitrary: hpubArbitrary },
  { weight: 2, arbitrary: subArbitrary },
  { weight: 1, arbitrary: unsubArbitrary },
  { weight: 1, arbitrary: connectArbitrary },
  { weight: 2, arbitrary: simpleArbitrary },
);

/** Random split points, as fractions turned into indexes once the length is known. */
const splitsArbitrary = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });

function splitAt(bytes: Buffer, fractions: readonly number[]): Buffer[] {
  const points = [...new Set(fractions.map((fraction) => Math.floor(fraction * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(previous, point));
    previous = point;
  }
  chunks.push(bytes.subarray(previous));
  return chunks;
}

/**
 * Property run counts: the default keeps `npm test` fast; PARSER_PROPERTY_RUNS=<n>
 * runs every parser property n times for a longer hunt. fast-check prints the seed of a
 * failure; SEED=<n> replays it.
 */
function propertyParameters<T>(defaultRuns: number): fc.Parameters<T> {
  const runs = process.env['PARSER_PROPERTY_RUNS'];
  return fastCheckParameters({ numRuns: runs === undefined || runs === '' ? defaultRuns : Number(runs) });
}

/** Chunk sizes, used in turn (the last repeats): mostly small, so states are split everywhere. */
const chunkSizesArbitrary = fc.array(fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 400 })), { minLength: 1, maxLength: 8 });

function chunksOfSizes(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (let k = 0; offset < bytes.length; k++) {
    const size = sizes[Math.min(k, sizes.length - 1)]!;
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ProtocolErrorCode));
const ERROR_TEXTS: ReadonlySet<string> = new Set(Object.values(ProtocolErrorText));

type StreamMutation = { kind: 'flip' | 'poke' | 'truncate' | 'insert' | 'delete' | 'repeat'; at: number; bit: number; bytes: Buffer };

/** Bytes the parser's states turn on. */
const PROTOCOL_BYTES = ['\r', '\n', ' ', '\t', '0', '9', 'P', 'p', 'H', 'S', 'U', 'C', 'I', '+', '-', '{', '\x00', '\xff'];

const streamMutationArbitrary: fc.Arbitrary<StreamMutation> = fc.record({
  kind: fc.constantFrom('flip', 'poke', 'truncate', 'insert', 'delete', 'repeat'),
  at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  bit: fc.integer({ min: 0, max: 7 }),
  bytes: fc.oneof(
    fc.constantFrom(...PROTOCOL_BYTES).map((text) => Buffer.from(text, 'latin1')),
    fc.constantFrom('\r\n', 'PUB ', '99999', '1000000000', 'HPUB a 5 3\r\n').map((text) => Buffer.from(text)),
    fc.uint8Array({ minLength: 1, maxLength: 16 }).map((array) => Buffer.from(array)),
  ),
});

function mutateStream(original: Buffer, mutations: readonly StreamMutation[]): Buffer {
  let bytes = original;
  for (const mutation of mutations) {
    const at = Math.floor(mutation.at * bytes.length);
    const length = mutation.bytes.length;
    if (mutation.kind === 'flip' && bytes.length > 0) bytes = Buffer.from(bytes).fill(bytes[at]! ^ (1 << mutation.bit), at, at + 1);
    else if (mutation.kind === 'poke' && bytes.length > 0) bytes = Buffer.from(bytes).fill(mutation.bytes[0]!, at, at + 1);
    else if (mutation.kind === 'truncate') bytes = bytes.subarray(0, at);
    else if (mutation.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), mutation.bytes, bytes.subarray(at)]);
    else if (mutation.kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + length)]);
    else if (mutation.kind === 'repeat') bytes = Buffer.concat([bytes.subarray(0, at + length), bytes.subarray(at)]);
  }
  return bytes;
}

describe('Parser: properties', () => {
  it('valid ops: the whole buffer gives the model ops, and any chunking (1-byte chunks too) gives the same', () => {
    fc.assert(
      fc.property(fc.array(validOpArbitrary, { minLength: 1, maxLength: 12 }), splitsArbitrary, chunkSizesArbitrary, (ops, fractions, sizes) => {
        const bytes = Buffer.concat(ops.map((generated) => generated.bytes));
        const expected = ops.flatMap((generated) => (generated.expected === undefined ? [] : [generated.expected]));
        const whole = parseChunks([bytes]);
        assert.deepStrictEqual(whole, { ops: expected });
        assert.deepStrictEqual(parseChunks(splitAt(bytes, fractions)), whole);
        assert.deepStrictEqual(parseChunks(chunksOfSizes(bytes, sizes)), whole);
        assert.deepStrictEqual(parseChunks(chunksOfSizes(bytes, [1])), whole);
      }),
      propertyParameters(500),
    );
  });

  it('arbitrary bytes: only ProtocolErrors are thrown, the parser stops at the first, and chunking does not matter', () => {
    const fragmentArbitrary = fc.oneof(
      { weight: 3, arbitrary: validOpArbitrary.map((generated) => generated.bytes) },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom('PUB ', 'HPUB ', 'SUB ', 'UNSUB ', 'PING', 'PONG', 'CONNECT ', 'INFO ', '+OK', '-ERR ', 'MSG ')
          .map((text) => Buffer.from(text)),
      },
      {
        weight: 3,
        arbitrary: fc.constantFrom('\r\n', '\n', '\r', ' ', '\t', '0', '5', '12', '99999', 'foo', '{}').map((text) => Buffer.from(text)),
      },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map((array) => Buffer.from(array)) },
    );
    fc.assert(
      fc.property(fc.array(fragmentArbitrary, { maxLength: 16 }), splitsArbitrary, fc.boolean(), (fragments, fractions, isSmall) => {
        const bytes = Buffer.concat(fragments);
        const limits = isSmall ? SMALL_LIMITS : DEFAULT_LIMITS;
        const whole = parseChunks([bytes], limits);
        assert.deepStrictEqual(parseChunks(splitAt(bytes, fractions), limits), whole);

        // Stops at the first error: no op is dispatched after it, parse then asserts.
        const handler = new RecordingHandler();
        const parser = makeParser(limits, handler);
        let thrown: unknown;
        try {
          parser.parse(bytes);
        } catch (error) {
          thrown = error;
        }
        if (whole.error === undefined) {
          assert.equal(thrown, undefined);
        } else {
          assert.ok(thrown instanceof ProtocolError);
          const opCount = handler.ops.length;
          assert.throws(() => parser.parse(Buffer.from('PING\r\n')), AssertionError);
          assert.equal(handler.ops.length, opCount);
        }
      }),
      propertyParameters(500),
    );
  });

  it('pure noise never throws anything but a ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), splitsArbitrary, (noise, fractions) => {
        const bytes = Buffer.from(noise);
        assert.deepStrictEqual(parseChunks(splitAt(bytes, fractions), SMALL_LIMITS), parseChunks([bytes], SMALL_LIMITS));
      }),
      propertyParameters(500),
    );
  });



  it('mutated valid streams: only ProtocolErrors, the documented texts, and chunking does not matter', () => {
    // Goal: bytes close to valid reach the deep states (arguments, payload ends, limits).
    // Method: a valid session is flipped, poked with protocol bytes, cut, spliced and
    // repeated, then parsed whole, in random chunks and byte by byte.
    fc.assert(
      fc.property(
        fc.array(validOpArbitrary, { minLength: 1, maxLength: 8 }),
        fc.array(streamMutationArbitrary, { minLength: 1, maxLength: 4 }),
        chunkSizesArbitrary,
        fc.boolean(),
        (ops, mutations, sizes, isSmall) => {
          const bytes = mutateStream(Buffer.concat(ops.map((generated) => generated.bytes)), mutations);
          const limits = isSmall ? SMALL_LIMITS : DEFAULT_LIMITS;
          const whole = parseChunks([bytes], limits);
          if (whole.error !== undefined) {
            assert.ok(ERROR_CODES.has(whole.error.code), `documented code ${whole.error.code}`);
            assert.ok(whole.error.errText === undefined || ERROR_TEXTS.has(whole.error.errText), `documented text ${whole.error.errText}`);
          }
          assert.deepStrictEqual(parseChunks(chunksOfSizes(bytes, sizes), limits), whole);
          assert.deepStrictEqual(parseChunks(chunksOfSizes(bytes, [1]), limits), whole);
        },
      ),
      propertyParameters(500),
    );
  });

  it('bounded memory: what the parser holds never exceeds max_control_line + max_payload, whatever it is fed', () => {
    // Goal: no input makes the parser buffer without bound. Method: random limits, and
    // input made of valid ops, never-ending lines, size-declaring lines whose payload
    // trickles in and noise, fed in random chunks; after every chunk the bytes held and
    // the scratch buffers allocated are checked against the limits.
    const lineArbitrary = fc
      .record({ verb: fc.constantFrom('PUB ', 'HPUB ', 'SUB ', 'UNSUB ', 'CONNECT ', 'INFO ', '-ERR ', 'PING', 'PONG', '+OK', 'PUB', ''), length: fc.nat(3000), byte: fc.integer({ min: 0x21, max: 0x7e }) })
      .map(({ verb, length, byte }) => Buffer.concat([Buffer.from(verb), Buffer.alloc(length, byte)]));
    // PUB/HPUB lines declaring sizes around max_payload, mostly followed by the whole payload and CRLF.
    const sizedArbitrary = (payloadBytesMax: number) =>
      fc
        .record({
          size: fc.oneof(fc.integer({ min: 0, max: payloadBytesMax }), fc.integer({ min: payloadBytesMax >> 1, max: payloadBytesMax + 2 })),
          headerFraction: fc.double({ min: 0, max: 1, noNaN: true }),
          isHpub: fc.boolean(),
          isWhole: fc.nat(4),
          fill: fc.integer({ min: 0, max: 255 }),
        })
        .map(({ size, headerFraction, isHpub, isWhole, fill }) => {
          const line = isHpub ? `HPUB s ${Math.floor(headerFraction * size)} ${size}\r\n` : `PUB s r ${size}\r\n`;
          const body = Buffer.alloc(isWhole > 0 ? size : Math.floor(size / 2), fill);
          return Buffer.concat([Buffer.from(line), body, Buffer.from(isWhole > 0 ? '\r\n' : '')]);
        });
    const inputArbitrary = fc
      .record({ controlLineBytesMax: fc.integer({ min: 1, max: 512 }), payloadBytesMax: fc.nat(1024) })
      .chain((limits) => {
        const fragmentArbitrary = fc.oneof(
          { weight: 2, arbitrary: validOpArbitrary.map((generated) => generated.bytes) },
          { weight: 2, arbitrary: lineArbitrary },
          { weight: 4, arbitrary: sizedArbitrary(limits.payloadBytesMax) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((array) => Buffer.from(array)) },
        );
        return fc.tuple(fc.constant(limits), fc.array(fragmentArbitrary, { minLength: 1, maxLength: 10 }));
      });
    fc.assert(
      fc.property(inputArbitrary, chunkSizesArbitrary, ([limits, fragments], sizes) => {
        const parser = makeParser(limits, new RecordingHandler());
        const scratchMax = limits.controlLineBytesMax + 1 + limits.payloadBytesMax;
        const bufferedMax = Math.max(limits.controlLineBytesMax + 1, limits.payloadBytesMax);
        for (const chunk of chunksOfSizes(Buffer.concat(fragments), sizes)) {
          try {
            parser.parse(chunk);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
            break;
          } finally {
            assert.ok(parser.bufferedBytes <= bufferedMax, `holds ${parser.bufferedBytes} > ${bufferedMax} bytes`);
            assert.ok(parser.scratchBytes <= scratchMax, `allocated ${parser.scratchBytes} > ${scratchMax} bytes`);
          }
        }
      }),
      propertyParameters(300),
    );
  });

  it('bounded memory: a payload of exactly max_payload in 1-byte chunks is held once, in a buffer of max_payload', () => {
    const limits = { controlLineBytesMax: 64, payloadBytesMax: 4096 };
    const handler = new RecordingHandler();
    const parser = makeParser(limits, handler);
    const bytes = Buffer.concat([Buffer.from('PUB s 4096\r\n'), Buffer.alloc(4096, 0x0d), Buffer.from('\r\nPUB s 1\r\nx\r\n')]);
    let heldMax = 0;
    for (const chunk of chunksOfSizes(bytes, [1])) {
      parser.parse(chunk);
      heldMax = Math.max(heldMax, parser.bufferedBytes);
      assert.ok(parser.scratchBytes <= 65 + 4096);
    }
    assert.equal(heldMax, 4096);
    assert.equal(parser.bufferedBytes, 0);
    assert.equal(handler.ops.length, 2);
  });
});

// ---------------------------------------------------------------------------------------

function captureProtocolError(action: () => void): ProtocolError {
  try {
    action();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  assert.fail('expected a ProtocolError');
}

/** A plain-object OpHandler forwarding to `handler`, so single methods can be overridden. */
function bindHandler(handler: RecordingHandler): OpHandler {
  return {
    onConnect: (json) => handler.onConnect(json),
    onPub: (subject, reply, headerBytes, data) => handler.onPub(subject, reply, headerBytes, data),
    onSub: (subject, queue, sid) => handler.onSub(subject, queue, sid),
    onUnsub: (sid, maxMsgs) => handler.onUnsub(sid, maxMsgs),
    onPing: () => handler.onPing(),
    onPong: () => handler.onPong(),
  };
}
