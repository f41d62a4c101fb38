/**
 * Tests for core/link/codec.ts.
 *
 * - Examples: every frame type round-trips with its edge values (limits exactly at
 *   their maximum, bigint extremes, headers undefined vs empty); each validation rule
 *   rejects a hand-made wire frame with a LinkError saying what was wrong.
 * - Properties (fast-check; SEED=… replays a run): random valid frames round-trip
 *   exactly, plain and deflated; random bytes and mutations of valid encodings give a
 *   frame or a LinkError, nothing else, and a frame that decodes is one the encoder
 *   accepts and that round-trips.
 * - Limits: the size limit is checked before decoding, a deflate bomb stops at the
 *   limit, and the wire overhead of 256 × 128-byte messages stays at or under 15 %.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { Encoder } from 'cbor-x';
import fc from 'fast-check';
import { LINK_BATCH_MSGS_MAX } from '../../../core/link/limits.ts';
import {
  LINK_CODE_BYTES_MAX,
  LINK_FRAME_BYTES_MAX,
  LINK_HEARTBEAT_MS_MAX,
  LINK_INCARNATION_BYTES_MAX,
  LINK_MESSAGE_BYTES_MAX,
  LINK_NAME_BYTES_MAX,
  LINK_SUBJECT_BYTES_MAX,
  LINK_TEXT_BYTES_MAX,
  LINK_TIMESTAMP_NS_MAX,
  LINK_TOKEN_BYTES_MAX,
  LINK_VERSION_MAX,
  LINK_VERSIONS_MAX,
  LinkEnvelope,
  decodeHubFrame,
  decodeLeafFrame,
  encodeFrame,
} from '../../../core/link/codec.ts';
import { LinkError, LinkErrorCode } from '../../../core/link/errors.ts';
import type { BatchFrame, HubFrame, LeafFrame, LinkFrame, LinkMessage, StreamKey } from '../../../core/link/frames.ts';
import { AssertionError } from '../../../core/util/assert.ts';
import { fastCheckParameters } from '../subjects/fast-check-parameters.ts';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const KEY: StreamKey = { stream: 'sensors', incarnation: '5f0c3e0a9d2b4c1e8f7a6b5c4d3e2f10' };
const NOW_NS = 1_764_241_200_123_456_000n;

/**
 * Frames as plain data: plain-prototype objects (fast-check's records have none) and byte
 * strings copied into plain Uint8Arrays (decoded ones are Buffer views).
 */
function normalize(frame: LinkFrame): unknown {
  if (frame.t !== 'batch') return { ...frame };
  return {
    ...frame,
    msgs: frame.msgs.map((msg) => ({
      ...msg,
      headers: msg.headers === undefined ? undefined : new Uint8Array(msg.headers),
      data: new Uint8Array(msg.data),
    })),
  };
}

/** The decoders that accept frames of this sender's kind: hello only from a leaf, welcome only from the hub. */
function decodersFor(frame: LinkFrame): ((bytes: Uint8Array) => LinkFrame)[] {
  if (frame.t === 'hello') return [decodeLeafFrame];
  if (frame.t === 'welcome') return [decodeHubFrame];
  return [decodeLeafFrame, decodeHubFrame];
}

function assertRoundTrip(frame: LinkFrame): void {
  for (const compress of [false, true]) {
    const bytes = encodeFrame(frame, { compress });
    for (const decode of decodersFor(frame)) {
      assert.deepStrictEqual(normalize(decode(bytes)), normalize(frame));
    }
  }
}

function assertLinkError(error: unknown): asserts error is LinkError {
  if (!(error instanceof LinkError)) throw error;
  assert.equal(error.name, 'LinkError');
  assert.equal(error.code, LinkErrorCode.frame);
  assert.equal(error.code, 'ERR_LINK_FRAME');
}

function linkErrorOf(action: () => unknown): LinkError {
  try {
    action();
  } catch (error) {
    assertLinkError(error);
    return error;
  }
  assert.fail('expected a LinkError');
}

/** A cbor-x encoder with the codec's options, to write hand-made (often invalid) wire frames. */
const rawEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });

function rawMessage(value: unknown, envelope: number = LinkEnvelope.plain): Buffer {
  const body = rawEncoder.encode(value);
  return Buffer.concat([Buffer.of(envelope), envelope === LinkEnvelope.deflateRaw ? deflateRawSync(body) : body]);
}

function message(seq: number, overrides: Partial<LinkMessage> = {}): LinkMessage {
  return {
    seq,
    subject: 'sensors.temp.room12',
    headers: undefined,
    data: Buffer.from(`{"temp_c":21.${seq % 100}}`),
    timestampNs: NOW_NS + BigInt(Math.floor(seq) % 1_000_000) * 1_000_000n,
    ...overrides,
  };
}

function batch(msgs: readonly LinkMessage[], id = 7): BatchFrame {
  return { t: 'batch', ...KEY, id, msgs };
}

