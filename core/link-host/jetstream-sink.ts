/**
 * The {@link ReceiverSink} of one link peer over this side's JetStream (core/link/README.md
 * "Where synced data lands"), for both roles: the hub stores each leaf's upstream streams with
 * it (hub/ingest/hub-sink.ts), a leaf stores the hub's downstream streams (leaf/link/leaf-sink.ts).
 * What differs per role (the stored subject, the origin headers, the config of a target stream
 * created on first offer, which targets must be refused, the words of logs and refusals) comes
 * in a {@link SinkRole}; the mechanics here are shared:
 *
 * - Peer stream S lands in this side's stream S (created on first offer if absent), appended
 *   with `Stream.storeMessage`, not published, so the stored subjects need not match the
 *   stream's subjects.
 * - The cursor and gap records of every (peer, stream, incarnation) live in the target
 *   stream's link states (JetStreamStorage.saveLinkState), written in the same synchronous
 *   section as the messages they cover, so one LMDB transaction holds both (README "Cursor").
 *   A 'filtered' gap (core/link GAP_REASON_FILTERED) moves the cursor and records no gap.
 * - The sink stages; the host (receiver-host.ts) takes what a turn staged with
 *   {@link JetStreamSink.takeTurn}, awaits `storage.flushed()`, then hands the turn back with
 *   {@link JetStreamSink.durable} and tells the receiver. {@link JetStreamSink.cursor} answers
 *   from the durable view only, which moves only then.
 *
 * One sink per peer; the peer's name is fixed, so a peer writes only into its own link states
 * (`<peer>/…`). A sink that became *stale* (its staged state no longer matches what the receiver
 * believes: a message refused in the middle of a batch, a target stream deleted under it, a
 * failed commit) is replaced by the host, together with the receiver, once nothing of it is in
 * flight and the peer is disconnected (hub/ingest/README.md "Decisions").
 */
import { createStream } from '../jetstream/api/stream-api.ts';
import { JsApiError } from '../jetstream/api/errors.generated.ts';
import type { JetStream } from '../jetstream/jetstream.ts';
import type { Stream } from '../jetstream/stream.ts';
import { isValidName } from '../jetstream/stream-config.ts';
import { GAP_REASON_FILTERED, type GapRecord, type LinkMessage, type ReceiverSink, type ReceiverWrite, type StreamKey } from '../link/index.ts';
import { encodeHeaders, parseHeaders } from '../protocol/headers.ts';
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';

/** What a role decides about the data it receives (the rest of the sink is the same both ways). */
export type SinkRole = {
  /** This side, in logs and texts: 'hub' (upstream receiver) or 'leaf' (downstream receiver). */
  readonly self: 'hub' | 'leaf';
  /** The peer whose streams arrive: 'leaf' or 'hub'. */
  readonly peer: 'leaf' | 'hub';
  /** The subject a peer message is stored under in `target`. */
  subjectOf(subject: string, target: Stream): string;
  /**
   * The stream a peer stream lands in (default: the stream of the same name), or why it cannot
   * land anywhere. Asked once per sink and peer stream: a change takes effect with the next sink.
   */
  targetOf?(stream: string): { readonly name: string } | { readonly refusal: string };
  /** The origin header entries each stored message starts with (names under {@link ORIGIN_HEADER_PREFIX}). */
  originHeaders(key: StreamKey, msg: LinkMessage): [string, string][];
  /** The `createStream` request for a target stream created on first offer. */
  newStreamConfig(stream: string): Record<string, unknown>;
  /** Why an existing target must not take this peer's stream (e.g. it would loop back), or undefined. */
  refuseTarget?(target: Stream): string | undefined;
};

/**
 * Prefix of the origin headers. A peer's own header of this prefix is dropped (a peer must not
 * speak for another), and JetStream control headers are kept under it (see {@link mergeHeaders}).
 */
export const ORIGIN_HEADER_PREFIX = 'Canopy-Origin-';

/**
 * Gap records kept per origin key, newest last. The counts cover every gap; the records are
 * for the operator's eye (/leafz) and must not grow a link state without bound.
 */
