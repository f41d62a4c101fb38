/**
 * The client-protocol parser (NATS-SPEC.md §1.1, §1.2): a byte state machine over
 * socket chunks that calls one {@link OpHandler} method per complete operation.
 *
 * Shape (STYLE.md §2.9, §2.11 rule 2):
 * - State names copy nats-server server/parser.go; the numbers are ours. The
 *   route/gateway/leaf-only states (OP_A…, OP_L…, OP_R…, OP_M…, OP_HM…) do not exist
 *   here because a client may never send those ops.
 * - Verb letters go through a 256-entry transition row per state (case folded in the
 *   table); whitespace, argument lines, PING/PONG/+OK bodies and payloads have code.
 * - A control line that is whole in the chunk is parsed in place. A control line that
 *   is split across chunks is copied into a scratch buffer of `controlLineBytesMax + 1`
 *   bytes, so buffering is bounded by the limit.
 * - A payload whose bytes and trailing CRLF are all in the chunk is handed to the
 *   handler as a `subarray` view, with no copy. A split payload is copied into a
 *   payload buffer that grows on demand up to `payloadBytesMax`.
 * - Subject, reply, queue and sid become latin1 strings once each; payloads are never
 *   converted.
 *
 * The parser validates framing only: subjects, sids, CONNECT JSON and header blocks are
 * the connection's business.
 */
import { assert } from '../util/assert.ts';
import { CR, LF, SPACE, TAB, escapeBytes, parseSize } from '../util/bytes.ts';
import { ProtocolError, ProtocolErrorCode, ProtocolErrorText } from './errors.ts';
import type { OpHandler } from './op-handler.ts';

// Parser states. Names as in nats-server server/parser.go.
/** The split-line scratch of a parser that never needed one. */
const EMPTY_LINE = Buffer.alloc(0);
const OP_START = 0;
const OP_PLUS = 1;
const OP_PLUS_O = 2;
const OP_PLUS_OK = 3;
const OP_MINUS = 4;
const OP_MINUS_E = 5;
const OP_MINUS_ER = 6;
const OP_MINUS_ERR = 7;
const OP_MINUS_ERR_SPC = 8;
const MINUS_ERR_ARG = 9;
const OP_C = 10;
const OP_CO = 11;
const OP_CON = 12;
const OP_CONN = 13;
const OP_CONNE = 14;
const OP_CONNEC = 15;
const OP_CONNECT = 16;
const CONNECT_ARG = 17;
const OP_H = 18;
const OP_HP = 19;
const OP_HPU = 20;
const OP_HPUB = 21;
const OP_HPUB_SPC = 22;
const HPUB_ARG = 23;
const OP_P = 24;
const OP_PU = 25;
const OP_PUB = 26;
const OP_PUB_SPC = 27;
const PUB_ARG = 28;
const OP_PI = 29;
const OP_PIN = 30;
const OP_PING = 31;
const OP_PO = 32;
const OP_PON = 33;
const OP_PONG = 34;
const MSG_PAYLOAD = 35;
const MSG_END_R = 36;
const MSG_END_N = 37;
const OP_S = 38;
const OP_SU = 39;
const OP_SUB = 40;
const OP_SUB_SPC = 41;
const SUB_ARG = 42;
const OP_U = 43;
const OP_UN = 44;
const OP_UNS = 45;
const OP_UNSU = 46;
const OP_UNSUB = 47;
const OP_UNSUB_SPC = 48;
const UNSUB_ARG = 49;
const OP_I = 50;
const OP_IN = 51;
const OP_INF = 52;
const OP_INFO = 53;
const INFO_ARG = 54;
const STATE_COUNT = 55;

/** The parser's states, named as in nats-server server/parser.go. */
export const ParserState = {
  OP_START,
  OP_PLUS,
  OP_PLUS_O,
  OP_PLUS_OK,
  OP_MINUS,
  OP_MINUS_E,
  OP_MINUS_ER,
  OP_MINUS_ERR,
  OP_MINUS_ERR_SPC,
  MINUS_ERR_ARG,
  OP_C,
  OP_CO,
  OP_CON,
  OP_CONN,
  OP_CONNE,
  OP_CONNEC,
  OP_CONNECT,
  CONNECT_ARG,
  OP_H,
  OP_HP,
  OP_HPU,
  OP_HPUB,
  OP_HPUB_SPC,
  HPUB_ARG,
  OP_P,
  OP_PU,
  OP_PUB,
  OP_PUB_SPC,
  PUB_ARG,
  OP_PI,
  OP_PIN,
  OP_PING,
  OP_PO,
  OP_PON,
  OP_PONG,
  MSG_PAYLOAD,
  MSG_END_R,
  MSG_END_N,
  OP_S,
  OP_SU,
  OP_SUB,
  OP_SUB_SPC,
  SUB_ARG,
  OP_U,
  OP_UN,
  OP_UNS,
  OP_UNSU,
  OP_UNSUB,
  OP_UNSUB_SPC,
  UNSUB_ARG,
  OP_I,
  OP_IN,
  OP_INF,
  OP_INFO,
  INFO_ARG,
} as const;
export type ParserState = (typeof ParserState)[keyof typeof ParserState];