/** A valid wire batch (columns) to break one field at a time. */
function wireBatch(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    t: 'batch',
    ...KEY,
    id: 1,
    seq: 10,
    subj: ['a.b', 'c.d'],
    si: [0, 1],
    ts: NOW_NS,
    td: [1000],
    dl: [1, 2],
    data: Buffer.from('xyz'),
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------

describe('codec: every frame type round-trips', () => {
  it('hello, with and without a token, at its limits', () => {
    assertRoundTrip({ t: 'hello', versions: [1], leaf: 'pi-17', token: 's3cret', compression: true, heartbeatMs: 15_000, windowBytes: 1 << 20 });
    assertRoundTrip({ t: 'hello', versions: [1], leaf: 'pi-17', token: undefined, compression: false, heartbeatMs: 1, windowBytes: 0 });
    assertRoundTrip({
      t: 'hello',
      versions: Array.from({ length: LINK_VERSIONS_MAX }, (_, i) => LINK_VERSION_MAX - i),
      leaf: 'l'.repeat(LINK_NAME_BYTES_MAX),
      token: 't'.repeat(LINK_TOKEN_BYTES_MAX),
      compression: true,
      heartbeatMs: LINK_HEARTBEAT_MS_MAX,
      windowBytes: MAX_SAFE,
    });
    // A name's limit is in UTF-8 bytes: 127 × 'é' (2 bytes each) = 254 bytes.
    assertRoundTrip({ t: 'hello', versions: [2, 1], leaf: 'é'.repeat(127), token: 'ключ', compression: false, heartbeatMs: 65_536, windowBytes: 2 ** 32 });
  });

  it('welcome', () => {
    assertRoundTrip({ t: 'welcome', version: 1, hub: 'hub-eu-1', compression: false, heartbeatMs: 30_000, windowBytes: 8 << 20 });
    assertRoundTrip({ t: 'welcome', version: LINK_VERSION_MAX, hub: 'h', compression: true, heartbeatMs: LINK_HEARTBEAT_MS_MAX, windowBytes: MAX_SAFE });
  });

  it('error, connection-level and per stream', () => {
    assertRoundTrip({ t: 'error', code: 'auth', text: 'unknown leaf or bad token', stream: undefined });
    assertRoundTrip({ t: 'error', code: 'stream', text: '', stream: 'ORDERS' });
    assertRoundTrip({ t: 'error', code: 'c'.repeat(LINK_CODE_BYTES_MAX), text: 'x'.repeat(LINK_TEXT_BYTES_MAX), stream: 's'.repeat(LINK_NAME_BYTES_MAX) });
    assertRoundTrip({ t: 'error', code: 'protocol', text: 'line one\nline two\t\u0000 ünïcödé 😀', stream: undefined });
  });

  it('offer, gap, cursor, window and ping at their extremes', () => {
    assertRoundTrip({ t: 'offer', ...KEY, firstSeq: 0, lastSeq: 0 });
    assertRoundTrip({ t: 'offer', ...KEY, firstSeq: MAX_SAFE, lastSeq: MAX_SAFE - 1 }); // empty: first > last
    assertRoundTrip({ t: 'offer', stream: 'S', incarnation: 'f'.repeat(LINK_INCARNATION_BYTES_MAX), firstSeq: 2 ** 32, lastSeq: 2 ** 32 - 1 });
    assertRoundTrip({ t: 'gap', ...KEY, from: 1, to: 1, reason: 'limits' });
    assertRoundTrip({ t: 'gap', ...KEY, from: 1, to: MAX_SAFE, reason: 'purged' });
    assertRoundTrip({ t: 'cursor', ...KEY, seq: 0, batch: undefined });
    assertRoundTrip({ t: 'cursor', ...KEY, seq: MAX_SAFE, batch: 0 });
    assertRoundTrip({ t: 'cursor', ...KEY, seq: 12, batch: MAX_SAFE });
    assertRoundTrip({ t: 'window', windowBytes: 0 });
    assertRoundTrip({ t: 'window', windowBytes: MAX_SAFE });
    assertRoundTrip({ t: 'ping' });
  });

  it('batch: one message, consecutive messages, many subjects', () => {
    assertRoundTrip(batch([message(1)]));
    assertRoundTrip(batch([message(MAX_SAFE)], MAX_SAFE));
    assertRoundTrip(batch(Array.from({ length: 100 }, (_, i) => message(1000 + i))));
    // More than 23 subjects: indexes take two bytes; every message its own subject.
    assertRoundTrip(batch(Array.from({ length: 300 }, (_, i) => message(1 + i, { subject: `sensors.temp.room${i}` }))));
    // Subjects come back in message order whatever the dictionary order.
    assertRoundTrip(batch(['b', 'a', 'b', 'c', 'a', 'a'].map((subject, i) => message(5 + i, { subject }))));
  });

  it('batch: sequences need not be consecutive (the state machine checks that, not the codec)', () => {
    assertRoundTrip(batch([message(5), message(4), message(9), message(9), message(1)]));
    assertRoundTrip(batch([message(1), message(MAX_SAFE), message(1), message(2), message(2 ** 32 + 3)]));
  });

  it('batch: timestamps round-trip as bigint over 0 … 2^64-1, in any order', () => {
    const extremes = [0n, LINK_TIMESTAMP_NS_MAX, 0n, 1n, LINK_TIMESTAMP_NS_MAX - 1n, NOW_NS, NOW_NS, NOW_NS - 1n, NOW_NS + 2n ** 32n];
    const frame = batch(extremes.map((timestampNs, i) => message(1 + i, { timestampNs })));
    assertRoundTrip(frame);
    const decoded = decodeLeafFrame(encodeFrame(frame)) as BatchFrame;
    for (const msg of decoded.msgs) assert.equal(typeof msg.timestampNs, 'bigint');
    assertRoundTrip(batch([message(1, { timestampNs: LINK_TIMESTAMP_NS_MAX })]));
    assertRoundTrip(batch([message(1, { timestampNs: 0n })]));
  });

  it('batch: headers undefined, empty and present stay distinct; empty payloads', () => {
    const empty = new Uint8Array(0);
    const block = Buffer.from('NATS/1.0\r\nNats-Msg-Id: 42\r\n\r\n');
    assertRoundTrip(batch([message(1, { headers: empty })]));
    assertRoundTrip(batch([message(1), message(2, { headers: empty }), message(3, { headers: block }), message(4)]));
    assertRoundTrip(batch([message(1), message(2), message(3, { headers: block })])); // the first headers come late
    assertRoundTrip(batch([message(1, { data: empty }), message(2, { data: new Uint8Array([0, 255]) })]));
    const decoded = decodeHubFrame(encodeFrame(batch([message(1), message(2, { headers: empty })]))) as BatchFrame;
    assert.equal(decoded.msgs[0]!.headers, undefined);
    assert.ok(decoded.msgs[1]!.headers instanceof Uint8Array);
    assert.equal(decoded.msgs[1]!.headers.length, 0);
  });

  it('batch: limits exactly at their maximum', () => {
    const tiny = new Uint8Array([1]);
    assertRoundTrip(batch(Array.from({ length: LINK_BATCH_MSGS_MAX }, (_, i) => message(1 + i, { data: tiny }))));
    // Subjects are latin1 strings: any character up to 0xff but whitespace.
    const latin1 = Array.from({ length: 256 }, (_, code) => String.fromCharCode(code))
      .filter((char) => !' \t\n\f\r'.includes(char))
      .join('');
    assertRoundTrip(batch([message(1, { subject: 's'.repeat(LINK_SUBJECT_BYTES_MAX) }), message(2, { subject: latin1 })]));
  });

  it('decoded payloads are views into the received bytes, not copies', () => {
    const bytes = encodeFrame(batch([message(1), message(2)]));
    const decoded = decodeLeafFrame(bytes) as BatchFrame;
    for (const msg of decoded.msgs) assert.equal(msg.data.buffer, bytes.buffer);
  });

  it('hello is only decoded from a leaf, welcome only from the hub', () => {
    const hello = encodeFrame({ t: 'hello', versions: [1], leaf: 'pi', token: undefined, compression: false, heartbeatMs: 1000, windowBytes: 1 });
    const welcome = encodeFrame({ t: 'welcome', version: 1, hub: 'hub', compression: false, heartbeatMs: 1000, windowBytes: 1 });
    assert.match(linkErrorOf(() => decodeHubFrame(hello)).message, /'hello' frame is only sent by a leaf/);
    assert.match(linkErrorOf(() => decodeLeafFrame(welcome)).message, /'welcome' frame is only sent by the hub/);
    const leafFrame: LeafFrame = decodeLeafFrame(hello);
    const hubFrame: HubFrame = decodeHubFrame(welcome);
    assert.equal(leafFrame.t, 'hello');
    assert.equal(hubFrame.t, 'welcome');
  });
});

describe('codec: envelope and compression', () => {
  it('compress: true deflates a body that shrinks and sends the rest plain', () => {
    const compressible = batch(Array.from({ length: 64 }, (_, i) => message(1 + i)));
    const deflated = encodeFrame(compressible, { compress: true });
    const plain = encodeFrame(compressible, { compress: false });
    assert.equal(deflated[0], LinkEnvelope.deflateRaw);
    assert.equal(plain[0], LinkEnvelope.plain);
    assert.ok(deflated.length < plain.length / 2, `${deflated.length} vs ${plain.length}`);
    assert.equal(encodeFrame({ t: 'ping' }, { compress: true })[0], LinkEnvelope.plain);
    assert.equal(encodeFrame({ t: 'ping' })[0], LinkEnvelope.plain);
  });

  it('either side reads either envelope, whatever it asked for', () => {
    const frame = batch([message(1), message(2)]);
    assert.deepStrictEqual(normalize(decodeHubFrame(rawMessage({ t: 'ping' }, LinkEnvelope.deflateRaw))), { t: 'ping' });
    const body = encodeFrame(frame).subarray(1);
    const deflated = Buffer.concat([Buffer.of(LinkEnvelope.deflateRaw), deflateRawSync(body)]);
    assert.deepStrictEqual(normalize(decodeLeafFrame(deflated)), normalize(frame));
  });

  it('rejects an unknown envelope, a message without a body, and bytes that do not inflate', () => {
    const body = encodeFrame({ t: 'ping' }).subarray(1);
    assert.match(linkErrorOf(() => decodeLeafFrame(Buffer.concat([Buffer.of(2), body]))).message, /unknown envelope byte 2/);
    assert.match(linkErrorOf(() => decodeLeafFrame(new Uint8Array(0))).message, /too short/);
    assert.match(linkErrorOf(() => decodeLeafFrame(Buffer.of(LinkEnvelope.plain))).message, /too short/);
    assert.match(linkErrorOf(() => decodeLeafFrame(Buffer.of(LinkEnvelope.deflateRaw, 0xff, 0xff))).message, /does not inflate/);
    assert.match(linkErrorOf(() => decodeLeafFrame(Buffer.of(LinkEnvelope.deflateRaw, 0x03, 0x00))).message, /not valid CBOR/); // inflates to nothing
    assert.match(linkErrorOf(() => decodeLeafFrame('ping' as unknown as Uint8Array)).message, /must be bytes/);
  });
});

describe('codec: size limits', () => {
  /** A one-message batch whose CBOR body is exactly `bodyBytes` long (payloads ≥ 64 KiB have a 5-byte header). */
  function batchWithBodyBytes(bodyBytes: number, fill = 0x61): BatchFrame {
    const probeDataBytes = 100_000;
    const probe = batch([message(1, { data: Buffer.alloc(probeDataBytes) })]);
    const fixedBytes = encodeFrame(probe).length - 1 - probeDataBytes;
    return batch([message(1, { data: Buffer.alloc(bodyBytes - fixedBytes, fill) })]);
  }

  it('a body of exactly LINK_FRAME_BYTES_MAX encodes and decodes, one byte more is refused on both sides', () => {
    const atLimit = encodeFrame(batchWithBodyBytes(LINK_FRAME_BYTES_MAX));
    assert.equal(atLimit.length, LINK_MESSAGE_BYTES_MAX);
    assert.equal((decodeLeafFrame(atLimit) as BatchFrame).msgs.length, 1);

    const overLimit = batchWithBodyBytes(LINK_FRAME_BYTES_MAX + 1);
    assert.match(linkErrorOf(() => encodeFrame(overLimit)).message, /exceeds LINK_FRAME_BYTES_MAX/);
    assert.match(linkErrorOf(() => encodeFrame(overLimit, { compress: true })).message, /exceeds LINK_FRAME_BYTES_MAX/);
  });

  it('a message over LINK_MESSAGE_BYTES_MAX is rejected by its length, before decoding', () => {
    // A valid ping frame followed by padding: decoding would say "end of buffer not reached".
    const ping = encodeFrame({ t: 'ping' });
    const oversized = Buffer.alloc(LINK_MESSAGE_BYTES_MAX + 1);
    oversized.set(ping);
    const error = linkErrorOf(() => decodeHubFrame(oversized));
    assert.match(error.message, /exceeds LINK_MESSAGE_BYTES_MAX/);
    assert.equal(error.cause, undefined);
    // Deflated ones too: the compressed size is checked before inflating.
    oversized[0] = LinkEnvelope.deflateRaw;
    assert.match(linkErrorOf(() => decodeHubFrame(oversized)).message, /exceeds LINK_MESSAGE_BYTES_MAX/);
  });

  it('a deflate bomb stops at LINK_FRAME_BYTES_MAX', () => {
    // 64 MiB of zeros deflate to ~64 KiB; inflating stops at the 8 MiB limit.
    const bomb = Buffer.concat([Buffer.of(LinkEnvelope.deflateRaw), deflateRawSync(Buffer.alloc(64 * 1024 * 1024))]);
    assert.ok(bomb.length < 128 * 1024);
    const startMs = performance.now();
    assert.match(linkErrorOf(() => decodeLeafFrame(bomb)).message, /inflates to more than LINK_FRAME_BYTES_MAX/);
    assert.ok(performance.now() - startMs < 5000);
    // A real frame one byte over the limit, compressed: refused after inflating at most the limit.
    const body = rawEncoder.encode(batchWithBodyWire(LINK_FRAME_BYTES_MAX + 1));
    assert.equal(body.length, LINK_FRAME_BYTES_MAX + 1);
    const overInflated = Buffer.concat([Buffer.of(LinkEnvelope.deflateRaw), deflateRawSync(body)]);
    assert.match(linkErrorOf(() => decodeLeafFrame(overInflated)).message, /inflates to more than/);
    // And exactly at the limit it decodes.
    const atLimit = Buffer.concat([Buffer.of(LinkEnvelope.deflateRaw), deflateRawSync(rawEncoder.encode(batchWithBodyWire(LINK_FRAME_BYTES_MAX)))]);
    assert.equal(decodeLeafFrame(atLimit).t, 'batch');
  });

  /** A wire batch of one zero-filled payload whose CBOR body is `bodyBytes` long. */
  function batchWithBodyWire(bodyBytes: number): Record<string, unknown> {
    const probe = rawEncoder.encode(wireBatch({ subj: ['a'], si: undefined, td: [], dl: [100_000], data: Buffer.alloc(100_000) }));
    const fixedBytes = probe.length - 100_000;
    return wireBatch({ subj: ['a'], si: undefined, td: [], dl: [bodyBytes - fixedBytes], data: Buffer.alloc(bodyBytes - fixedBytes) });
  }
});

describe('codec: wire overhead', () => {
  /** 256 messages of 128 bytes on 8 subjects like `sensors.temp.room12`, ~1 ms apart with µs jitter, no headers. */
  function sensorBatch(count: number): BatchFrame {
    const msgs: LinkMessage[] = [];
    let timestampNs = NOW_NS;
    for (let i = 0; i < count; i++) {
      const data = Buffer.alloc(128);
      for (let j = 0; j < data.length; j++) data[j] = (i * 31 + j * 17) & 0xff;
      msgs.push({ seq: 1_000_000 + i, subject: `sensors.temp.room${10 + (i % 8)}`, headers: undefined, data, timestampNs });
      timestampNs += 1_000_000n + BigInt((i * 7919) % 1000) * 1000n;
    }
    return batch(msgs, 123_456);
  }

  it('256 × 128-byte messages cost at most 15 % over their payload bytes, compression off', () => {
    const frame = sensorBatch(256);
    const payloadBytes = frame.msgs.reduce((sum, msg) => sum + msg.data.length, 0);
    const encodedBytes = encodeFrame(frame, { compress: false }).length;
    const overhead = (encodedBytes - payloadBytes) / payloadBytes;
    assert.ok(overhead <= 0.15, `overhead ${(overhead * 100).toFixed(2)} % (${encodedBytes} bytes for ${payloadBytes} payload bytes)`);
  });
});

describe('codec: validation', () => {
  /** Each case: a hand-made wire frame, the decoder, and what the error must say. */
  const invalid: { name: string; bytes: Buffer; decode?: (bytes: Uint8Array) => LinkFrame; error: RegExp }[] = [
    { name: 'not CBOR', bytes: Buffer.of(0, 0xff), error: /not valid CBOR/ },
    { name: 'truncated CBOR', bytes: rawMessage({ t: 'ping' }).subarray(0, 4), error: /not valid CBOR/ },
    { name: 'trailing bytes', bytes: Buffer.concat([rawMessage({ t: 'ping' }), Buffer.of(0)]), error: /not valid CBOR/ },
    { name: 'an array', bytes: rawMessage(['ping']), error: /must be a CBOR map, got an array of 1/ },
    { name: 'a string', bytes: rawMessage('ping'), error: /must be a CBOR map, got "ping"/ },
    { name: 'a Map (tag 259)', bytes: Buffer.concat([Buffer.of(0, 0xd9, 0x01, 0x03), rawEncoder.encode({ t: 'ping' })]), error: /must be a CBOR map, got a Map/ },
    { name: 'no t', bytes: rawMessage({ type: 'ping' }), error: /frame field t: expected a frame type string, got nothing/ },
    { name: 't a number', bytes: rawMessage({ t: 5 }), error: /frame field t: expected a frame type string, got 5/ },
    { name: 'unknown t', bytes: rawMessage({ t: 'pong' }), error: /unknown frame type "pong"/ },
    { name: 'hello without versions', bytes: rawMessage({ t: 'hello', leaf: 'pi', compression: false, heartbeatMs: 1, windowBytes: 1 }), error: /hello.versions/ },
    ...[[], [0], [1.5], ['1'], Array.from({ length: LINK_VERSIONS_MAX + 1 }, () => 1), [LINK_VERSION_MAX + 1]].map((versions) => ({
      name: `hello.versions ${JSON.stringify(versions).slice(0, 20)}`,
      bytes: rawMessage({ t: 'hello', versions, leaf: 'pi', compression: false, heartbeatMs: 1, windowBytes: 1 }),
      error: /hello.versions/,
    })),
    ...['', 'a b', 'tab\there', 'nul\u0000', 'del\u007f', 'x'.repeat(LINK_NAME_BYTES_MAX + 1), 'é'.repeat(128), 7].map((leaf) => ({
      name: `hello.leaf ${JSON.stringify(leaf).slice(0, 20)}`,
      bytes: rawMessage({ t: 'hello', versions: [1], leaf, compression: false, heartbeatMs: 1, windowBytes: 1 }),
      error: /hello.leaf: expected a name/,
    })),
    ...['', 't'.repeat(LINK_TOKEN_BYTES_MAX + 1), 42].map((token) => ({
      name: `hello.token ${JSON.stringify(token).slice(0, 20)}`,
      bytes: rawMessage({ t: 'hello', versions: [1], leaf: 'pi', token, compression: false, heartbeatMs: 1, windowBytes: 1 }),
      error: /hello.token/,
    })),
    { name: 'hello.compression 1', bytes: rawMessage({ t: 'hello', versions: [1], leaf: 'pi', compression: 1, heartbeatMs: 1, windowBytes: 1 }), error: /hello.compression: expected a boolean/ },
    ...[0, -1, LINK_HEARTBEAT_MS_MAX + 1, 1.5, '1000'].map((heartbeatMs) => ({
      name: `hello.heartbeatMs ${heartbeatMs}`,
      bytes: rawMessage({ t: 'hello', versions: [1], leaf: 'pi', compression: true, heartbeatMs, windowBytes: 1 }),
      error: /hello.heartbeatMs: expected an integer in 1 … 2147483647/,
    })),
    ...[-1, 0.5, 2 ** 53, 2n ** 53n, null].map((windowBytes) => ({
      name: `hello.windowBytes ${String(windowBytes)}`,
      bytes: rawMessage({ t: 'hello', versions: [1], leaf: 'pi', compression: true, heartbeatMs: 1, windowBytes }),
      error: /hello.windowBytes/,
    })),
    ...[0, LINK_VERSION_MAX + 1].map((version) => ({
      name: `welcome.version ${version}`,
      bytes: rawMessage({ t: 'welcome', version, hub: 'h', compression: true, heartbeatMs: 1, windowBytes: 1 }),
      decode: decodeHubFrame,
      error: /welcome.version/,
    })),
    { name: 'welcome.hub missing', bytes: rawMessage({ t: 'welcome', version: 1, compression: true, heartbeatMs: 1, windowBytes: 1 }), decode: decodeHubFrame, error: /welcome.hub/ },
    { name: 'error.code with a space', bytes: rawMessage({ t: 'error', code: 'bad code', text: '' }), error: /error.code: expected a code/ },
    { name: 'error.code too long', bytes: rawMessage({ t: 'error', code: 'c'.repeat(LINK_CODE_BYTES_MAX + 1), text: '' }), error: /error.code/ },
    { name: 'error.text missing', bytes: rawMessage({ t: 'error', code: 'auth' }), error: /error.text/ },
    { name: 'error.text too long', bytes: rawMessage({ t: 'error', code: 'auth', text: 'x'.repeat(LINK_TEXT_BYTES_MAX + 1) }), error: /error.text/ },
    { name: 'error.stream empty', bytes: rawMessage({ t: 'error', code: 'stream', text: '', stream: '' }), error: /error.stream/ },
    ...['', 'ABCDEF', 'xyz', '0'.repeat(LINK_INCARNATION_BYTES_MAX + 1), 12].map((incarnation) => ({
      name: `offer.incarnation ${JSON.stringify(incarnation).slice(0, 20)}`,
      bytes: rawMessage({ t: 'offer', stream: 'S', incarnation, firstSeq: 1, lastSeq: 1 }),
      error: /offer.incarnation: expected 1 to 64 lowercase hex digits/,
    })),
    { name: 'offer.stream missing', bytes: rawMessage({ t: 'offer', incarnation: 'ab', firstSeq: 1, lastSeq: 1 }), error: /offer.stream/ },
    { name: 'offer.firstSeq -1', bytes: rawMessage({ t: 'offer', ...KEY, firstSeq: -1, lastSeq: 1 }), error: /offer.firstSeq/ },
    { name: 'offer.lastSeq 2^53', bytes: rawMessage({ t: 'offer', ...KEY, firstSeq: 1, lastSeq: 2n ** 53n }), error: /offer.lastSeq/ },
    { name: 'gap.from 0', bytes: rawMessage({ t: 'gap', ...KEY, from: 0, to: 1, reason: 'limits' }), error: /gap.from/ },
    { name: 'gap.to below from', bytes: rawMessage({ t: 'gap', ...KEY, from: 5, to: 4, reason: 'limits' }), error: /gap.to \(≥ from\): expected an integer in 5 …/ },
    { name: 'gap.reason empty', bytes: rawMessage({ t: 'gap', ...KEY, from: 1, to: 1, reason: '' }), error: /gap.reason/ },
    { name: 'cursor.seq 1.5', bytes: rawMessage({ t: 'cursor', ...KEY, seq: 1.5 }), error: /cursor.seq/ },
    { name: 'cursor.batch -1', bytes: rawMessage({ t: 'cursor', ...KEY, seq: 1, batch: -1 }), error: /cursor.batch/ },
    { name: 'window.windowBytes true', bytes: rawMessage({ t: 'window', windowBytes: true }), error: /window.windowBytes/ },
    // batch columns
    { name: 'batch.dl missing', bytes: rawMessage(wireBatch({ dl: undefined })), error: /batch.dl: expected an array of 1 to 1000 payload lengths, got nothing/ },
    { name: 'batch.dl empty (no empty batches)', bytes: rawMessage(wireBatch({ dl: [], data: Buffer.alloc(0), subj: ['a'], si: undefined, td: [] })), error: /batch.dl: expected an array of 1 to 1000/ },
    {
      name: 'batch.dl over LINK_BATCH_MSGS_MAX',
      bytes: rawMessage(wireBatch({ dl: Array.from({ length: LINK_BATCH_MSGS_MAX + 1 }, () => 0), data: Buffer.alloc(0), subj: ['a'], si: undefined })),
      error: /batch.dl: expected an array of 1 to 1000 payload lengths, got an array of 1001/,
    },
    { name: 'batch.dl entry a string', bytes: rawMessage(wireBatch({ dl: [1, '2'] })), error: /batch.dl\[1\]: expected a length of at most the 2 data bytes left, got "2"/ },
    { name: 'batch.dl entry negative', bytes: rawMessage(wireBatch({ dl: [-1, 4] })), error: /batch.dl\[0\]: expected a length of at most the 3 data bytes left, got -1/ },
    { name: 'batch.dl past the data', bytes: rawMessage(wireBatch({ dl: [1, 3] })), error: /batch.dl\[1\]: expected a length of at most the 2 data bytes left, got 3/ },
    { name: 'batch.dl short of the data', bytes: rawMessage(wireBatch({ dl: [1, 1] })), error: /batch.data: 3 bytes, but batch.dl adds up to 2/ },
    { name: 'batch.data missing', bytes: rawMessage(wireBatch({ data: undefined })), error: /batch.data: expected a byte string, got nothing/ },
    { name: 'batch.data an array', bytes: rawMessage(wireBatch({ data: [Buffer.from('x'), Buffer.from('yz')] })), error: /batch.data: expected a byte string, got an array of 2/ },
    { name: 'batch.seq 0', bytes: rawMessage(wireBatch({ seq: 0 })), error: /batch.seq/ },
    { name: 'batch.id -1', bytes: rawMessage(wireBatch({ id: -1 })), error: /batch.id/ },
    { name: 'batch.subj missing', bytes: rawMessage(wireBatch({ subj: undefined })), error: /batch.subj: expected an array of 1 to 2 subjects/ },
    { name: 'batch.subj longer than the batch', bytes: rawMessage(wireBatch({ subj: ['a', 'b', 'c'] })), error: /batch.subj/ },
    ...['', 'a b', 'a\r\nPUB x 1', 'tab\t', 'ff\f', 'ā.latin1.only', 's'.repeat(LINK_SUBJECT_BYTES_MAX + 1), 3].map((subject) => ({
      name: `batch.subj entry ${JSON.stringify(subject).slice(0, 20)}`,
      bytes: rawMessage(wireBatch({ subj: ['ok', subject] })),
      error: /batch.subj\[1\]: expected a subject/,
    })),
    { name: 'batch.si missing with two subjects', bytes: rawMessage(wireBatch({ si: undefined })), error: /batch.si: required when batch.subj has 2 subjects/ },
    { name: 'batch.si index out of range', bytes: rawMessage(wireBatch({ si: [0, 2] })), error: /batch.si\[1\]: expected an index below 2, got 2/ },
    { name: 'batch.si index negative', bytes: rawMessage(wireBatch({ si: [-1, 0] })), error: /batch.si\[0\]/ },
    { name: 'batch.si wrong length', bytes: rawMessage(wireBatch({ si: [0] })), error: /batch.si: expected nothing or an array of 2, got an array of 1/ },
    { name: 'batch.sd wrong length', bytes: rawMessage(wireBatch({ sd: [1, 1] })), error: /batch.sd: expected nothing or an array of 1/ },
    { name: 'batch.sd entry a float', bytes: rawMessage(wireBatch({ sd: [0.5] })), error: /batch.sd\[0\]: expected an integer/ },
    { name: 'batch.sd leads below 1', bytes: rawMessage(wireBatch({ sd: [-10] })), error: /batch message 1: seq 0 is not a positive safe integer/ },
    { name: 'batch consecutive past 2^53-1', bytes: rawMessage(wireBatch({ seq: MAX_SAFE })), error: /batch message 1: seq 9007199254740992 is not a positive safe integer/ },
    { name: 'batch.ts missing', bytes: rawMessage(wireBatch({ ts: undefined })), error: /batch.ts/ },
    { name: 'batch.ts negative', bytes: rawMessage(wireBatch({ ts: -1 })), error: /batch.ts: expected an integer in 0 … 2\^64-1, got -1/ },
    { name: 'batch.ts 2^64 (a bignum)', bytes: rawMessage(wireBatch({ ts: 2n ** 64n })), error: /batch.ts: expected an integer in 0 … 2\^64-1, got 18446744073709551616n/ },
    { name: 'batch.ts a float', bytes: rawMessage(wireBatch({ ts: 1.5 })), error: /batch.ts/ },
    { name: 'batch.td wrong length', bytes: rawMessage(wireBatch({ td: [] })), error: /batch.td: expected an array of 1 timestamp deltas, got an array of 0/ },
    { name: 'batch.td entry a string', bytes: rawMessage(wireBatch({ td: ['1'] })), error: /batch.td\[0\]: expected an integer, got "1"/ },
    { name: 'batch.td entry a float', bytes: rawMessage(wireBatch({ td: [0.25] })), error: /batch.td\[0\]/ },
    { name: 'batch.td leads past 2^64-1', bytes: rawMessage(wireBatch({ ts: LINK_TIMESTAMP_NS_MAX, td: [1] })), error: /batch message 1: timestamp 18446744073709551616 is outside/ },
    { name: 'batch.td leads below 0', bytes: rawMessage(wireBatch({ ts: 0n, td: [-1] })), error: /batch message 1: timestamp -1 is outside/ },
    { name: 'batch.hdr wrong length', bytes: rawMessage(wireBatch({ hdr: [null] })), error: /batch.hdr: expected nothing or an array of 2/ },
    { name: 'batch.hdr entry a number', bytes: rawMessage(wireBatch({ hdr: [null, 5] })), error: /batch.hdr\[1\]: expected a byte string or null, got 5/ },
    { name: 'batch.stream missing', bytes: rawMessage(wireBatch({ stream: undefined })), error: /batch.stream/ },
  ];

  for (const testCase of invalid) {
    it(`rejects ${testCase.name}`, () => {
      const decode = testCase.decode ?? decodeLeafFrame;
      assert.match(linkErrorOf(() => decode(testCase.bytes)).message, testCase.error);
    });
  }

  it('ignores unknown fields (forward compatibility)', () => {
    assert.deepStrictEqual(decodeLeafFrame(rawMessage({ t: 'ping', later: { nested: [1, 2] } })), { t: 'ping' });
    const decoded = decodeHubFrame(rawMessage(wireBatch({ future: 'column', zz: [1, 2, 3] }))) as BatchFrame;
    assert.deepStrictEqual(
      decoded.msgs.map((msg) => [msg.seq, msg.subject, msg.timestampNs]),
      [
        [10, 'a.b', NOW_NS],
        [11, 'c.d', NOW_NS + 1000n],
      ],
    );
  });

  it('reads null and a missing key alike for optional fields, and any CBOR integer width', () => {
    assert.deepStrictEqual(decodeHubFrame(rawMessage({ t: 'cursor', ...KEY, seq: 3n, batch: null })), { t: 'cursor', ...KEY, seq: 3, batch: undefined });
    assert.deepStrictEqual(decodeHubFrame(rawMessage({ t: 'error', code: 'x', text: 't', stream: null })), {
      t: 'error',
      code: 'x',
      text: 't',
      stream: undefined,
    });
    const decoded = decodeLeafFrame(rawMessage(wireBatch({ ts: 0, td: [5n], sd: [2n], hdr: [null, undefined] }))) as BatchFrame;
    assert.deepStrictEqual(
      decoded.msgs.map((msg) => [msg.seq, msg.timestampNs, msg.headers]),
      [
        [10, 0n, undefined],
        [12, 5n, undefined],
      ],
    );
  });

  it('a broken tag-259 map leaves the decoder reading maps as objects', () => {
    // cbor-x flips its mapsAsObjects option while it reads a tag-259 map; a failure inside must not leave it flipped.
    assertLinkError(captureError(() => decodeLeafFrame(Buffer.of(LinkEnvelope.plain, 0xd9, 0x01, 0x03, 0xa1, 0x61))));
    assert.deepStrictEqual(decodeLeafFrame(encodeFrame({ t: 'ping' })), { t: 'ping' });
  });

  it('a __proto__ key does not reach the prototype', () => {
    const entries = ['t', 'ping', '__proto__', { polluted: true }].map((value) => rawEncoder.encode(value));
    const bytes = Buffer.concat([Buffer.of(LinkEnvelope.plain, 0xa2), ...entries]);
    const frame = decodeLeafFrame(bytes);
    assert.deepStrictEqual(frame, { t: 'ping' });
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });

  it('the encoder asserts the schema: a broken frame is a programmer error', () => {
    const broken: LinkFrame[] = [
      batch([]),
      batch(Array.from({ length: LINK_BATCH_MSGS_MAX + 1 }, (_, i) => message(1 + i))),
      batch([message(0)]),
      batch([message(1.5)]),
      batch([message(1, { subject: 'has space' })]),
      batch([message(1, { subject: '' })]),
      batch([message(1, { timestampNs: -1n })]),
      batch([message(1, { timestampNs: LINK_TIMESTAMP_NS_MAX + 1n })]),
      batch([message(1, { timestampNs: 5 as unknown as bigint })]),
      batch([message(1, { data: 'text' as unknown as Uint8Array })]),
      batch([message(1), message(2, { headers: 'h' as unknown as Uint8Array })]),
      { t: 'batch', stream: 'S', incarnation: 'NOT-HEX', id: 1, msgs: [message(1)] },
      { t: 'hello', versions: [], leaf: 'pi', token: undefined, compression: false, heartbeatMs: 1, windowBytes: 1 },
      { t: 'hello', versions: [1], leaf: 'pi', token: '', compression: false, heartbeatMs: 1, windowBytes: 1 },
      { t: 'welcome', version: 1, hub: 'h', compression: false, heartbeatMs: 0, windowBytes: 1 },
      { t: 'gap', ...KEY, from: 5, to: 4, reason: 'limits' },
      { t: 'cursor', ...KEY, seq: -1, batch: undefined },
      { t: 'window', windowBytes: 2 ** 53 },
      { t: 'error', code: 'a b', text: '', stream: undefined },
      { t: 'nope' } as unknown as LinkFrame,
    ];
    for (const frame of broken) {
      const text = JSON.stringify(frame, (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
      assert.throws(() => encodeFrame(frame), AssertionError, text.slice(0, 400));
    }
  });
});

// ---- properties ------------------------------------------------------------------------

const WHITESPACE = [0x20, 0x09, 0x0a, 0x0c, 0x0d];
const nameArbitrary = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
  fc
    .string({ unit: 'binary', minLength: 1, maxLength: 24 })
    .filter((text) => [...text].every((char) => char.codePointAt(0)! > 0x20 && char !== '\u007f') && Buffer.byteLength(text) <= LINK_NAME_BYTES_MAX),
);
const codeArbitrary = fc.constantFrom('auth', 'version', 'protocol', 'stream', 'limits', 'purged', 'deleted', 'x-future');
const incarnationArbitrary = fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.stringMatching(/^[0-9a-f]{1,64}$/));
const latin1CharArbitrary = fc
  .integer({ min: 0, max: 0xff })
  .filter((code) => !WHITESPACE.includes(code))
  .map((code) => String.fromCharCode(code));
const subjectArbitrary = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('sensors.temp.room12', 'sensors.temp.room13', 'a', '$JS.EVENT.x', 'foo..bar', 'orders.*') },
  { weight: 1, arbitrary: fc.string({ unit: latin1CharArbitrary, minLength: 1, maxLength: 40 }) },
);
const uintArbitrary = (min: number) =>
  fc.oneof(
    fc.constantFrom(min, min + 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, MAX_SAFE),
    fc.integer({ min, max: 1_000_000 }),
    fc.integer({ min, max: MAX_SAFE }),
  );
