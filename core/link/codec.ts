/**
 * The link codec: a {@link LinkFrame} ⇄ the bytes of one WebSocket binary message
 * (core/link/README.md "Wire format").
 *
 * Envelope. Byte 0 says how the rest (the body) is encoded: {@link LinkEnvelope}
 * `plain` (0) = CBOR, `deflateRaw` (1) = CBOR compressed with raw deflate (RFC 1951).
 * Either side can read either, so compression can be switched per link without
 * guessing; whether it was negotiated is the connection's business, not the codec's.
 *
 * Body. One CBOR map whose keys are the field names of frames.ts, `t` first. The one
 * exception is the batch: its messages travel in columns (first seq, seq deltas only
 * when not consecutive, a per-batch subject dictionary with one index per message,
 * first timestamp and timestamp deltas, headers only when some message has them, the
 * payload lengths, and all payloads back to back in one byte string), because
 * per-message maps with field names would cost more than the payload of a small
 * sensor message (README "Compact batch").
 *
 * cbor-x options, chosen deliberately (STYLE.md §2.9, §2.13):
 * - `useRecords: false`: no record extension and no shared structures. Records save
 *   bytes only by keeping per-connection state (structure ids) on both ends, which a
 *   reconnecting link would have to negotiate in `hello` and reset on every
 *   reconnect; the batch columns already remove the repeated keys records would
 *   save, so the simple, stateless choice costs nothing here. Encoder and decoder are
 *   therefore stateless and one module-level pair serves every link.
 * - `mapsAsObjects: true`: maps decode to plain objects (the frame shape); cbor-x
 *   renames a `__proto__` key, so a peer cannot pollute prototypes.
 * - `variableMapSize: true`: the shortest map header (preferred serialization).
 * - `tagUint8Array: false`: a Uint8Array is a plain CBOR byte string, not tag 64.
 * - `copyBuffers: false`: decoded byte strings are views into the received message
 *   (or the inflated body), not copies, and so are the messages' headers and data
 *   (Buffers; data a slice of the batch's payload byte string). A decoded frame keeps
 *   that whole buffer alive until its messages are dropped, and the caller must not
 *   reuse the buffer while it holds the frame (ws hands each message a fresh one).
 * - `int64AsNumber: false`: 64-bit CBOR integers decode as bigint, so `timestampNs`
 *   round-trips exactly over its whole range 0 … 2^64-1. Integers outside ±2^32 are
 *   written as bigint on purpose: cbor-x would write such a JS number as a float64.
 * - `useFloat32: 0`, `largeBigIntToFloat: false`, `pack: false`, `bundleStrings:
 *   false`, `structuredClone: false`: nothing clever, nothing lossy.
 *
 * Decoding is strict: any bytes give a well-typed frame or a {@link LinkError}
 * (ERR_LINK_FRAME), never another exception. Sizes are checked before anything is
 * decoded, inflating is bounded by {@link LINK_FRAME_BYTES_MAX}, and every field is
 * checked for type and range. Unknown map keys are ignored (forward compatibility: a
 * newer peer may add optional fields; a field that changes meaning needs a new
 * protocol version). Semantics across frames (consecutive sequences, cursors, which
 * frame may come when) are the state machine's business, not the codec's.
 *
 * Encoding trusts its caller: a frame that breaks the schema is a programmer error
 * (an assertion), but a frame whose body would exceed {@link LINK_FRAME_BYTES_MAX}
 * is a LinkError, because the sender cannot know the encoded size beforehand.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Decoder, Encoder, type Options } from 'cbor-x';
import { assert } from '../util/assert.ts';
import { LinkError, LinkErrorCode } from './errors.ts';
import { LINK_BATCH_MSGS_MAX } from './limits.ts';
import type {
  BatchFrame,
  CursorFrame,
  ErrorFrame,
  GapFrame,
  HelloFrame,
  HubFrame,
  LeafFrame,
  LinkFrame,
  LinkMessage,
  OfferFrame,
  StreamKey,
  WelcomeFrame,
} from './frames.ts';

// ---- limits -------------------------------------------------------------------------------

/** The most bytes of a frame's CBOR body, plain or after inflating (8 MiB). */
export const LINK_FRAME_BYTES_MAX = 8 * 1024 * 1024;
/** Bytes of the envelope in front of the body. */
export const LINK_ENVELOPE_BYTES = 1;
/** The most bytes of one WebSocket message on the link: the transports' ws `maxPayload`. */
export const LINK_MESSAGE_BYTES_MAX = LINK_FRAME_BYTES_MAX + LINK_ENVELOPE_BYTES;
/** The most UTF-8 bytes of a name: stream, leaf, hub (nats-server's JetStream name limit is 255). */
export const LINK_NAME_BYTES_MAX = 255;
/** The most hex digits of an incarnation id (ours are 32: 16 random bytes). */
export const LINK_INCARNATION_BYTES_MAX = 64;
/**
 * The most bytes of a message subject. Subjects are latin1 strings in canopy (one
 * character per NATS wire byte, as the client-protocol parser makes them), so this is
 * also their most characters. The default max_control_line is 4096.
 */