/** State number → name, for errors. */
const STATE_NAMES: readonly string[] = (() => {
  const names = new Array<string>(STATE_COUNT).fill('');
  for (const [name, state] of Object.entries(ParserState)) names[state] = name;
  assert(names.every((name) => name !== ''), 'every parser state has a name');
  return names;
})();

/** nats-server PROTO_SNIPPET_SIZE: bytes of input quoted in a parse error. */
const SNIPPET_BYTES_MAX = 32;
/** HPUB has the most arguments: subject, reply, #hdr, #total. */
const ARGUMENTS_MAX = 4;

const NO_TRANSITION = 0xff;

/**
 * `TRANSITIONS[state << 8 | byte]`: the next state for a verb letter, or NO_TRANSITION.
 * Only states that consume exactly one letter (or the one space/tab after a verb) have
 * rows; `IS_VERB_STATE` marks them.
 */
const TRANSITIONS = new Uint8Array(STATE_COUNT << 8).fill(NO_TRANSITION);
const IS_VERB_STATE = new Uint8Array(STATE_COUNT);

function addVerb(from: number, spelling: string, states: readonly number[], last: number): void {
  // `spelling[k]` takes the machine from `states[k - 1]` (or `from`) to `states[k]` (or `last`).
  let state = from;
  for (let k = 0; k < spelling.length; k++) {
    const next = k < states.length ? states[k]! : last;
    const upper = spelling.charCodeAt(k);
    const lower = spelling.toLowerCase().charCodeAt(k);
    IS_VERB_STATE[state] = 1;
    TRANSITIONS[(state << 8) | upper] = next;
    TRANSITIONS[(state << 8) | lower] = next;
    state = next;
  }
}

function addSpace(from: number, to: number): void {
  IS_VERB_STATE[from] = 1;
  TRANSITIONS[(from << 8) | SPACE] = to;
  TRANSITIONS[(from << 8) | TAB] = to;
}

// NATS protocol: ops are case-insensitive (NATS-SPEC.md §1.1). nats-server parity:
// server/parser.go parse, OP_START accepts P H S U C I + - from a client (R, L, A are
// for routes/leafs; M is not accepted at all from a client).
addVerb(OP_START, 'PUB', [OP_P, OP_PU], OP_PUB);
addSpace(OP_PUB, OP_PUB_SPC);
addVerb(OP_P, 'ING', [OP_PI, OP_PIN], OP_PING);
addVerb(OP_P, 'ONG', [OP_PO, OP_PON], OP_PONG);
addVerb(OP_START, 'HPUB', [OP_H, OP_HP, OP_HPU], OP_HPUB);
addSpace(OP_HPUB, OP_HPUB_SPC);
addVerb(OP_START, 'SUB', [OP_S, OP_SU], OP_SUB);
addSpace(OP_SUB, OP_SUB_SPC);
addVerb(OP_START, 'UNSUB', [OP_U, OP_UN, OP_UNS, OP_UNSU], OP_UNSUB);
addSpace(OP_UNSUB, OP_UNSUB_SPC);
addVerb(OP_START, 'CONNECT', [OP_C, OP_CO, OP_CON, OP_CONN, OP_CONNE, OP_CONNEC], OP_CONNECT);
addVerb(OP_START, 'INFO', [OP_I, OP_IN, OP_INF], OP_INFO);
addVerb(OP_START, '+OK', [OP_PLUS, OP_PLUS_O], OP_PLUS_OK);
addVerb(OP_START, '-ERR', [OP_MINUS, OP_MINUS_E, OP_MINUS_ER], OP_MINUS_ERR);
addSpace(OP_MINUS_ERR, OP_MINUS_ERR_SPC);