const timestampArbitrary = fc.oneof(fc.constantFrom(0n, 1n, LINK_TIMESTAMP_NS_MAX, NOW_NS), fc.bigInt({ min: 0n, max: LINK_TIMESTAMP_NS_MAX }));
const bytesArbitrary = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 100, maxLength: 300 }));
const streamKeyArbitrary = fc.record({ stream: nameArbitrary, incarnation: incarnationArbitrary });

const batchArbitrary: fc.Arbitrary<BatchFrame> = fc
  .record({
    key: streamKeyArbitrary,
    id: uintArbitrary(0),
    parts: fc.array(
      fc.record({
        subject: subjectArbitrary,
        headers: fc.option(bytesArbitrary, { nil: undefined }),
        data: bytesArbitrary,
        seq: uintArbitrary(1),
        timestampNs: timestampArbitrary,
        gapNs: fc.bigInt({ min: 0n, max: 10n ** 10n }),
      }),
      { minLength: 1, maxLength: 24 },
    ),
    isConsecutive: fc.boolean(),
    isIncreasingInTime: fc.boolean(),
    hasHeaders: fc.boolean(),
    firstSeq: uintArbitrary(1),
  })
  .map(({ key, id, parts, isConsecutive, isIncreasingInTime, hasHeaders, firstSeq }) => {
    const start = Math.min(firstSeq, MAX_SAFE - parts.length);
    let timestampNs = parts[0]!.timestampNs;
    const msgs = parts.map((part, i): LinkMessage => {
      if (i > 0 && isIncreasingInTime) timestampNs = timestampNs + part.gapNs > LINK_TIMESTAMP_NS_MAX ? timestampNs : timestampNs + part.gapNs;
      return {
        seq: isConsecutive ? start + i : part.seq,
        subject: part.subject,
        headers: hasHeaders ? part.headers : undefined,
        data: part.data,
        timestampNs: isIncreasingInTime ? timestampNs : part.timestampNs,
      };
    });
    return { t: 'batch', ...key, id, msgs };
  });