export const LINK_SUBJECT_BYTES_MAX = 64 * 1024;
/** The most UTF-8 bytes of a `hello` token. */
export const LINK_TOKEN_BYTES_MAX = 4096;
/** The most UTF-8 bytes of an error code or a gap reason. */
export const LINK_CODE_BYTES_MAX = 64;
/** The most UTF-8 bytes of an error text. */
export const LINK_TEXT_BYTES_MAX = 4096;
/** The most versions a `hello` may list. */
export const LINK_VERSIONS_MAX = 16;
/** The largest protocol version number. */
export const LINK_VERSION_MAX = 0xffff;
/** The largest heartbeat interval: Node timers overflow above 2^31-1 ms. */
export const LINK_HEARTBEAT_MS_MAX = 2_147_483_647;
/** The largest timestamp: CBOR's (and the store's) unsigned 64-bit range. */
export const LINK_TIMESTAMP_NS_MAX = 0xffff_ffff_ffff_ffffn;

/** Byte 0 of every link message: how the body is encoded. */
export const LinkEnvelope = {
  /** The body is CBOR. */
  plain: 0,
  /** The body is CBOR compressed with raw deflate (node:zlib deflateRawSync). */
  deflateRaw: 1,
} as const;
export type LinkEnvelope = (typeof LinkEnvelope)[keyof typeof LinkEnvelope];

/** zlib level for compressed frames: 1 (fastest); see the benchmark in README "Wire format". */
const DEFLATE_LEVEL = 1;

// ---- cbor-x -------------------------------------------------------------------------------

/** The explicit cbor-x options (see the file comment for why each). `int64AsNumber` is not in cbor-x's types. */
const CBOR_OPTIONS: Options & { readonly int64AsNumber: boolean } = {
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
  copyBuffers: false,
  int64AsNumber: false,
  useFloat32: 0,
  largeBigIntToFloat: false,
  pack: false,
  bundleStrings: false,
  structuredClone: false,
  useSelfDescribedHeader: false,
  useToJSON: false,
};
const encoder = new Encoder(CBOR_OPTIONS);
const decoder = new Decoder(CBOR_OPTIONS);

/** Largest magnitude cbor-x writes as a CBOR integer when given a JS number; beyond it we pass a bigint. */
const UINT32_MAX = 0xffff_ffff;
const NEGATIVE_UINT32_MIN = -0x1_0000_0000;
const SAFE_MAX_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const SAFE_MIN_BIG = BigInt(Number.MIN_SAFE_INTEGER);

/** A safe integer as cbor-x should see it so that it becomes a CBOR integer (not a float64). */
function wireInt(value: number): number | bigint {
  return value <= UINT32_MAX && value >= NEGATIVE_UINT32_MIN ? value : BigInt(value);
}

// ---- encode -------------------------------------------------------------------------------

/** How {@link encodeFrame} encodes. */
export type EncodeFrameOptions = {
  /** Deflate the body (compression was negotiated on the link). A body that does not shrink is sent plain. */
  readonly compress: boolean;
};

/**
 * Encodes a frame as the bytes of one WebSocket binary message. The result is a new
 * Buffer the caller owns. Throws AssertionError for a frame that breaks the schema
 * (a bug of the caller) and LinkError (ERR_LINK_FRAME) when the body would exceed
 * {@link LINK_FRAME_BYTES_MAX}: split the batch.
 */
export function encodeFrame(frame: LinkFrame, options?: EncodeFrameOptions): Uint8Array {
  const body = encoder.encode(wireOf(frame));
  if (body.length > LINK_FRAME_BYTES_MAX) {
    throw new LinkError(
      LinkErrorCode.frame,
      `a '${frame.t}' frame of ${body.length} bytes exceeds LINK_FRAME_BYTES_MAX (${LINK_FRAME_BYTES_MAX})`,
    );
  }
  let envelope: LinkEnvelope = LinkEnvelope.plain;
  let payload: Uint8Array = body;
  if (options?.compress === true) {
    const deflated = deflateRawSync(body, { level: DEFLATE_LEVEL });
    if (deflated.length < body.length) {
      envelope = LinkEnvelope.deflateRaw;
      payload = deflated;
    }
  }
  const bytes = Buffer.allocUnsafe(LINK_ENVELOPE_BYTES + payload.length);
  bytes[0] = envelope;
  bytes.set(payload, LINK_ENVELOPE_BYTES);
  return bytes;
}