export const LINK_STATE_GAPS_MAX = 32;

/** Link state of one (peer, stream, incarnation): the receiver's cursor and its gap records. */
export type OriginCursorState = {
  /** Every origin sequence up to it is stored in the target stream or recorded as a gap. */
  readonly cursor: number;
  /** The most recent gaps (at most {@link LINK_STATE_GAPS_MAX}). */
  readonly gaps: readonly GapRecord[];
  /** Gaps recorded in all. */
  readonly gapCount: number;
  /** Origin sequences the gaps covered in all. */
  readonly gapMsgs: number;
  /** Clock time of the last batch stored, 0 when none. */
  readonly lastBatchMs: number;
};

/** Link state of one (peer, stream): the incarnation stored most recently. */
export type OriginStreamState = {
  readonly incarnation: string;
  /** Times a new incarnation replaced the previous one (the README's alert metric, durable). */
  readonly incarnationChanges: number;
  /** Clock time of the last change (or of the first write). */
  readonly changedMs: number;
};

/** What one event-loop turn staged, for the host's flush. */
export type SinkTurn = {
  /** Per key: the staged cursor the turn's writes reach; `LinkReceiver.durable` once flushed. */
  readonly covered: readonly { readonly key: StreamKey; readonly seq: number }[];
  readonly cursors: ReadonlyMap<string, OriginCursorState>;
  readonly streams: ReadonlyMap<string, OriginStreamState>;
  /**
   * Keys refused while storing (a message the target stream would not take). The host sends
   * their `stream` errors after the flush, so the cursor of what was stored goes out first.
   */
  readonly refusals: readonly { readonly key: StreamKey; readonly text: string }[];
};

/** Why the host must close the peer's connection (a connection-level error code and text). */
export type SinkAbort = { readonly code: string; readonly text: string };

export type SinkStats = {
  readonly msgsStored: number;
  readonly gapsRecorded: number;
  readonly gapMsgs: number;
  /** Keys refused (per-stream refusals sent to the peer). */
  readonly refusals: number;
  /** Messages not stored because their key was refused (the refused one and those after it, in its batch and later ones). */
  readonly msgsDropped: number;
};

export type JetStreamSinkOptions = {
  /** The peer's name in link-state keys (`<peer>/<stream>/<incarnation>`): a leaf's name on the hub, `hub` on a leaf. No '/'. */
  readonly peer: string;
  readonly role: SinkRole;
  readonly jetstream: JetStream;
  readonly clock: Clock;
  /** The peer's child logger. */
  readonly log: Logger;
};

/** `<peer>/<stream>/<incarnation>`: the link-state origin of a cursor record. */
export function originKeyOf(peer: string, key: StreamKey): string {
  return `${peer}/${key.stream}/${key.incarnation}`;
}

/** `<peer>/<stream>`: the link-state origin of the last-incarnation record. */
export function originStreamKeyOf(peer: string, stream: string): string {
  return `${peer}/${stream}`;
}

const EMPTY_CURSOR_STATE: OriginCursorState = { cursor: 0, gaps: [], gapCount: 0, gapMsgs: 0, lastBatchMs: 0 };

/**
 * The headers a stored message carries: the role's origin headers first, then the sender's own
 * entries (its status line too, if any), except that
 * - a sender's `Canopy-Origin-*` entry is dropped: the receiver states the origin, not the sender
 *   (a leaf could otherwise speak for another);
 * - JetStream control headers are renamed to `Canopy-Origin-<name>` (value kept): the target
 *   stream would otherwise act on them again. `Nats-Msg-Id` would deduplicate against every other
 *   peer's ids and against the sender's own ids reused after its duplicate window, silently
 *   dropping messages the sender stored (the cursor already makes the copy exactly-once);
 *   `Nats-Expected-*` would check the target's sequences against the sender's;
 *   `Nats-Rollup` would purge the target stream.
 */