const frameArbitrary: fc.Arbitrary<LinkFrame> = fc.oneof(
  fc.record({
    t: fc.constant('hello' as const),
    versions: fc.array(fc.integer({ min: 1, max: LINK_VERSION_MAX }), { minLength: 1, maxLength: LINK_VERSIONS_MAX }),
    leaf: nameArbitrary,
    token: fc.option(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), { nil: undefined }),
    compression: fc.boolean(),
    heartbeatMs: fc.integer({ min: 1, max: LINK_HEARTBEAT_MS_MAX }),
    windowBytes: uintArbitrary(0),
  }),
  fc.record({
    t: fc.constant('welcome' as const),
    version: fc.integer({ min: 1, max: LINK_VERSION_MAX }),
    hub: nameArbitrary,
    compression: fc.boolean(),
    heartbeatMs: fc.integer({ min: 1, max: LINK_HEARTBEAT_MS_MAX }),
    windowBytes: uintArbitrary(0),
  }),
  fc.record({
    t: fc.constant('error' as const),
    code: codeArbitrary,
    text: fc.string({ unit: 'binary', maxLength: 60 }),
    stream: fc.option(nameArbitrary, { nil: undefined }),
  }),
  fc
    .record({ t: fc.constant('offer' as const), key: streamKeyArbitrary, firstSeq: uintArbitrary(0), lastSeq: uintArbitrary(0) })
    .map(({ key, ...rest }) => ({ ...rest, ...key })),
  { weight: 4, arbitrary: batchArbitrary },
  fc
    .record({ t: fc.constant('gap' as const), key: streamKeyArbitrary, from: uintArbitrary(1), length: uintArbitrary(0), reason: codeArbitrary })
    .map(({ key, from, length, ...rest }) => ({ ...rest, ...key, from, to: Math.min(MAX_SAFE, from + length) })),
  fc
    .record({ t: fc.constant('cursor' as const), key: streamKeyArbitrary, seq: uintArbitrary(0), batch: fc.option(uintArbitrary(0), { nil: undefined }) })
    .map(({ key, ...rest }) => ({ ...rest, ...key })),
  fc.record({ t: fc.constant('window' as const), windowBytes: uintArbitrary(0) }),
  fc.constant({ t: 'ping' as const }),
);

