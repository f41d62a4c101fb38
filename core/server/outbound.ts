/**
 * Per-connection outbound buffer (STYLE.md §2.9 "Outbound", house rule 9).
 *
 * Writes go into a bump-allocated chunk; the first write in an event-loop turn
 * schedules one flush (a microtask), so every MSG produced while handling one
 * socket read leaves in one write. A flushed region is handed to the transport
 * without copying and never reused; the chunk's free tail keeps serving later
 * writes. Chunks start small (idle connections stay cheap) and double while a
 * connection keeps filling them.
 *
 * The buffer is bounded: unflushed bytes plus the transport's own backlog over
 * `pendingBytesMax` make the connection a slow consumer, reported through
 * `onSlowConsumer` (the owner closes it).
 */
import { assert } from '../util/assert.ts';

/** Smallest chunk: allocUnsafe serves up to 4 KiB from Node's shared pool. */
export const OUTBOUND_CHUNK_BYTES_MIN = 1024;
/** Chunks grow to this size while a connection keeps filling them. */
export const OUTBOUND_CHUNK_BYTES_MAX = 64 * 1024;

/** Where an Outbound's bytes go (a TCP socket, a WebSocket). */
export interface OutboundTransport {
  /** Writes the buffers, in order; returns false when the transport wants the writer to wait for drain. */
  write(buffers: readonly Buffer[]): boolean;
  /** Bytes accepted by write() but not yet handed to the kernel. */
  bufferedBytes(): number;
}

const CRLF_BYTES = 2;
const CHAR_CR = 13;
const CHAR_LF = 10;
const CHAR_SPACE = 32;
/** Upper bound of the digits of a size, a header size and the spaces around them. */
const SIZE_DIGITS_BYTES_MAX = 2 * (16 + 1);

export type OutboundOptions = {
  readonly transport: OutboundTransport;
  readonly pendingBytesMax: number;
  readonly onSlowConsumer: () => void;
};

export class Outbound {
  readonly #transport: OutboundTransport;
  readonly #pendingBytesMax: number;
  readonly #onSlowConsumer: () => void;
  /** Current chunk; bytes [#start, #end) are written but not flushed. */
  #chunk: Buffer;
  #start: number;
  #end: number;
  /** Filled chunk regions waiting for the next flush. */
  #queued: Buffer[];
  #queuedBytes: number;
  #nextChunkBytes: number;
  #isFlushScheduled: boolean;
  #isBlocked: boolean;
  #isClosed: boolean;
  readonly #flushBound: () => void;

  constructor(options: OutboundOptions) {
    this.#transport = options.transport;
    this.#pendingBytesMax = options.pendingBytesMax;
    this.#onSlowConsumer = options.onSlowConsumer;
    this.#chunk = Buffer.alloc(0);
    this.#start = 0;
    this.#end = 0;
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#nextChunkBytes = OUTBOUND_CHUNK_BYTES_MIN;
    this.#isFlushScheduled = false;
    this.#isBlocked = false;
    this.#isClosed = false;
    this.#flushBound = () => this.flush();
  }

  /** Bytes written but not yet on the wire: ours plus the transport's backlog. */
  pendingBytes(): number {
    return this.#queuedBytes + (this.#end - this.#start) + this.#transport.bufferedBytes();
  }

  /** True while the transport has asked us to wait for drain. */
  isBlocked(): boolean {
    return this.#isBlocked;
  }

  /** Makes room for `bytes` contiguous bytes in the current chunk and returns the write offset. */
  #reserve(bytes: number): number {
    if (this.#chunk.length - this.#end >= bytes) return this.#end;
    if (this.#end > this.#start) {
      this.#queued.push(this.#chunk.subarray(this.#start, this.#end));
      this.#queuedBytes += this.#end - this.#start;
      this.#nextChunkBytes = Math.min(this.#nextChunkBytes * 2, OUTBOUND_CHUNK_BYTES_MAX);
    }
    this.#chunk = Buffer.allocUnsafe(Math.max(bytes, this.#nextChunkBytes));
    this.#start = 0;
    this.#end = 0;
    return 0;
  }