/** Whether `state` reads an argument line (and so keeps a split line in the scratch buffer). */
function argumentStateOf(state: number): boolean {
  return (
    state === PUB_ARG ||
    state === HPUB_ARG ||
    state === SUB_ARG ||
    state === UNSUB_ARG ||
    state === CONNECT_ARG ||
    state === INFO_ARG ||
    state === MINUS_ERR_ARG
  );
}

/** The argument state that follows a whitespace-skipping state. */
function argumentStateAfter(state: number): number {
  switch (state) {
    case OP_PUB_SPC:
      return PUB_ARG;
    case OP_HPUB_SPC:
      return HPUB_ARG;
    case OP_SUB_SPC:
      return SUB_ARG;
    case OP_UNSUB_SPC:
      return UNSUB_ARG;
    case OP_MINUS_ERR_SPC:
      return MINUS_ERR_ARG;
    case OP_CONNECT:
      return CONNECT_ARG;
    case OP_INFO:
      return INFO_ARG;
    default:
      assert(false, `no argument state after ${STATE_NAMES[state]}`);
  }
}

const ERR_TEXT_BY_CODE: Readonly<Record<ProtocolErrorCode, ProtocolErrorText | undefined>> = {
  [ProtocolErrorCode.unknownOperation]: ProtocolErrorText.unknownOperation,
  [ProtocolErrorCode.controlLineTooLong]: ProtocolErrorText.maxControlLineExceeded,
  [ProtocolErrorCode.payloadTooLarge]: ProtocolErrorText.maxPayloadViolation,
  // nats-server parity: server/client.go readLoop closes with ProtocolViolation and
  // sends nothing for every parse error other than parseErr, max payload and max
  // control line (processPub, processHeaderPub, parseSub, processUnsub, processInfo).
  [ProtocolErrorCode.badArguments]: undefined,
  [ProtocolErrorCode.headersNotSupported]: undefined,
  // nats-server parity: server/client.go processErr logs and closes, no -ERR.
  [ProtocolErrorCode.clientError]: undefined,
};

/** Options for {@link Parser}. */
export interface ParserOptions {
  /** Receives one call per complete operation. */
  handler: OpHandler;
  /** NATS `max_control_line`: the most argument bytes one control line may carry. */
  controlLineBytesMax: number;
  /** NATS `max_payload`: the largest PUB `#bytes` / HPUB `#total` accepted. */
  payloadBytesMax: number;
  /**
   * Whether HPUB is accepted (default true). nats-server accepts HPUB only after a
   * CONNECT with `headers:true`; for that parity the connection constructs the parser
   * with `false` and calls {@link Parser.setHeadersSupported} from `onConnect`.
   */
  headersSupported?: boolean;
}

/**
 * Incremental NATS client-protocol parser. Feed it socket chunks in order with
 * {@link Parser.parse}. It throws a {@link ProtocolError} on malformed input, after
 * which it is dead: the caller sends `-ERR '<errText>'` when `errText` is set, and
 * closes. Not re-entrant: a handler must not call `parse` on the same parser.
 */
export class Parser {
  readonly #handler: OpHandler;
  readonly #controlLineBytesMax: number;
  readonly #payloadBytesMax: number;
  #isHeadersSupported: boolean;
  #isDead = false;
  #state: number = OP_START;

  /**
   * Bytes counted toward the current control-line limit: the argument bytes buffered
   * in `#line` (argument states), the body bytes after PING/PONG/+OK, or the run of
   * whitespace after a verb.
   */
  #lineBytes = 0;
  /** Whether the last counted byte was CR (a CR right before LF is not counted). */
  #isLineEndingWithCr = false;
  /**
   * Scratch for a control line split across chunks: max + 1 bytes (a trailing CR), allocated
   * at the first split. Most connections never split a line, and 4 KiB each is 40 MB (and
   * garbage-collector work) for 10,000 idle clients.
   */
  #line: Buffer = EMPTY_LINE;

  /** Start and end offsets of the arguments of the current control line. */
  readonly #argumentStarts = new Int32Array(ARGUMENTS_MAX);
  readonly #argumentEnds = new Int32Array(ARGUMENTS_MAX);

  // The PUB/HPUB whose payload is being read.
  #subject = '';
  #reply = '';
  #headerBytes = 0;
  #totalBytes = 0;
  /** Scratch for a payload split across chunks; grows up to payloadBytesMax. */
  #payload: Buffer = Buffer.allocUnsafeSlow(0);
  /** Payload bytes copied into `#payload` so far. */
  #payloadBytes = 0;