/** Decodes with both decoders: each gives a frame or a LinkError; a frame re-encodes and round-trips. */
function assertDecodesOrLinkError(bytes: Uint8Array): void {
  for (const decode of [decodeLeafFrame, decodeHubFrame]) {
    let frame: LinkFrame;
    try {
      frame = decode(bytes);
    } catch (error) {
      assertLinkError(error);
      continue;
    }
    // A frame that decodes is well-typed: the encoder's schema assertions accept it, and it round-trips.
    assert.deepStrictEqual(normalize(decode(encodeFrame(frame))), normalize(frame));
  }
}

type Mutation = { kind: 'flip' | 'truncate' | 'insert' | 'delete' | 'poke'; at: number; bit: number; bytes: Uint8Array };

/** CBOR-meaningful bytes: 64-bit heads, indefinite starts, breaks, tags, null/undefined, one-byte lengths. */
const CBOR_BYTES = [0x1b, 0x3b, 0x5b, 0x7b, 0x9b, 0xbb, 0x9f, 0xbf, 0xff, 0xd8, 0xd9, 0xc2, 0xf6, 0xf7, 0x00, 0x18];

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'truncate', 'insert', 'delete', 'poke'),
  at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  bit: fc.integer({ min: 0, max: 7 }),
  bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom(...CBOR_BYTES).map((byte) => Uint8Array.of(byte))),
});