  #afterWrite(): void {
    if (!this.#isFlushScheduled) {
      this.#isFlushScheduled = true;
      queueMicrotask(this.#flushBound);
    }
    if (this.#queuedBytes > 0 && this.pendingBytes() > this.#pendingBytesMax) this.#onSlowConsumer();
  }

  /** Appends raw protocol bytes (INFO, PONG, +OK, -ERR). */
  writeRaw(bytes: Buffer | string): void {
    if (this.#isClosed) return;
    const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
    const offset = this.#reserve(length);
    if (typeof bytes === 'string') this.#chunk.write(bytes, offset);
    else bytes.copy(this.#chunk, offset);
    this.#end = offset + length;
    this.#afterWrite();
  }

  /**
   * Appends `MSG <subject> <sid> [reply] <#bytes>␍␊<payload>␍␊`, or HMSG with
   * `<#hdr> <#total>` when headerBytes > 0. `data` holds headers then payload.
   * Subject, sid and reply are latin1 strings (one char = one byte).
   */
  writeMsg(subject: string, sid: string, reply: string, headerBytes: number, data: Buffer): void {
    if (this.#isClosed) return;
    const lineBytes = 5 + subject.length + 1 + sid.length + 1 + reply.length + SIZE_DIGITS_BYTES_MAX + CRLF_BYTES;
    let offset = this.#reserve(lineBytes + data.length + CRLF_BYTES);
    const chunk = this.#chunk;
    if (headerBytes > 0) {
      chunk[offset++] = 72; // H
    }
    chunk[offset++] = 77; // M
    chunk[offset++] = 83; // S
    chunk[offset++] = 71; // G
    chunk[offset++] = CHAR_SPACE;
    offset += chunk.latin1Write(subject, offset);
    chunk[offset++] = CHAR_SPACE;
    offset += chunk.latin1Write(sid, offset);
    chunk[offset++] = CHAR_SPACE;
    if (reply.length > 0) {
      offset += chunk.latin1Write(reply, offset);
      chunk[offset++] = CHAR_SPACE;
    }
    if (headerBytes > 0) {
      offset = writeDecimal(chunk, offset, headerBytes);
      chunk[offset++] = CHAR_SPACE;
    }
    offset = writeDecimal(chunk, offset, data.length);
    chunk[offset++] = CHAR_CR;
    chunk[offset++] = CHAR_LF;
    offset += data.copy(chunk, offset);
    chunk[offset++] = CHAR_CR;
    chunk[offset++] = CHAR_LF;
    this.#end = offset;
    this.#afterWrite();
  }

  /** Hands everything written so far to the transport, unless it is blocked. */
  flush(): void {
    this.#isFlushScheduled = false;
    if (this.#isBlocked || this.#isClosed) return;
    if (this.#end > this.#start) {
      this.#queued.push(this.#chunk.subarray(this.#start, this.#end));
      this.#queuedBytes += this.#end - this.#start;
      this.#start = this.#end;
    }
    if (this.#queued.length === 0) return;
    const buffers = this.#queued;
    this.#queued = [];
    this.#queuedBytes = 0;
    // A small free tail is not worth keeping alive: start the next chunk fresh.
    if (this.#chunk.length - this.#end < 256) {
      this.#chunk = Buffer.alloc(0);
      this.#start = 0;
      this.#end = 0;
    }
    const isWritable = this.#transport.write(buffers);
    if (!isWritable) this.#isBlocked = true;
    if (this.#transport.bufferedBytes() > this.#pendingBytesMax) this.#onSlowConsumer();
  }

  /** The transport drained: resume flushing. */
  onDrain(): void {
    this.#isBlocked = false;
    this.flush();
  }

  /** Stops accepting writes; what was flushed stays with the transport. */
  close(): void {
    this.#isClosed = true;
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#chunk = Buffer.alloc(0);
    this.#start = 0;
    this.#end = 0;
  }
}

/** Writes a non-negative integer in ASCII decimal at `offset`; returns the offset after it. */
export function writeDecimal(target: Buffer, offset: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, 'writeDecimal needs a non-negative safe integer');
  if (value < 10) {
    target[offset] = 48 + value;
    return offset + 1;
  }
  let digits = 0;
  for (let rest = value; rest > 0; rest = Math.floor(rest / 10)) digits++;
  let position = offset + digits - 1;
  for (let rest = value; rest > 0; rest = Math.floor(rest / 10)) {
    target[position--] = 48 + (rest % 10);
  }
  return offset + digits;
}