/** The CBOR value of a frame (a plain object: its map). */
function wireOf(frame: LinkFrame): Record<string, unknown> {
  switch (frame.t) {
    case 'hello': {
      assert(isVersionList(frame.versions), 'hello.versions: 1 to LINK_VERSIONS_MAX versions in 1 … LINK_VERSION_MAX');
      assert(isName(frame.leaf, LINK_NAME_BYTES_MAX), 'hello.leaf: a name');
      assert(frame.token === undefined || isToken(frame.token), 'hello.token: a token or undefined');
      assertConnectionNumbers(frame, 'hello');
      const wire: Record<string, unknown> = { t: frame.t, versions: frame.versions, leaf: frame.leaf };
      if (frame.token !== undefined) wire['token'] = frame.token;
      wire['compression'] = frame.compression;
      wire['heartbeatMs'] = frame.heartbeatMs;
      wire['windowBytes'] = wireInt(frame.windowBytes);
      return wire;
    }
    case 'welcome':
      assert(isUint(frame.version, 1, LINK_VERSION_MAX), 'welcome.version: 1 … LINK_VERSION_MAX');
      assert(isName(frame.hub, LINK_NAME_BYTES_MAX), 'welcome.hub: a name');
      assertConnectionNumbers(frame, 'welcome');
      return {
        t: frame.t,
        version: frame.version,
        hub: frame.hub,
        compression: frame.compression,
        heartbeatMs: frame.heartbeatMs,
        windowBytes: wireInt(frame.windowBytes),
      };
    case 'error': {
      assert(isName(frame.code, LINK_CODE_BYTES_MAX), 'error.code: a code');
      assert(isText(frame.text), 'error.text: at most LINK_TEXT_BYTES_MAX bytes');
      assert(frame.stream === undefined || isName(frame.stream, LINK_NAME_BYTES_MAX), 'error.stream: a name or undefined');
      const wire: Record<string, unknown> = { t: frame.t, code: frame.code, text: frame.text };
      if (frame.stream !== undefined) wire['stream'] = frame.stream;
      return wire;
    }
    case 'offer':
      assertStreamKey(frame, 'offer');
      assert(isUint(frame.firstSeq, 0, Number.MAX_SAFE_INTEGER), 'offer.firstSeq: a safe integer ≥ 0');
      assert(isUint(frame.lastSeq, 0, Number.MAX_SAFE_INTEGER), 'offer.lastSeq: a safe integer ≥ 0');
      return {
        t: frame.t,
        stream: frame.stream,
        incarnation: frame.incarnation,
        firstSeq: wireInt(frame.firstSeq),
        lastSeq: wireInt(frame.lastSeq),
      };
    case 'batch':
      return batchWireOf(frame);
    case 'gap':
      assertStreamKey(frame, 'gap');
      assert(isUint(frame.from, 1, Number.MAX_SAFE_INTEGER), 'gap.from: a positive safe integer');
      assert(isUint(frame.to, frame.from, Number.MAX_SAFE_INTEGER), 'gap.to: a safe integer ≥ from');
      assert(isName(frame.reason, LINK_CODE_BYTES_MAX), 'gap.reason: a code');
      return {
        t: frame.t,
        stream: frame.stream,
        incarnation: frame.incarnation,
        from: wireInt(frame.from),
        to: wireInt(frame.to),
        reason: frame.reason,
      };
    case 'cursor': {
      assertStreamKey(frame, 'cursor');
      assert(isUint(frame.seq, 0, Number.MAX_SAFE_INTEGER), 'cursor.seq: a safe integer ≥ 0');
      assert(
        frame.batch === undefined || isUint(frame.batch, 0, Number.MAX_SAFE_INTEGER),
        'cursor.batch: a safe integer ≥ 0 or undefined',
      );
      const wire: Record<string, unknown> = {
        t: frame.t,
        stream: frame.stream,
        incarnation: frame.incarnation,
        seq: wireInt(frame.seq),
      };
      if (frame.batch !== undefined) wire['batch'] = wireInt(frame.batch);
      return wire;
    }
    case 'window':
      assert(isUint(frame.windowBytes, 0, Number.MAX_SAFE_INTEGER), 'window.windowBytes: a safe integer ≥ 0');
      return { t: frame.t, windowBytes: wireInt(frame.windowBytes) };
    case 'ping':
      return { t: frame.t };
    default:
      assert(false, `encodeFrame: unknown frame type ${describe((frame as { t: unknown }).t)}`);
  }
}

function assertConnectionNumbers(frame: HelloFrame | WelcomeFrame, type: string): void {
  assert(typeof frame.compression === 'boolean', `${type}.compression: a boolean`);
  assert(isUint(frame.heartbeatMs, 1, LINK_HEARTBEAT_MS_MAX), `${type}.heartbeatMs: 1 … LINK_HEARTBEAT_MS_MAX`);
  assert(isUint(frame.windowBytes, 0, Number.MAX_SAFE_INTEGER), `${type}.windowBytes: a safe integer ≥ 0`);
}

function assertStreamKey(frame: StreamKey, type: string): void {
  assert(isName(frame.stream, LINK_NAME_BYTES_MAX), `${type}.stream: a name`);
  assert(isIncarnation(frame.incarnation), `${type}.incarnation: 1 to LINK_INCARNATION_BYTES_MAX lowercase hex digits`);
}