function mutate(original: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(original);
  for (const mutation of mutations) {
    const at = Math.floor(mutation.at * bytes.length);
    if (mutation.kind === 'flip' && bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << mutation.bit);
    else if (mutation.kind === 'truncate') bytes = bytes.subarray(0, at);
    else if (mutation.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), mutation.bytes, bytes.subarray(at)]);
    else if (mutation.kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + mutation.bytes.length)]);
    else if (mutation.kind === 'poke' && bytes.length > 0) bytes[at] = mutation.bytes[0]!;
  }
  return bytes;
}

/**
 * Property run counts: the default keeps `npm test` fast; LINK_PROPERTY_RUNS=<n> runs every
 * codec property n times for a longer hunt. fast-check prints the seed of a failure;
 * SEED=<n> replays it.
 */
function propertyParameters<T>(defaultRuns: number): fc.Parameters<T> {
  const runs = process.env['LINK_PROPERTY_RUNS'];
  return fastCheckParameters({ numRuns: runs === undefined || runs === '' ? defaultRuns : Number(runs) });
}

/** The longest one decode of a small message may take: "never hangs" with a margin for a loaded machine. */
const DECODE_MS_MAX = 2000;

/** Decodes with both decoders, within DECODE_MS_MAX each: a frame that round-trips, or a LinkError. */
function assertDecodesOrLinkErrorQuickly(bytes: Uint8Array): void {
  const startMs = performance.now();
  assertDecodesOrLinkError(bytes);
  const elapsedMs = performance.now() - startMs;
  assert.ok(elapsedMs < DECODE_MS_MAX, `decoding ${bytes.length} bytes took ${elapsedMs.toFixed(0)} ms`);
}