  constructor(options: ParserOptions) {
    assert(Number.isSafeInteger(options.controlLineBytesMax), 'controlLineBytesMax is an integer');
    assert(options.controlLineBytesMax > 0, 'controlLineBytesMax is positive');
    assert(Number.isSafeInteger(options.payloadBytesMax), 'payloadBytesMax is an integer');
    assert(options.payloadBytesMax >= 0, 'payloadBytesMax is not negative');
    this.#handler = options.handler;
    this.#controlLineBytesMax = options.controlLineBytesMax;
    this.#payloadBytesMax = options.payloadBytesMax;
    this.#isHeadersSupported = options.headersSupported ?? true;
  }

  /**
   * Enables or disables HPUB, effective from the next operation (it may be called
   * from inside `onConnect`). nats-server parity: server/client.go processConnect sets
   * `c.headers`, and processHeaderPub refuses HPUB without it.
   */
  setHeadersSupported(isSupported: boolean): void {
    this.#isHeadersSupported = isSupported;
  }

  /** The current state's name (nats-server spelling), for tests and diagnostics. */
  get stateName(): string {
    return STATE_NAMES[this.#state]!;
  }

  /**
   * True between operations; false inside one (a control line, or a payload, not complete yet).
   * The connection's ping timer reads it: bytes that trickle into an unfinished operation are
   * not activity (a PONG sent meanwhile is read as payload and never seen).
   */
  get isBetweenOperations(): boolean {
    return this.#state === OP_START;
  }

  /**
   * Input bytes the parser holds between chunks: the part of a split control line
   * kept in its scratch buffer, or the part of a split payload copied so far. At most
   * `controlLineBytesMax + 1` (a trailing CR) or `payloadBytesMax`. For tests and
   * diagnostics.
   */
  get bufferedBytes(): number {
    const state = this.#state;
    if (state === MSG_PAYLOAD || state === MSG_END_R || state === MSG_END_N) return this.#payloadBytes;
    if (argumentStateOf(state)) return this.#lineBytes;
    return 0;
  }

  /**
   * Bytes of the parser's scratch buffers (split control line and split payload) as
   * allocated now: at most `controlLineBytesMax + 1 + payloadBytesMax`, whatever it was
   * fed. For tests and diagnostics.
   */
  get scratchBytes(): number {
    return this.#line.length + this.#payload.length;
  }

  /**
   * Parses the next chunk of the byte stream, calling the handler for every operation
   * it completes. Throws a {@link ProtocolError} at the first malformed byte; operations
   * before it have been dispatched. The chunk is not retained after the call.
   */
  parse(chunk: Buffer): void {
    assert(!this.#isDead, 'Parser.parse called after the parser threw');
    try {
      this.#parseChunk(chunk);
    } catch (error) {
      // A ProtocolError, or an exception from the handler: either way the machine is
      // mid-operation and cannot continue.
      this.#isDead = true;
      throw error;
    }
  }

  #parseChunk(chunk: Buffer): void {
    const length = chunk.length;
    let i = 0;
    while (i < length) {
      switch (this.#state) {
        case OP_PUB_SPC:
        case OP_HPUB_SPC:
        case OP_SUB_SPC:
        case OP_UNSUB_SPC:
        case OP_MINUS_ERR_SPC:
        case OP_CONNECT:
        case OP_INFO:
          i = this.#skipWhitespace(chunk, i);
          break;
        case PUB_ARG:
        case HPUB_ARG:
        case SUB_ARG:
        case UNSUB_ARG:
        case CONNECT_ARG:
        case INFO_ARG:
        case MINUS_ERR_ARG:
          i = this.#parseArgumentLine(chunk, i);
          break;
        case OP_PING:
        case OP_PONG:
        case OP_PLUS_OK:
          i = this.#skipLineBody(chunk, i);
          break;
        case MSG_PAYLOAD:
          i = this.#copyPayload(chunk, i);
          break;
        case MSG_END_R:
          if (chunk[i] !== CR) throw this.#unknownOperation(chunk, i);
          this.#state = MSG_END_N;
          i++;
          break;
        case MSG_END_N:
          if (chunk[i] !== LF) throw this.#unknownOperation(chunk, i);
          this.#state = OP_START;
          this.#handler.onPub(this.#subject, this.#reply, this.#headerBytes, this.#payload.subarray(0, this.#totalBytes));
          i++;
          break;
        default:
          i = this.#matchVerb(chunk, i);
      }
    }
  }

  /** Follows verb letters through the transition table while they last. */
  #matchVerb(chunk: Buffer, start: number): number {
    const length = chunk.length;
    let state = this.#state;
    let i = start;
    do {
      const next = TRANSITIONS[(state << 8) | chunk[i]!]!;
      if (next === NO_TRANSITION) {
        // nats-server parity: server/parser.go parse, `goto parseErr` on any unexpected
        // byte, including an empty line, a leading space, `MSG` and `HMSG`. (nats-server
        // has no client guard on HMSG and then misreads the stream; we refuse it at the M.)
        this.#state = state;
        throw this.#unknownOperation(chunk, i);
      }
      state = next;
      i++;
    } while (i < length && IS_VERB_STATE[state] === 1);
    this.#state = state;
    return i;
  }