export function mergeHeaders(origin: readonly [string, string][], msg: LinkMessage): Buffer {
  if (msg.headers === undefined || msg.headers.length === 0) return encodeHeaders(origin); // the common case: no copy, no parse
  const entries: [string, string][] = [...origin];
  let status = '';
  if (msg.headers !== undefined && msg.headers.length > 0) {
    const parsed = parseHeaders(bufferOf(msg.headers));
    if (parsed.status !== 0) status = parsed.description === '' ? String(parsed.status) : `${parsed.status} ${parsed.description}`;
    const prefixLower = ORIGIN_HEADER_PREFIX.toLowerCase();
    for (const [name, value] of parsed.entries) {
      if (name.toLowerCase().startsWith(prefixLower)) continue;
      entries.push([isJetStreamControlHeader(name) ? `${ORIGIN_HEADER_PREFIX}${name}` : name, value]);
    }
  }
  return encodeHeaders(entries, status);
}

/** Headers Stream.storeMessage acts on (core/jetstream/stream.ts JsHeader); it matches them case-sensitively. */
function isJetStreamControlHeader(name: string): boolean {
  return name === 'Nats-Msg-Id' || name === 'Nats-Rollup' || name.startsWith('Nats-Expected-');
}

/** A Buffer over the same bytes (decoded frames hand out Buffers already; no copy either way). */
function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

function keyIdOf(key: StreamKey): string {
  return `${key.stream}/${key.incarnation}`;
}

class TurnBuilder {
  readonly covered = new Map<string, { key: StreamKey; seq: number }>();
  readonly cursors = new Map<string, OriginCursorState>();
  readonly streams = new Map<string, OriginStreamState>();
  readonly refusals: { key: StreamKey; text: string }[] = [];

  get isEmpty(): boolean {
    return this.covered.size === 0 && this.cursors.size === 0 && this.streams.size === 0 && this.refusals.length === 0;
  }
}

export class JetStreamSink implements ReceiverSink {
  readonly peer: string;
  readonly #role: SinkRole;
  readonly #js: JetStream;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Durable link states of the loaded target streams (moves only in durable()). */
  readonly #durableCursors = new Map<string, OriginCursorState>();
  readonly #durableStreams = new Map<string, OriginStreamState>();
  /** Staged link states not yet durable. */
  readonly #stagedCursors = new Map<string, OriginCursorState>();
  readonly #stagedStreams = new Map<string, OriginStreamState>();
  /** Target streams whose link states of this peer were read into the durable view. */
  readonly #loaded = new Set<string>();
  /** The Stream object each target was when this sink first used it (a deleted or re-created one differs). */
  readonly #targets = new Map<string, Stream>();
  readonly #refusals = new Map<string, string>();
  readonly #creating = new Map<string, Promise<void>>();
  readonly #creationFailures = new Map<string, string>();
  /** The target stream name of each peer stream (role.targetOf, asked once), or why there is none. */
  readonly #targetNames = new Map<string, { readonly name: string } | { readonly refusal: string }>();
  /** Targets deleted or re-created under this sink (reported once each). */
  readonly #vanished = new Set<string>();
  #turn = new TurnBuilder();
  #isStale = false;
  #abort: SinkAbort | undefined = undefined;
  readonly #stats = { msgsStored: 0, gapsRecorded: 0, gapMsgs: 0, refusals: 0, msgsDropped: 0 };