/**
 * cbor-x encoders a peer might use: the codec's options, cbor-x's defaults (records,
 * tags for typed arrays, Dates, Sets, Maps, bundled strings) and structured clone
 * (shared references, cycles).
 */
const foreignEncoders = [
  rawEncoder,
  new Encoder(),
  new Encoder({ structuredClone: true }),
  new Encoder({ useRecords: true, pack: true, bundleStrings: true } as ConstructorParameters<typeof Encoder>[0]),
];

/** Every frame type name, for maps that claim to be a frame. */
const FRAME_TYPES = ['hello', 'welcome', 'error', 'offer', 'batch', 'gap', 'cursor', 'window', 'ping'];

/** A batch whose body deflates well, so `compress: true` really sends the deflate envelope. */
const compressibleBatchArbitrary: fc.Arbitrary<BatchFrame> = fc
  .record({ key: streamKeyArbitrary, count: fc.integer({ min: 1, max: 40 }), fill: fc.integer({ min: 0, max: 255 }), size: fc.integer({ min: 64, max: 200 }) })
  .map(({ key, count, fill, size }) => ({
    t: 'batch' as const,
    ...key,
    id: count,
    msgs: Array.from({ length: count }, (_unused, i) => message(i + 1, { subject: `s.${i % 3}`, data: Buffer.alloc(size, fill) })),
  }));