  /**
   * Skips spaces and tabs after a verb; the first other byte starts the arguments.
   * nats-server parity: server/parser.go OP_PUB_SPC etc.; CONNECT and INFO need no space
   * before their argument (`CONNECT{}` is accepted).
   */
  #skipWhitespace(chunk: Buffer, start: number): number {
    const length = chunk.length;
    let i = start;
    while (i < length) {
      const b = chunk[i]!;
      if (b !== SPACE && b !== TAB) break;
      i++;
    }
    // Stricter than nats-server, which skips whitespace without limit: more than
    // controlLineBytesMax bytes skipped here (after the one space/tab that ended the verb,
    // for PUB/HPUB/SUB/UNSUB/-ERR) are refused too.
    this.#lineBytes += i - start;
    if (this.#lineBytes > this.#controlLineBytesMax) {
      const reason = 'whitespace run exceeds the control line limit';
      throw this.#error(ProtocolErrorCode.controlLineTooLong, reason, i, chunk, start, length);
    }
    if (i < length) {
      this.#state = argumentStateAfter(this.#state);
      this.#lineBytes = 0;
    }
    return i;
  }

  /**
   * Reads an argument line up to LF. A line whole in the chunk is used in place; one
   * that is split is accumulated in `#line`.
   */
  #parseArgumentLine(chunk: Buffer, start: number): number {
    const length = chunk.length;
    let lf = start;
    while (lf < length && chunk[lf] !== LF) lf++;
    if (lf === length) {
      this.#countLine(chunk, start, length, true);
      return length;
    }
    let line = chunk;
    let lineStart = start;
    let lineEnd = lf;
    if (this.#lineBytes > 0) {
      this.#countLine(chunk, start, lf, true);
      line = this.#line;
      lineStart = 0;
      lineEnd = this.#lineBytes;
    }
    // NATS protocol: lines end in CRLF; nats-server parity (server/parser.go *_ARG states):
    // a bare LF ends the line too. Only a CR right before the LF is dropped.
    if (lineEnd > lineStart && line[lineEnd - 1] === CR) lineEnd--;
    // nats-server parity: server/parser.go overMaxControlLineLimit, applied to the
    // argument bytes (verb, separating whitespace and line ending excluded).
    if (lineEnd - lineStart > this.#controlLineBytesMax) {
      const reason = 'control line exceeds the limit';
      throw this.#error(ProtocolErrorCode.controlLineTooLong, reason, start, line, lineStart, lineEnd);
    }
    this.#lineBytes = 0;
    this.#isLineEndingWithCr = false;
    return this.#completeLine(line, lineStart, lineEnd, chunk, lf + 1, start);
  }

  /**
   * Adds `chunk[start, end)` to the current line's count (and to `#line` when `isKept`),
   * refusing it as soon as the line, minus a trailing CR, is over the limit. Checking
   * each partial line keeps buffering bounded (nats-server checks at every read
   * boundary for the same reason).
   */
  #countLine(chunk: Buffer, start: number, end: number, isKept: boolean): void {
    const lineBytes = this.#lineBytes + (end - start);
    const isEndingWithCr = end > start ? chunk[end - 1] === CR : this.#lineBytes > 0 && this.#isLineEndingWithCr;
    if (lineBytes - (isEndingWithCr ? 1 : 0) > this.#controlLineBytesMax) {
      const message = 'control line exceeds the limit';
      if (isKept && this.#lineBytes > 0) {
        throw this.#error(ProtocolErrorCode.controlLineTooLong, message, start, this.#line, 0, this.#lineBytes);
      }
      throw this.#error(ProtocolErrorCode.controlLineTooLong, message, start, chunk, start, end);
    }
    if (isKept) {
      if (this.#line.length === 0 && end > start) this.#line = Buffer.allocUnsafeSlow(this.#controlLineBytesMax + 1);
      chunk.copy(this.#line, this.#lineBytes, start, end);
    }
    this.#lineBytes = lineBytes;
    this.#isLineEndingWithCr = isEndingWithCr;
  }

  /** Acts on a complete argument line `line[start, end)`; returns where parsing resumes. */
  #completeLine(line: Buffer, start: number, end: number, chunk: Buffer, next: number, offset: number): number {
    switch (this.#state) {
      case PUB_ARG:
        this.#readPubArguments(line, start, end, offset);
        return this.#startPayload(chunk, next);
      case HPUB_ARG:
        this.#readHpubArguments(line, start, end, offset);
        return this.#startPayload(chunk, next);
      case SUB_ARG:
        this.#dispatchSub(line, start, end, offset);
        return next;
      case UNSUB_ARG:
        this.#dispatchUnsub(line, start, end, offset);
        return next;
      case CONNECT_ARG:
        // NATS protocol: CONNECT <json>. The JSON is the connection's to parse and refuse.
        this.#state = OP_START;
        this.#handler.onConnect(line.subarray(start, end));
        return next;
      case INFO_ARG:
        this.#checkInfo(line, start, end, offset);
        this.#state = OP_START;
        return next;
      case MINUS_ERR_ARG:
        // nats-server parity: server/client.go processErr closes a client that sends -ERR.
        throw this.#error(ProtocolErrorCode.clientError, 'client sent -ERR', offset, line, start, end);
      default:
        assert(false, `no argument line in state ${STATE_NAMES[this.#state]}`);
    }
  }

  /**
   * Splits `line[start, end)` into arguments, recording the first ARGUMENTS_MAX, and
   * returns how many there are. PUB/HPUB split on space and tab only (nats-server
   * processPub/processHeaderPub); SUB/UNSUB also on CR and LF (nats-server splitArg).
   */
  #splitArguments(line: Buffer, start: number, end: number, isCrSeparator: boolean): number {
    const starts = this.#argumentStarts;
    const ends = this.#argumentEnds;
    let count = 0;
    let argumentStart = -1;
    for (let i = start; i < end; i++) {
      const b = line[i]!;
      const isSeparator = b === SPACE || b === TAB || (isCrSeparator && (b === CR || b === LF));
      if (isSeparator) {
        if (argumentStart >= 0) {
          if (count < ARGUMENTS_MAX) {
            starts[count] = argumentStart;
            ends[count] = i;
          }
          count++;
          argumentStart = -1;
        }
      } else if (argumentStart < 0) {
        argumentStart = i;
      }
    }
    if (argumentStart >= 0) {
      if (count < ARGUMENTS_MAX) {
        starts[count] = argumentStart;
        ends[count] = end;
      }
      count++;
    }
    return count;
  }

  /**
   * A publisher usually repeats one subject: when the bytes equal the previous
   * subject, the previous string is returned and no string is allocated. Publish
   * subjects are latin1, so a char code equals its byte.
   */
  #publishSubject(line: Buffer): string {
    const start = this.#argumentStarts[0]!;
    const length = this.#argumentEnds[0]! - start;
    const previous = this.#subject;
    if (length === previous.length) {
      let index = 0;
      while (index < length && line[start + index] === previous.charCodeAt(index)) index++;
      if (index === length) return previous;
    }
    return line.latin1Slice(start, start + length);
  }

  #argumentString(line: Buffer, index: number): string {
    return line.latin1Slice(this.#argumentStarts[index]!, this.#argumentEnds[index]!);
  }

  #argumentSize(line: Buffer, index: number): number {
    return parseSize(line, this.#argumentStarts[index]!, this.#argumentEnds[index]!);
  }

  /**
   * NATS protocol: PUB <subject> [reply-to] <#bytes>.
   * nats-server parity: server/client.go processPub (count, then size, then max_payload).
   */
  #readPubArguments(line: Buffer, start: number, end: number, offset: number): void {
    const count = this.#splitArguments(line, start, end, false);
    if (count !== 2 && count !== 3) {
      throw this.#error(ProtocolErrorCode.badArguments, 'PUB needs 2 or 3 arguments', offset, line, start, end);
    }
    const totalBytes = this.#argumentSize(line, count - 1);
    if (totalBytes < 0) {
      throw this.#error(ProtocolErrorCode.badArguments, 'PUB has a bad or missing size', offset, line, start, end);
    }
    if (totalBytes > this.#payloadBytesMax) {
      throw this.#error(ProtocolErrorCode.payloadTooLarge, 'PUB size exceeds max_payload', offset, line, start, end);
    }
    this.#subject = this.#publishSubject(line);
    this.#reply = count === 3 ? this.#argumentString(line, 1) : '';
    this.#headerBytes = 0;
    this.#totalBytes = totalBytes;
  }

  /**
   * NATS protocol: HPUB <subject> [reply-to] <#hdr bytes> <#total bytes>.
   * nats-server parity: server/client.go processHeaderPub (headers enabled, count, #hdr,
   * #total, #hdr <= #total, then max_payload against #total). #hdr = 0 is accepted.
   */
  #readHpubArguments(line: Buffer, start: number, end: number, offset: number): void {
    if (!this.#isHeadersSupported) {
      throw this.#error(ProtocolErrorCode.headersNotSupported, 'HPUB without headers support', offset, line, start, end);
    }
    const count = this.#splitArguments(line, start, end, false);
    if (count !== 3 && count !== 4) {
      throw this.#error(ProtocolErrorCode.badArguments, 'HPUB needs 3 or 4 arguments', offset, line, start, end);
    }
    const headerBytes = this.#argumentSize(line, count - 2);
    if (headerBytes < 0) {
      throw this.#error(ProtocolErrorCode.badArguments, 'HPUB has a bad or missing header size', offset, line, start, end);
    }
    const totalBytes = this.#argumentSize(line, count - 1);
    if (totalBytes < 0) {
      throw this.#error(ProtocolErrorCode.badArguments, 'HPUB has a bad or missing total size', offset, line, start, end);
    }
    if (headerBytes > totalBytes) {
      throw this.#error(ProtocolErrorCode.badArguments, 'HPUB header size exceeds total size', offset, line, start, end);
    }
    if (totalBytes > this.#payloadBytesMax) {
      throw this.#error(ProtocolErrorCode.payloadTooLarge, 'HPUB total size exceeds max_payload', offset, line, start, end);
    }
    this.#subject = this.#publishSubject(line);
    this.#reply = count === 4 ? this.#argumentString(line, 1) : '';
    this.#headerBytes = headerBytes;
    this.#totalBytes = totalBytes;
  }

  /** After a PUB/HPUB line: dispatch at once when the payload and its CRLF are all here. */
  #startPayload(chunk: Buffer, payloadStart: number): number {
    const payloadEnd = payloadStart + this.#totalBytes;
    if (payloadEnd + 2 <= chunk.length) {
      // nats-server parity: server/parser.go MSG_END_R / MSG_END_N, exactly CRLF.
      if (chunk[payloadEnd] !== CR) {
        this.#state = MSG_END_R;
        throw this.#unknownOperation(chunk, payloadEnd);
      }
      if (chunk[payloadEnd + 1] !== LF) {
        this.#state = MSG_END_N;
        throw this.#unknownOperation(chunk, payloadEnd + 1);
      }
      this.#state = OP_START;
      this.#handler.onPub(this.#subject, this.#reply, this.#headerBytes, chunk.subarray(payloadStart, payloadEnd));
      return payloadEnd + 2;
    }
    // Split payload: copy it (and wait for the CRLF) from here on.
    if (this.#payload.length < this.#totalBytes) {
      const grown = Math.min(Math.max(this.#totalBytes, this.#payload.length * 2), this.#payloadBytesMax);
      this.#payload = Buffer.allocUnsafeSlow(grown);
    }
    this.#payloadBytes = 0;
    this.#state = MSG_PAYLOAD;
    return payloadStart;
  }

  #copyPayload(chunk: Buffer, start: number): number {
    const count = Math.min(this.#totalBytes - this.#payloadBytes, chunk.length - start);
    chunk.copy(this.#payload, this.#payloadBytes, start, start + count);
    this.#payloadBytes += count;
    if (this.#payloadBytes === this.#totalBytes) this.#state = MSG_END_R;
    return start + count;
  }

  /**
   * NATS protocol: SUB <subject> [queue group] <sid>.
   * nats-server parity: server/client.go parseSub (2 or 3 arguments, else close).
   */
  #dispatchSub(line: Buffer, start: number, end: number, offset: number): void {
    const count = this.#splitArguments(line, start, end, true);
    if (count !== 2 && count !== 3) {
      throw this.#error(ProtocolErrorCode.badArguments, 'SUB needs 2 or 3 arguments', offset, line, start, end);
    }
    const subject = this.#argumentString(line, 0);
    const queue = count === 3 ? this.#argumentString(line, 1) : '';
    const sid = this.#argumentString(line, count - 1);
    this.#state = OP_START;
    this.#handler.onSub(subject, queue, sid);
  }

  /**
   * NATS protocol: UNSUB <sid> [max_msgs].
   * nats-server parity: server/client.go processUnsub: 1 or 2 arguments, else close; a
   * max that parseSize rejects (non-numeric, signed, over 9 digits) is not an error but
   * means "unsubscribe now", like an absent or zero max.
   */
  #dispatchUnsub(line: Buffer, start: number, end: number, offset: number): void {
    const count = this.#splitArguments(line, start, end, true);
    if (count !== 1 && count !== 2) {
      throw this.#error(ProtocolErrorCode.badArguments, 'UNSUB needs 1 or 2 arguments', offset, line, start, end);
    }
    const sid = this.#argumentString(line, 0);
    const maxMsgs = count === 2 ? Math.max(this.#argumentSize(line, 1), 0) : 0;
    this.#state = OP_START;
    this.#handler.onUnsub(sid, maxMsgs);
  }

  /**
   * A client INFO is ignored when it is a JSON object (or null), else the connection is
   * closed. nats-server parity: server/client.go processInfo unmarshals into its Info
   * struct and, for a CLIENT, does nothing else. Approximation: Go would also refuse
   * fields of the wrong JSON type; we do not check field types.
   */
  #checkInfo(line: Buffer, start: number, end: number, offset: number): void {
    let isValid: boolean;
    try {
      const info: unknown = JSON.parse(line.toString('utf8', start, end));
      isValid = info === null || (typeof info === 'object' && !Array.isArray(info));
    } catch {
      // Not JSON at all: that is the verdict, reported below.
      isValid = false;
    }
    if (!isValid) throw this.#error(ProtocolErrorCode.badArguments, 'INFO is not a JSON object', offset, line, start, end);
  }

  /**
   * Consumes the rest of a PING, PONG or +OK line. nats-server parity: server/parser.go
   * OP_PING/OP_PONG/OP_PLUS_OK ignore every byte up to LF (`PING foo\n` is a PING).
   * Stricter: more than controlLineBytesMax such bytes is refused.
   */
  #skipLineBody(chunk: Buffer, start: number): number {
    const length = chunk.length;
    let lf = start;
    while (lf < length && chunk[lf] !== LF) lf++;
    this.#countLine(chunk, start, lf, false);
    if (lf === length) return length;
    const state = this.#state;
    this.#state = OP_START;
    this.#lineBytes = 0;
    this.#isLineEndingWithCr = false;
    // A client's +OK is ignored (nats-server OP_PLUS_OK).
    if (state === OP_PING) this.#handler.onPing();
    else if (state === OP_PONG) this.#handler.onPong();
    return lf + 1;
  }

  #unknownOperation(chunk: Buffer, offset: number): ProtocolError {
    return this.#error(ProtocolErrorCode.unknownOperation, 'unknown protocol operation', offset, chunk, offset, chunk.length);
  }

  /**
   * Builds the ProtocolError for the current state. `offset` is the position in the
   * chunk being parsed; the snippet is up to SNIPPET_BYTES_MAX bytes of `snippetSource`
   * from `snippetStart` (the offending byte, or the start of the offending line's
   * arguments), never past `snippetLimit`.
   */
  #error(
    code: ProtocolErrorCode,
    reason: string,
    offset: number,
    snippetSource: Buffer,
    snippetStart: number,
    snippetLimit: number,
  ): ProtocolError {
    const snippetEnd = Math.min(snippetStart + SNIPPET_BYTES_MAX, snippetLimit);
    const snippet = escapeBytes(snippetSource, snippetStart, snippetEnd);
    const state = STATE_NAMES[this.#state]!;
    return new ProtocolError({
      code,
      errText: ERR_TEXT_BY_CODE[code],
      state,
      offset,
      snippet,
      message: `${reason}: state=${state} offset=${offset} proto=${snippet}`,
    });
  }
}