/**
 * A batch in columns (README "Compact batch"): one pass over the messages after the
 * payload bytes are summed; the optional columns (`sd`, `si`, `hdr`) are only
 * allocated once a message needs them. The payloads are copied back to back into one
 * byte string: cbor-x then writes one item instead of one per message (about four
 * times faster to encode; the wire bytes are the same, a length per message either way).
 */
function batchWireOf(frame: BatchFrame): Record<string, unknown> {
  assertStreamKey(frame, 'batch');
  assert(isUint(frame.id, 0, Number.MAX_SAFE_INTEGER), 'batch.id: a safe integer ≥ 0');
  const msgs = frame.msgs;
  const count = msgs.length;
  assert(count >= 1 && count <= LINK_BATCH_MSGS_MAX, 'batch.msgs: 1 to LINK_BATCH_MSGS_MAX messages');

  let dataBytes = 0;
  for (let i = 0; i < count; i++) {
    const payload = msgs[i]!.data;
    if (!(payload instanceof Uint8Array)) assert(false, `batch.msgs[${i}].data: a Uint8Array`);
    dataBytes += payload.length;
  }
  if (dataBytes > LINK_FRAME_BYTES_MAX) {
    throw new LinkError(
      LinkErrorCode.frame,
      `a batch of ${dataBytes} payload bytes exceeds LINK_FRAME_BYTES_MAX (${LINK_FRAME_BYTES_MAX})`,
    );
  }
  const data = Buffer.allocUnsafe(dataBytes);
  let dataOffset = 0;
  const dataLengths = new Array<number>(count);
  const timestampDeltas = new Array<number | bigint>(count - 1);
  const subjectIndexes = new Array<number>(count);
  const subjects: string[] = [];
  const subjectIndexOf = new Map<string, number>();
  let seqDeltas: (number | bigint)[] | undefined;
  let headers: (Uint8Array | null)[] | undefined;
  let previousSubject = '';
  let previousSubjectIndex = 0;
  let previousSeq = 0;
  let previousTimestampNs = 0n;
  for (let i = 0; i < count; i++) {
    const msg = msgs[i]!;
    const seq = msg.seq;
    const timestampNs = msg.timestampNs;
    if (!isUint(seq, 1, Number.MAX_SAFE_INTEGER)) assert(false, `batch.msgs[${i}].seq: a positive safe integer`);
    if (!(typeof timestampNs === 'bigint' && timestampNs >= 0n && timestampNs <= LINK_TIMESTAMP_NS_MAX)) {
      assert(false, `batch.msgs[${i}].timestampNs: a bigint in 0 … 2^64-1`);
    }
    if (!(msg.headers === undefined || msg.headers instanceof Uint8Array)) {
      assert(false, `batch.msgs[${i}].headers: a Uint8Array or undefined`);
    }

    if (i > 0) {
      const seqDelta = seq - previousSeq;
      if (seqDeltas !== undefined) {
        seqDeltas[i - 1] = wireInt(seqDelta);
      } else if (seqDelta !== 1) {
        seqDeltas = new Array<number | bigint>(count - 1);
        for (let j = 0; j < i - 1; j++) seqDeltas[j] = 1;
        seqDeltas[i - 1] = wireInt(seqDelta);
      }
      const timestampDelta = timestampNs - previousTimestampNs;
      const timestampDeltaNumber = Number(timestampDelta);
      timestampDeltas[i - 1] =
        timestampDeltaNumber <= UINT32_MAX && timestampDeltaNumber >= NEGATIVE_UINT32_MIN ? timestampDeltaNumber : timestampDelta;
    }
    previousSeq = seq;
    previousTimestampNs = timestampNs;

    const subject = msg.subject;
    if (i === 0 || subject !== previousSubject) {
      let index = subjectIndexOf.get(subject);
      if (index === undefined) {
        if (!isSubject(subject)) assert(false, `batch.msgs[${i}].subject: a subject`);
        index = subjects.length;
        subjects.push(subject);
        subjectIndexOf.set(subject, index);
      }
      previousSubject = subject;
      previousSubjectIndex = index;
    }
    subjectIndexes[i] = previousSubjectIndex;

    if (headers !== undefined) {
      headers[i] = msg.headers ?? null;
    } else if (msg.headers !== undefined) {
      headers = new Array<Uint8Array | null>(count).fill(null, 0, i);
      headers[i] = msg.headers;
    }
    const payload = msg.data;
    data.set(payload, dataOffset);
    dataOffset += payload.length;
    dataLengths[i] = payload.length;
  }

  const wire: Record<string, unknown> = {
    t: frame.t,
    stream: frame.stream,
    incarnation: frame.incarnation,
    id: wireInt(frame.id),
    seq: wireInt(msgs[0]!.seq),
  };
  if (seqDeltas !== undefined) wire['sd'] = seqDeltas;
  wire['subj'] = subjects;
  if (subjects.length > 1) wire['si'] = subjectIndexes;
  wire['ts'] = msgs[0]!.timestampNs;
  wire['td'] = timestampDeltas;
  if (headers !== undefined) wire['hdr'] = headers;
  wire['dl'] = dataLengths;
  wire['data'] = data;
  return wire;
}