describe('codec: properties', () => {
  it('random valid frames round-trip exactly, plain and deflated', { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(frameArbitrary, fc.boolean(), (frame, compress) => {
        const bytes = encodeFrame(frame, { compress });
        for (const decode of decodersFor(frame)) assert.deepStrictEqual(normalize(decode(bytes)), normalize(frame));
      }),
      propertyParameters(1000),
    );
  });

  it('random bytes give a frame or a LinkError, nothing else', { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2, 255), fc.uint8Array({ maxLength: 400 }), (envelope, body) => {
        assertDecodesOrLinkError(Buffer.concat([Buffer.of(envelope), body]));
      }),
      propertyParameters(2000),
    );
  });

  it('mutated valid encodings (bit flips, truncations, insertions, deletions) give a frame or a LinkError', { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(
        frameArbitrary,
        fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('plain', 'deflated', 'body-then-deflate'),
        (frame, mutations, mode) => {
          if (mode === 'body-then-deflate') {
            // Mutate the CBOR, then deflate it, so the broken CBOR reaches the decoder through the inflate path.
            const body = mutate(encodeFrame(frame).subarray(1), mutations);
            assertDecodesOrLinkError(Buffer.concat([Buffer.of(LinkEnvelope.deflateRaw), deflateRawSync(body)]));
          } else {
            assertDecodesOrLinkError(mutate(encodeFrame(frame, { compress: mode === 'deflated' }), mutations));
          }
        },
      ),
      propertyParameters(2000),
    );
  });

  it('CBOR built from random values in frame shapes gives a frame or a LinkError', { timeout: 120_000 }, () => {
    // Valid-looking maps with random field values: reaches the field checks rather than the CBOR parser.
    const valueArbitrary = fc.oneof(
      fc.constantFrom(null, undefined, true, 0, -1, 1.5, 2 ** 53, 2n ** 64n - 1n, -(2n ** 64n), '', 'x y', 'ok'),
      fc.integer(),
      fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
      fc.string({ maxLength: 10 }),
      fc.uint8Array({ maxLength: 8 }).map((array) => Buffer.from(array)),
      fc.array(
        fc.oneof(fc.integer({ min: -3, max: 30 }), fc.string({ maxLength: 3 }), fc.constant(null), fc.uint8Array({ maxLength: 4 }).map((array) => Buffer.from(array))),
        { maxLength: 6 },
      ),
    );
    const keys = ['t', 'versions', 'leaf', 'hub', 'token', 'compression', 'heartbeatMs', 'windowBytes', 'version', 'code', 'text'];
    keys.push('stream', 'incarnation', 'firstSeq', 'lastSeq', 'id', 'seq', 'sd', 'subj', 'si', 'ts', 'td', 'hdr', 'dl', 'data', 'from', 'to', 'reason', 'batch');
    fc.assert(
      fc.property(
        frameArbitrary,
        fc.dictionary(fc.constantFrom(...keys), valueArbitrary, { maxKeys: 4 }),
        (frame, replacements) => {
          const wire = rawEncoder.decode(encodeFrame(frame).subarray(1)) as Record<string, unknown>;
          assertDecodesOrLinkError(rawMessage({ ...wire, ...replacements }));
        },
      ),
      propertyParameters(2000),
    );
  });

  it('any CBOR value (fc.anything through several cbor-x encoders) gives a frame or a LinkError, quickly', { timeout: 120_000 }, () => {
    // Goal: values the schema never imagined (tags, records, typed arrays, Maps, Sets,
    // Dates, shared references, huge or negative numbers) reach the decoder, bare or
    // inside a map that claims to be a frame.
    const valueArbitrary = fc.anything({
      maxDepth: 3,
      maxKeys: 6,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    });
    fc.assert(
      fc.property(
        valueArbitrary,
        fc.option(fc.constantFrom(...FRAME_TYPES), { nil: undefined }),
        fc.nat(foreignEncoders.length - 1),
        fc.constantFrom(LinkEnvelope.plain, LinkEnvelope.deflateRaw),
        (value, type, encoderIndex, envelope) => {
          const shaped = type === undefined ? value : typeof value === 'object' && value !== null ? { ...value, t: type } : { t: type, x: value };
          let body: Uint8Array;
          try {
            body = foreignEncoders[encoderIndex]!.encode(shaped);
          } catch {
            // cbor-x cannot encode every JS value (e.g. some boxed values); nothing to decode then.
            return;
          }
          const payload = envelope === LinkEnvelope.deflateRaw ? deflateRawSync(body) : body;
          assertDecodesOrLinkErrorQuickly(Buffer.concat([Buffer.of(envelope), payload]));
        },
      ),
      propertyParameters(1000),
    );
  });

  it('valid frames with one field (or a new one) set to any value give a frame or a LinkError, quickly', { timeout: 120_000 }, () => {
    // Reaches every field check with exotic values: the frame is otherwise valid.
    const fieldArbitrary = fc.constantFrom('t', 'versions', 'leaf', 'hub', 'token', 'compression', 'heartbeatMs', 'windowBytes', 'version', 'code', 'text', 'stream', 'incarnation', 'firstSeq', 'lastSeq', 'id', 'seq', 'sd', 'subj', 'si', 'ts', 'td', 'hdr', 'dl', 'data', 'from', 'to', 'reason', 'batch', '__proto__', 'x');
    const valueArbitrary = fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true });
    let decodedCount = 0;
    fc.assert(
      fc.property(frameArbitrary, fieldArbitrary, valueArbitrary, fc.nat(foreignEncoders.length - 1), (frame, field, value, encoderIndex) => {
        const wire = rawEncoder.decode(encodeFrame(frame).subarray(1)) as Record<string, unknown>;
        Object.defineProperty(wire, field, { value, enumerable: true, writable: true, configurable: true });
        let body: Uint8Array;
        try {
          body = foreignEncoders[encoderIndex]!.encode(wire);
        } catch {
          // Not encodable by this encoder: nothing to decode.
          return;
        }
        const bytes = Buffer.concat([Buffer.of(LinkEnvelope.plain), body]);
        assertDecodesOrLinkErrorQuickly(bytes);
        try {
          decodeLeafFrame(bytes);
          decodedCount++;
        } catch {
          // A LinkError, checked above.
        }
      }),
      propertyParameters(1000),
    );
    assert.ok(decodedCount > 0, 'some frames still decode (an unknown field, a value the schema accepts)');
  });

  it('mutated compressed batches give a frame or a LinkError, quickly', { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(compressibleBatchArbitrary, fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 }), (frame, mutations) => {
        const bytes = encodeFrame(frame, { compress: true });
        assert.equal(bytes[0], LinkEnvelope.deflateRaw, 'the batch was sent deflated');
        assertDecodesOrLinkErrorQuickly(mutate(bytes, mutations));
      }),
      propertyParameters(500),
    );
  });

  it('decoding is stateless: what came before (garbage, records, other frames) never changes a result', { timeout: 120_000 }, () => {
    // cbor-x record definitions (tag 57343) and bundled strings are per-message state in
    // cbor-x; a peer must not be able to leave any behind for the next message.
    const noiseArbitrary = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((body) => Buffer.concat([Buffer.of(0), body])),
      fc.anything({ maxDepth: 2 }).chain((value) =>
        fc.nat(foreignEncoders.length - 1).map((index) => {
          try {
            return Buffer.concat([Buffer.of(0), foreignEncoders[index]!.encode(value)]);
          } catch {
            // Not encodable by this encoder: an empty message is noise too.
            return Buffer.alloc(0);
          }
        }),
      ),
      frameArbitrary.map((frame) => Buffer.from(encodeFrame(frame))),
    );
    const outcomeOf = (bytes: Uint8Array): unknown => {
      try {
        return normalize(decodeLeafFrame(bytes));
      } catch (error) {
        assertLinkError(error);
        return error.message;
      }
    };
    fc.assert(
      fc.property(fc.oneof(frameArbitrary.map((frame) => Buffer.from(encodeFrame(frame))), noiseArbitrary), fc.array(noiseArbitrary, { maxLength: 4 }), (subject, noise) => {
        const before = outcomeOf(subject);
        for (const bytes of noise) outcomeOf(bytes);
        assert.deepStrictEqual(outcomeOf(subject), before);
      }),
      propertyParameters(500),
    );
  });

  it('deep nesting and huge declared lengths give a LinkError', () => {
    assertLinkError(captureError(() => decodeLeafFrame(Buffer.concat([Buffer.of(0), Buffer.alloc(200_000, 0x81)]))));
    assertLinkError(captureError(() => decodeLeafFrame(Buffer.concat([Buffer.of(0), Buffer.alloc(200_000, 0x9f)]))));
    // An array header declaring 2^32-1 entries, a byte string declaring 2^64-1 bytes.
    assertLinkError(captureError(() => decodeLeafFrame(Buffer.of(0, 0xa1, 0x61, 0x74, 0x9a, 0xff, 0xff, 0xff, 0xff))));
    assertLinkError(captureError(() => decodeLeafFrame(Buffer.of(0, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))));
  });
});

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return assert.fail('expected an error');
}