  constructor(options: JetStreamSinkOptions) {
    assert(options.peer.length > 0 && !options.peer.includes('/'), `peer name ${options.peer} must not be empty or hold '/'`);
    this.peer = options.peer;
    this.#role = options.role;
    this.#js = options.jetstream;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  /** True once the staged state may differ from the receiver's: replace sink and receiver before the next connection. */
  get isStale(): boolean {
    return this.#isStale;
  }

  get stats(): SinkStats {
    return { ...this.#stats };
  }

  /** Whether a turn has anything for the host to flush or report. */
  get hasTurn(): boolean {
    return !this.#turn.isEmpty;
  }

  // ---------------------------------------------------------------- ReceiverSink

  cursor(key: StreamKey): number {
    const target = this.#target(key.stream);
    if (target === undefined || target === 'vanished') return 0;
    this.#load(key.stream);
    const origin = originKeyOf(this.peer, key);
    const durable = this.#durableCursors.get(origin)?.cursor ?? 0;
    // The receiver asks only for keys it has nothing staged for, so the two views agree here.
    const staged = this.#stagedCursors.get(origin);
    assert(staged === undefined || staged.cursor === durable, `cursor() of ${origin} while ${staged?.cursor} is staged over ${durable}`);
    return durable;
  }

  lastIncarnation(stream: string): string | undefined {
    const target = this.#target(stream);
    if (target === undefined || target === 'vanished') return undefined;
    this.#load(stream);
    const origin = originStreamKeyOf(this.peer, stream);
    return (this.#stagedStreams.get(origin) ?? this.#durableStreams.get(origin))?.incarnation;
  }

  refuse(key: StreamKey): string | undefined {
    if (!isValidName(key.stream)) return `"${key.stream}" cannot be a ${this.#role.self} stream name (no '.', '*', '>', '/', '\\' or whitespace)`;
    const refusal = this.#refusals.get(keyIdOf(key));
    if (refusal !== undefined) return refusal;
    const failure = this.#creationFailures.get(key.stream);
    if (failure !== undefined) return failure;
    const mapping = this.#targetNameOf(key.stream);
    if ('refusal' in mapping) return mapping.refusal;
    const target = this.#target(key.stream);
    if (target === 'vanished') return this.#vanishedText(key.stream);
    if (target === undefined) return `${this.#role.self} stream ${mapping.name} does not exist`;
    return this.#role.refuseTarget?.(target);
  }

  append(key: StreamKey, write: ReceiverWrite): void {
    const id = keyIdOf(key);
    if (this.#refusals.has(id)) {
      // Pipelined before the peer heard of the refusal: nothing is stored, the cursor stays.
      if (write.kind === 'msgs') this.#stats.msgsDropped += write.msgs.length;
      return;
    }
    const target = this.#target(key.stream);
    if (target === undefined || target === 'vanished') {
      this.#refuseKey(key, target === 'vanished' ? this.#vanishedText(key.stream) : `${this.#role.self} stream ${key.stream} does not exist`);
      return;
    }
    const refusal = this.#role.refuseTarget?.(target);
    if (refusal !== undefined) {
      // The target changed since the offer (its metadata, say): the same refusal as an offer would get now.
      if (write.kind === 'msgs') this.#stats.msgsDropped += write.msgs.length;
      this.#refuseKey(key, refusal);
      return;
    }
    this.#load(key.stream);
    const origin = originKeyOf(this.peer, key);
    const before = this.#stagedCursors.get(origin) ?? this.#durableCursors.get(origin) ?? EMPTY_CURSOR_STATE;
    if (write.kind === 'msgs') this.#appendMsgs(target, key, origin, before, write.msgs);
    else this.#appendGap(key, origin, before, write.gap);
  }

  // ---------------------------------------------------------------- host

  /**
   * Called by the host before an offer reaches the receiver: makes sure the target stream
   * exists. Returns undefined when the offer can go on now, or a promise (never rejecting)
   * that settles once the stream was created or its creation failed (then `refuse` says why).
   */
  prepare(stream: string): Promise<void> | undefined {
    if (!isValidName(stream) || 'refusal' in this.#targetNameOf(stream)) return undefined;
    const target = this.#target(stream);
    if (target !== undefined) return undefined; // exists, or vanished (refuse() and the abort say so)
    let creating = this.#creating.get(stream);
    if (creating === undefined) {
      this.#creationFailures.delete(stream); // each offer tries again
      creating = this.#create(stream).finally(() => this.#creating.delete(stream));
      this.#creating.set(stream, creating);
    }
    return creating;
  }

  /** What the turn staged, for one `storage.flushed()`; the next writes start a new turn. */
  takeTurn(): SinkTurn | undefined {
    if (this.#turn.isEmpty) return undefined;
    const turn = this.#turn;
    this.#turn = new TurnBuilder();
    return { covered: [...turn.covered.values()], cursors: turn.cursors, streams: turn.streams, refusals: turn.refusals };
  }

  /** The flush that followed `turn` resolved: its link states are on disk. */
  durable(turn: SinkTurn): void {
    for (const [origin, state] of turn.cursors) {
      const durable = this.#durableCursors.get(origin);
      assert(durable === undefined || state.cursor >= durable.cursor, `durable cursor of ${origin} would go back from ${durable?.cursor} to ${state.cursor}`);
      this.#durableCursors.set(origin, state);
      if (this.#stagedCursors.get(origin) === state) this.#stagedCursors.delete(origin);
    }
    for (const [origin, state] of turn.streams) {
      this.#durableStreams.set(origin, state);
      if (this.#stagedStreams.get(origin) === state) this.#stagedStreams.delete(origin);
    }
  }

  /** A flush covering this sink's writes failed: the store dropped them, so staged state is void. */
  failed(): void {
    this.#isStale = true;
  }

  /**
   * Checks every target this sink used against JetStream (the host calls it when the peer
   * connects): one deleted or re-created while the peer was away makes the sink stale, so the
   * host starts the new connection from fresh cursors instead of resetting it at the first offer.
   */
  revalidate(): void {
    for (const stream of [...this.#targets.keys()]) this.#target(stream);
    this.#abort = undefined; // no connection to reset: the host replaces this sink before the peer syncs
  }

  /** A connection-level problem found while staging (a target stream deleted under the peer), once. */
  takeAbort(): SinkAbort | undefined {
    const abort = this.#abort;
    this.#abort = undefined;
    return abort;
  }

  /** Durable link states of the targets this sink loaded (for status), and its refusals by key id. */
  views(): {
    readonly streams: ReadonlySet<string>;
    readonly cursors: ReadonlyMap<string, OriginCursorState>;
    readonly incarnations: ReadonlyMap<string, OriginStreamState>;
    readonly refusals: ReadonlyMap<string, string>;
  } {
    return { streams: this.#loaded, cursors: this.#durableCursors, incarnations: this.#durableStreams, refusals: this.#refusals };
  }

  // ---------------------------------------------------------------- staging

  #appendMsgs(target: Stream, key: StreamKey, origin: string, before: OriginCursorState, msgs: readonly LinkMessage[]): void {
    assert(msgs.length > 0, 'an empty msgs write');
    assert(msgs[0]!.seq === before.cursor + 1, `${origin}: write starts at ${msgs[0]!.seq}, staged cursor is ${before.cursor}`);
    let stored = 0;
    let refusal: string | undefined;
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i]!;
      const outcome = target.storeMessage(this.#role.subjectOf(msg.subject, target), mergeHeaders(this.#role.originHeaders(key, msg), msg), bufferOf(msg.data));
      if (outcome instanceof JsApiError) {
        refusal = `${this.#role.self} stream ${target.name} refused message ${msg.seq}: ${outcome.description} (err_code ${outcome.errCode})`;
        break;
      }
      // Without a Nats-Msg-Id (mergeHeaders renames it) the stream cannot answer "duplicate"; if it did, nothing was stored.
      if (outcome.isDuplicate) {
        refusal = `${this.#role.self} stream ${target.name} took message ${msg.seq} for a duplicate`;
        break;
      }
      stored++;
    }
    if (stored > 0) {
      this.#stats.msgsStored += stored;
      this.#stageCursor(key, origin, { ...before, cursor: msgs[stored - 1]!.seq, lastBatchMs: this.#clock.nowMs() });
    }
    if (refusal !== undefined) {
      this.#stats.msgsDropped += msgs.length - stored;
      this.#refuseKey(key, refusal);
    }
  }

  #appendGap(key: StreamKey, origin: string, before: OriginCursorState, gap: GapRecord): void {
    assert(gap.from === before.cursor + 1 && gap.to >= gap.from, `${origin}: gap ${gap.from}..${gap.to} after staged cursor ${before.cursor}`);
    if (gap.reason === GAP_REASON_FILTERED) {
      // Messages meant for other receivers: the cursor moves past them; nothing was lost, nothing to record.
      this.#stageCursor(key, origin, { ...before, cursor: gap.to });
      return;
    }
    const gaps = before.gaps.length < LINK_STATE_GAPS_MAX ? [...before.gaps, gap] : [...before.gaps.slice(1 - LINK_STATE_GAPS_MAX), gap];
    const msgs = gap.to - gap.from + 1;
    this.#stats.gapsRecorded += 1;
    this.#stats.gapMsgs += msgs;
    this.#stageCursor(key, origin, { ...before, cursor: gap.to, gaps, gapCount: before.gapCount + 1, gapMsgs: before.gapMsgs + msgs });
  }

  /** Stages a cursor record (and the stream's last-incarnation record when it changes) in this synchronous section. */
  #stageCursor(key: StreamKey, origin: string, state: OriginCursorState): void {
    const storage = this.#js.storage;
    const targetName = this.#targetNameOf(key.stream);
    assert('name' in targetName, `a cursor of ${origin} staged without a target`);
    storage.saveLinkState(targetName.name, origin, state);
    this.#stagedCursors.set(origin, state);
    this.#turn.cursors.set(origin, state);
    this.#turn.covered.set(keyIdOf(key), { key, seq: state.cursor });
    const streamOrigin = originStreamKeyOf(this.peer, key.stream);
    const last = this.#stagedStreams.get(streamOrigin) ?? this.#durableStreams.get(streamOrigin);
    if (last?.incarnation !== key.incarnation) {
      const next: OriginStreamState = {
        incarnation: key.incarnation,
        incarnationChanges: last === undefined ? 0 : last.incarnationChanges + 1,
        changedMs: this.#clock.nowMs(),
      };
      storage.saveLinkState(targetName.name, streamOrigin, next);
      this.#stagedStreams.set(streamOrigin, next);
      this.#turn.streams.set(streamOrigin, next);
    }
  }

  /**
   * Refuses a key for the rest of this sink's life: the host sends error 'stream' (after the
   * flush of what was stored), the peer stops the stream for the connection, and its next
   * offers are refused too until the host replaces the sink (the peer's next connection).
   */
  #refuseKey(key: StreamKey, text: string): void {
    this.#refusals.set(keyIdOf(key), text);
    this.#turn.refusals.push({ key, text });
    this.#stats.refusals += 1;
    // The receiver staged the whole write; we did not. Only a new receiver can agree with us again.
    this.#isStale = true;
    this.#log.error({ stream: key.stream, incarnation: key.incarnation, reason: text }, `${this.#role.peer} stream refused by the ${this.#role.self}`);
  }

  // ---------------------------------------------------------------- targets

  /**
   * The target stream; undefined when it does not exist (and never did for this sink);
   * 'vanished' when it was deleted or re-created after this sink used it. Then the durable
   * view this sink holds belongs to a stream that is gone: the sink turns stale and asks the
   * host to close the connection, so the peer syncs into the new target from its cursor
   * (0 for a new stream: the peer resends what it still has).
   */
  #target(stream: string): Stream | 'vanished' | undefined {
    const mapping = this.#targetNameOf(stream);
    const current = 'name' in mapping ? this.#js.streams.get(mapping.name) : undefined;
    const known = this.#targets.get(stream);
    if (known !== undefined && known !== current) {
      if (!this.#vanished.has(stream)) {
        this.#vanished.add(stream);
        this.#isStale = true;
        this.#abort ??= { code: 'reset', text: this.#vanishedText(stream) };
        this.#log.warn({ stream }, `${this.#role.self} stream of a synced ${this.#role.peer} stream was deleted; the link restarts`);
      }
      return 'vanished';
    }
    if (current !== undefined && known === undefined) this.#targets.set(stream, current);
    return current;
  }

  /** Where `stream` lands (asked of the role once per sink). */
  #targetNameOf(stream: string): { readonly name: string } | { readonly refusal: string } {
    let mapping = this.#targetNames.get(stream);
    if (mapping === undefined) {
      mapping = this.#role.targetOf?.(stream) ?? { name: stream };
      this.#targetNames.set(stream, mapping);
      if ('name' in mapping && mapping.name !== stream) this.#log.info({ stream, target: mapping.name }, `${this.#role.peer} stream lands in another ${this.#role.self} stream`);
    }
    return mapping;
  }

  #vanishedText(stream: string): string {
    return `${this.#role.self} stream ${stream} was deleted or re-created while ${this.#role.peer} ${this.peer} synced into it; reconnect to start over`;
  }

  /** Reads this peer's link states of `stream` (kept in its target stream) into the durable view, once per sink. */
  #load(stream: string): void {
    if (this.#loaded.has(stream)) return;
    const mapping = this.#targetNameOf(stream);
    if (!('name' in mapping)) return;
    this.#loaded.add(stream);
    const cursorPrefix = `${this.peer}/${stream}/`;
    const streamOrigin = originStreamKeyOf(this.peer, stream);
    // Nothing of this peer is pending for a stream not loaded yet, so this is what is on disk.
    // A target may hold the link states of several peer streams (role.targetOf): only this one's are read.
    for (const [origin, value] of this.#js.storage.loadLinkStates(mapping.name)) {
      if (origin === streamOrigin) this.#durableStreams.set(origin, originStreamStateOf(value, origin));
      else if (origin.startsWith(cursorPrefix) && !origin.slice(cursorPrefix.length).includes('/')) this.#durableCursors.set(origin, originCursorStateOf(value, origin));
    }
  }

  async #create(stream: string): Promise<void> {
    const mapping = this.#targetNameOf(stream);
    if (!('name' in mapping)) return;
    const name = mapping.name;
    let failure: string | undefined;
    try {
      // The API's own path (checks, persistence, consumers).
      const created = await createStream(this.#js, this.#role.newStreamConfig(name));
      if (created instanceof JsApiError) failure = `${created.description} (err_code ${created.errCode})`;
      else if (created.isNew) this.#log.info({ stream: name }, `${this.#role.self} stream created for a ${this.#role.peer} stream`);
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
    }
    // Someone else may have created it meanwhile (another peer, an API client): then it is there to use.
    if (failure !== undefined && !this.#js.streams.has(name)) {
      this.#log.error({ stream: name, reason: failure }, `cannot create the ${this.#role.self} stream of a ${this.#role.peer} stream`);
      this.#creationFailures.set(stream, `cannot create ${this.#role.self} stream ${name}: ${failure}`);
    }
  }
}

// ---------------------------------------------------------------- records (pair assertions)

/** A cursor record as read back from the store. */
export function originCursorStateOf(value: Record<string, unknown>, origin: string): OriginCursorState {
  const { cursor, gaps, gapCount, gapMsgs, lastBatchMs } = value as Partial<Record<keyof OriginCursorState, unknown>>;
  assert(Number.isSafeInteger(cursor) && (cursor as number) >= 0, `link state ${origin}: cursor`);
  assert(Array.isArray(gaps) && gaps.length <= LINK_STATE_GAPS_MAX, `link state ${origin}: gaps`);
  for (const gap of gaps as unknown[]) {
    const { from, to, reason, atMs } = gap as Partial<Record<keyof GapRecord, unknown>>;
    assert(Number.isSafeInteger(from) && Number.isSafeInteger(to) && typeof reason === 'string' && typeof atMs === 'number', `link state ${origin}: a gap record`);
  }
  assert(Number.isSafeInteger(gapCount) && Number.isSafeInteger(gapMsgs), `link state ${origin}: gap counts`);
  assert(typeof lastBatchMs === 'number', `link state ${origin}: lastBatchMs`);
  return value as OriginCursorState;
}

/** A last-incarnation record as read back from the store. */
export function originStreamStateOf(value: Record<string, unknown>, origin: string): OriginStreamState {
  const { incarnation, incarnationChanges, changedMs } = value as Partial<Record<keyof OriginStreamState, unknown>>;
  assert(typeof incarnation === 'string' && incarnation.length > 0, `link state ${origin}: incarnation`);
  assert(Number.isSafeInteger(incarnationChanges) && typeof changedMs === 'number', `link state ${origin}: incarnation counters`);
  return value as OriginStreamState;
}