// ---- decode -------------------------------------------------------------------------------

/**
 * Decodes a message a leaf sent (the hub's side of the link). Returns a well-typed
 * frame or throws LinkError (ERR_LINK_FRAME); never anything else, for any input.
 * Headers and data of batch messages are views into `bytes` (or into the inflated
 * body): do not reuse `bytes` while the frame is in use.
 */
export function decodeLeafFrame(bytes: Uint8Array): LeafFrame {
  return guarded(bytes, leafFrameOf);
}

/**
 * Decodes a message the hub sent (the leaf's side of the link). Returns a well-typed
 * frame or throws LinkError (ERR_LINK_FRAME); never anything else, for any input.
 * Headers and data of batch messages are views into `bytes` (or into the inflated
 * body): do not reuse `bytes` while the frame is in use.
 */
export function decodeHubFrame(bytes: Uint8Array): HubFrame {
  return guarded(bytes, hubFrameOf);
}

/** Unwraps, decodes and validates; turns any other exception (cbor-x, zlib, a stack overflow) into a LinkError. */
function guarded<F extends LinkFrame>(bytes: Uint8Array, frameOf: (wire: WireMap) => F): F {
  try {
    return frameOf(wireMapOf(bytesOfBody(bytes)));
  } catch (error) {
    if (error instanceof LinkError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new LinkError(LinkErrorCode.frame, `undecodable frame: ${reason}`, { cause: error });
  }
}

type WireMap = { readonly [key: string]: unknown };

function fail(message: string, cause?: unknown): never {
  throw new LinkError(LinkErrorCode.frame, message, cause === undefined ? undefined : { cause });
}

/** The CBOR body of a message: size and envelope checked, inflated when deflated. */
function bytesOfBody(bytes: Uint8Array): Buffer {
  if (!(bytes instanceof Uint8Array)) fail(`a link message must be bytes, got ${describe(bytes)}`);
  const length = bytes.length;
  // Checked before anything is decoded or inflated.
  if (length > LINK_MESSAGE_BYTES_MAX) fail(`a message of ${length} bytes exceeds LINK_MESSAGE_BYTES_MAX (${LINK_MESSAGE_BYTES_MAX})`);
  if (length <= LINK_ENVELOPE_BYTES) fail(`a message of ${length} bytes is too short: an envelope byte and a body are needed`);
  const envelope = bytes[0];
  if (envelope === LinkEnvelope.plain) {
    return Buffer.from(bytes.buffer, bytes.byteOffset + LINK_ENVELOPE_BYTES, length - LINK_ENVELOPE_BYTES);
  }
  if (envelope === LinkEnvelope.deflateRaw) {
    try {
      // maxOutputLength stops inflating at the limit: a deflate bomb costs at most LINK_FRAME_BYTES_MAX.
      return inflateRawSync(bytes.subarray(LINK_ENVELOPE_BYTES), { maxOutputLength: LINK_FRAME_BYTES_MAX });
    } catch (error) {
      const isTooLarge = (error as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE';
      fail(
        isTooLarge
          ? `a deflated body inflates to more than LINK_FRAME_BYTES_MAX (${LINK_FRAME_BYTES_MAX}) bytes`
          : `a deflated body does not inflate: ${error instanceof Error ? error.message : String(error)}`,
        error,
      );
    }
  }
  return fail(`unknown envelope byte ${envelope} (0 = plain CBOR, 1 = deflate-raw CBOR)`);
}

function wireMapOf(body: Buffer): WireMap {
  let value: unknown;
  try {
    value = decoder.decode(body);
  } catch (error) {
    fail(`the body is not valid CBOR: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    fail(`a frame must be a CBOR map, got ${describe(value)}`);
  }
  return value as WireMap;
}

function leafFrameOf(wire: WireMap): LeafFrame {
  const type = wire['t'];
  if (type === 'hello') return helloOf(wire);
  if (type === 'welcome') fail(`a 'welcome' frame is only sent by the hub`);
  return bothWaysFrameOf(wire, type);
}

function hubFrameOf(wire: WireMap): HubFrame {
  const type = wire['t'];
  if (type === 'welcome') return welcomeOf(wire);
  if (type === 'hello') fail(`a 'hello' frame is only sent by a leaf`);
  return bothWaysFrameOf(wire, type);
}

/** Frames both sides send. */
function bothWaysFrameOf(wire: WireMap, type: unknown): Exclude<LinkFrame, HelloFrame | WelcomeFrame> {
  switch (type) {
    case 'error':
      return errorOf(wire);
    case 'offer':
      return offerOf(wire);
    case 'batch':
      return batchOf(wire);
    case 'gap':
      return gapOf(wire);
    case 'cursor':
      return cursorOf(wire);
    case 'window':
      return { t: 'window', windowBytes: readUint(wire['windowBytes'], 'window.windowBytes', 0, Number.MAX_SAFE_INTEGER) };
    case 'ping':
      return { t: 'ping' };
    default:
      return fail(
        typeof type === 'string'
          ? `unknown frame type ${describe(type)}`
          : `frame field t: expected a frame type string, got ${describe(type)}`,
      );
  }
}

function helloOf(wire: WireMap): HelloFrame {
  const versionsWire = wire['versions'];
  if (!Array.isArray(versionsWire) || versionsWire.length === 0 || versionsWire.length > LINK_VERSIONS_MAX) {
    fail(`hello.versions: expected an array of 1 to ${LINK_VERSIONS_MAX} versions, got ${describe(versionsWire)}`);
  }
  const versions = new Array<number>(versionsWire.length);
  for (let i = 0; i < versionsWire.length; i++) versions[i] = readUint(versionsWire[i], `hello.versions[${i}]`, 1, LINK_VERSION_MAX);
  const token = wire['token'];
  if (!(isAbsent(token) || isToken(token))) {
    fail(`hello.token: expected a non-empty string of at most ${LINK_TOKEN_BYTES_MAX} bytes or nothing, got ${describe(token)}`);
  }
  return {
    t: 'hello',
    versions,
    leaf: readName(wire['leaf'], 'hello.leaf'),
    token: isAbsent(token) ? undefined : token,
    compression: readBoolean(wire['compression'], 'hello.compression'),
    heartbeatMs: readUint(wire['heartbeatMs'], 'hello.heartbeatMs', 1, LINK_HEARTBEAT_MS_MAX),
    windowBytes: readUint(wire['windowBytes'], 'hello.windowBytes', 0, Number.MAX_SAFE_INTEGER),
  };
}

function welcomeOf(wire: WireMap): WelcomeFrame {
  return {
    t: 'welcome',
    version: readUint(wire['version'], 'welcome.version', 1, LINK_VERSION_MAX),
    hub: readName(wire['hub'], 'welcome.hub'),
    compression: readBoolean(wire['compression'], 'welcome.compression'),
    heartbeatMs: readUint(wire['heartbeatMs'], 'welcome.heartbeatMs', 1, LINK_HEARTBEAT_MS_MAX),
    windowBytes: readUint(wire['windowBytes'], 'welcome.windowBytes', 0, Number.MAX_SAFE_INTEGER),
  };
}

function errorOf(wire: WireMap): ErrorFrame {
  const text = wire['text'];
  if (!isText(text)) fail(`error.text: expected a string of at most ${LINK_TEXT_BYTES_MAX} bytes, got ${describe(text)}`);
  const stream = wire['stream'];
  return {
    t: 'error',
    code: readCode(wire['code'], 'error.code'),
    text,
    stream: isAbsent(stream) ? undefined : readName(stream, 'error.stream'),
  };
}

function offerOf(wire: WireMap): OfferFrame {
  return {
    t: 'offer',
    stream: readName(wire['stream'], 'offer.stream'),
    incarnation: readIncarnation(wire['incarnation'], 'offer.incarnation'),
    firstSeq: readUint(wire['firstSeq'], 'offer.firstSeq', 0, Number.MAX_SAFE_INTEGER),
    lastSeq: readUint(wire['lastSeq'], 'offer.lastSeq', 0, Number.MAX_SAFE_INTEGER),
  };
}

function gapOf(wire: WireMap): GapFrame {
  const from = readUint(wire['from'], 'gap.from', 1, Number.MAX_SAFE_INTEGER);
  return {
    t: 'gap',
    stream: readName(wire['stream'], 'gap.stream'),
    incarnation: readIncarnation(wire['incarnation'], 'gap.incarnation'),
    from,
    to: readUint(wire['to'], 'gap.to (≥ from)', from, Number.MAX_SAFE_INTEGER),
    reason: readCode(wire['reason'], 'gap.reason'),
  };
}

function cursorOf(wire: WireMap): CursorFrame {
  const batch = wire['batch'];
  return {
    t: 'cursor',
    stream: readName(wire['stream'], 'cursor.stream'),
    incarnation: readIncarnation(wire['incarnation'], 'cursor.incarnation'),
    seq: readUint(wire['seq'], 'cursor.seq', 0, Number.MAX_SAFE_INTEGER),
    batch: isAbsent(batch) ? undefined : readUint(batch, 'cursor.batch', 0, Number.MAX_SAFE_INTEGER),
  };
}

/** A batch from its columns (README "Compact batch"), every column checked against the message count. */
function batchOf(wire: WireMap): BatchFrame {
  const stream = readName(wire['stream'], 'batch.stream');
  const incarnation = readIncarnation(wire['incarnation'], 'batch.incarnation');
  const id = readUint(wire['id'], 'batch.id', 0, Number.MAX_SAFE_INTEGER);

  const dataLengths = wire['dl'];
  if (!Array.isArray(dataLengths) || dataLengths.length === 0 || dataLengths.length > LINK_BATCH_MSGS_MAX) {
    fail(`batch.dl: expected an array of 1 to ${LINK_BATCH_MSGS_MAX} payload lengths, got ${describe(dataLengths)}`);
  }
  const count = dataLengths.length;
  const data = wire['data'];
  if (!(data instanceof Uint8Array)) fail(`batch.data: expected a byte string, got ${describe(data)}`);
  const firstSeq = readUint(wire['seq'], 'batch.seq', 1, Number.MAX_SAFE_INTEGER);
  const seqDeltas = readOptionalColumn(wire['sd'], 'batch.sd', count - 1);
  const subjects = wire['subj'];
  if (!Array.isArray(subjects) || subjects.length === 0 || subjects.length > count) {
    fail(`batch.subj: expected an array of 1 to ${count} subjects, got ${describe(subjects)}`);
  }
  for (let i = 0; i < subjects.length; i++) {
    const subject: unknown = subjects[i];
    if (!isSubject(subject)) {
      fail(
        `batch.subj[${i}]: expected a subject (1 to ${LINK_SUBJECT_BYTES_MAX} latin1 characters, no whitespace), ` +
          `got ${describe(subject)}`,
      );
    }
  }
  const subjectIndexes = readOptionalColumn(wire['si'], 'batch.si', count);
  if (subjectIndexes === undefined && subjects.length !== 1) fail(`batch.si: required when batch.subj has ${subjects.length} subjects`);
  const firstTimestampNs = readTimestamp(wire['ts'], 'batch.ts');
  const timestampDeltas = wire['td'];
  if (!Array.isArray(timestampDeltas) || timestampDeltas.length !== count - 1) {
    fail(`batch.td: expected an array of ${count - 1} timestamp deltas, got ${describe(timestampDeltas)}`);
  }
  const headers = readOptionalColumn(wire['hdr'], 'batch.hdr', count);

  const msgs = new Array<LinkMessage>(count);
  let dataOffset = 0;
  let seq = firstSeq;
  let timestampNs = firstTimestampNs;
  for (let i = 0; i < count; i++) {
    if (i > 0) {
      if (seqDeltas === undefined) {
        seq += 1;
      } else {
        const seqDelta = toSafeInteger(seqDeltas[i - 1]);
        if (seqDelta === undefined) fail(`batch.sd[${i - 1}]: expected an integer, got ${describe(seqDeltas[i - 1])}`);
        seq += seqDelta;
      }
      if (!(Number.isSafeInteger(seq) && seq >= 1)) fail(`batch message ${i}: seq ${seq} is not a positive safe integer`);
      const timestampDelta: unknown = timestampDeltas[i - 1];
      if (typeof timestampDelta === 'number' && Number.isSafeInteger(timestampDelta)) {
        timestampNs += BigInt(timestampDelta);
      } else if (typeof timestampDelta === 'bigint') {
        timestampNs += timestampDelta;
      } else {
        fail(`batch.td[${i - 1}]: expected an integer, got ${describe(timestampDelta)}`);
      }
      if (timestampNs < 0n || timestampNs > LINK_TIMESTAMP_NS_MAX) {
        fail(`batch message ${i}: timestamp ${timestampNs} is outside 0 … 2^64-1`);
      }
    }
    const dataLength: unknown = dataLengths[i];
    if (!(typeof dataLength === 'number' && Number.isInteger(dataLength) && dataLength >= 0 && dataLength <= data.length - dataOffset)) {
      fail(`batch.dl[${i}]: expected a length of at most the ${data.length - dataOffset} data bytes left, got ${describe(dataLength)}`);
    }
    const payload = data.subarray(dataOffset, dataOffset + dataLength);
    dataOffset += dataLength;
    let subjectIndex: unknown = 0;
    if (subjectIndexes !== undefined) {
      subjectIndex = subjectIndexes[i];
      if (!(typeof subjectIndex === 'number' && Number.isInteger(subjectIndex) && subjectIndex >= 0 && subjectIndex < subjects.length)) {
        fail(`batch.si[${i}]: expected an index below ${subjects.length}, got ${describe(subjectIndex)}`);
      }
    }
    let messageHeaders: Uint8Array | undefined;
    if (headers !== undefined) {
      const header: unknown = headers[i];
      if (header instanceof Uint8Array) messageHeaders = header;
      else if (!isAbsent(header)) fail(`batch.hdr[${i}]: expected a byte string or null, got ${describe(header)}`);
    }
    msgs[i] = {
      seq,
      subject: subjects[subjectIndex as number] as string,
      headers: messageHeaders,
      data: payload,
      timestampNs,
    };
  }
  if (dataOffset !== data.length) fail(`batch.data: ${data.length} bytes, but batch.dl adds up to ${dataOffset}`);
  return { t: 'batch', stream, incarnation, id, msgs };
}

/** An optional column: absent (undefined or null) or an array of exactly `length` entries. */
function readOptionalColumn(value: unknown, path: string, length: number): readonly unknown[] | undefined {
  if (isAbsent(value)) return undefined;
  if (!Array.isArray(value) || value.length !== length) fail(`${path}: expected nothing or an array of ${length}, got ${describe(value)}`);
  return value;
}

// ---- field checks -------------------------------------------------------------------------

/** CBOR null, undefined or a missing key: all mean "not there". */
function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

/** A safe integer from a decoded CBOR integer (a number, or a bigint for 64-bit encodings); undefined otherwise. */
function toSafeInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value + 0 : undefined; // + 0 turns -0 into 0
  if (typeof value === 'bigint') return value >= SAFE_MIN_BIG && value <= SAFE_MAX_BIG ? Number(value) : undefined;
  return undefined;
}

function isUint(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

function readUint(value: unknown, path: string, min: number, max: number): number {
  const integer = toSafeInteger(value);
  if (integer === undefined || integer < min || integer > max) {
    fail(`${path}: expected an integer in ${min} … ${max}, got ${describe(value)}`);
  }
  return integer;
}

function readBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(`${path}: expected a boolean, got ${describe(value)}`);
  return value;
}

function readTimestamp(value: unknown, path: string): bigint {
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= LINK_TIMESTAMP_NS_MAX) return value;
  } else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value);
  }
  return fail(`${path}: expected an integer in 0 … 2^64-1, got ${describe(value)}`);
}

/** At most `bytesMax` UTF-8 bytes (a UTF-16 unit is at most 3 UTF-8 bytes, so short strings need no count). */
function isWithinBytes(text: string, bytesMax: number): boolean {
  return text.length * 3 <= bytesMax || Buffer.byteLength(text, 'utf8') <= bytesMax;
}

/** A name (stream, leaf, hub) or code: non-empty, at most `bytesMax` UTF-8 bytes, no space, control character or DEL. */
function isName(value: unknown, bytesMax: number): value is string {
  if (typeof value !== 'string' || value.length === 0 || !isWithinBytes(value, bytesMax)) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f) return false;
  }
  return true;
}

function readName(value: unknown, path: string): string {
  if (!isName(value, LINK_NAME_BYTES_MAX)) {
    fail(`${path}: expected a name (1 to ${LINK_NAME_BYTES_MAX} bytes, no space or control character), got ${describe(value)}`);
  }
  return value;
}

function readCode(value: unknown, path: string): string {
  if (!isName(value, LINK_CODE_BYTES_MAX)) {
    fail(`${path}: expected a code (1 to ${LINK_CODE_BYTES_MAX} bytes, no space or control character), got ${describe(value)}`);
  }
  return value;
}

/** README: an incarnation is 16 random bytes in hex; any 1 to LINK_INCARNATION_BYTES_MAX lowercase hex digits are accepted. */
function isIncarnation(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > LINK_INCARNATION_BYTES_MAX) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (!((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
  }
  return true;
}

function readIncarnation(value: unknown, path: string): string {
  if (!isIncarnation(value)) fail(`${path}: expected 1 to ${LINK_INCARNATION_BYTES_MAX} lowercase hex digits, got ${describe(value)}`);
  return value;
}

/**
 * A stored message subject: 1 to LINK_SUBJECT_BYTES_MAX latin1 characters (canopy's
 * subject representation: the server writes subjects with latin1Write, which would
 * truncate a higher character to its low byte), none of them the whitespace NATS
 * splits protocol lines on. Both rules keep a peer from smuggling a protocol line
 * into a subject the receiver delivers. Other grammar is not checked: a non-pedantic
 * NATS publish stores any other subject as it came.
 */
function isSubject(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > LINK_SUBJECT_BYTES_MAX) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0xff) return false;
    // nats-server parity: sublist.go isValidSubject rejects exactly " \t\n\f\r".
    if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) return false;
  }
  return true;
}

function isToken(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && isWithinBytes(value, LINK_TOKEN_BYTES_MAX);
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && isWithinBytes(value, LINK_TEXT_BYTES_MAX);
}

function isVersionList(value: unknown): value is number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > LINK_VERSIONS_MAX) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isUint(value[i], 1, LINK_VERSION_MAX)) return false;
  }
  return true;
}

/** A short description of a decoded value for error messages (never the whole value). */
function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length <= 40 ? JSON.stringify(value) : `a string of ${value.length} characters`;
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'nothing';
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) return `an array of ${value.length}`;
      if (value instanceof Uint8Array) return `${value.length} bytes`;
      if (Object.getPrototypeOf(value) === Object.prototype) return 'a map';
      return `a ${(Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'bare object'}`;
    default:
      return typeof value;
  }
}
