/**
 * The frames hub nodes exchange on a Raft peer connection (peer-transport.ts): CBOR
 * (cbor-x, plain maps, byte strings for data) in WebSocket binary messages.
 *
 *     challenge  server → client  { t: 'challenge', nonce }
 *     hello      client → server  { t: 'hello', cluster, from, mac }
 *     msgs       client → server  { t: 'msgs', msgs: Message[] }   (a batch for one peer)
 *
 * `mac` is HMAC-SHA256 over "canopy-raft-v1", the cluster id, the node id and the
 * server's fresh nonce, keyed by the cluster secret: a peer proves it knows the secret
 * without sending it, and a recorded hello cannot be replayed on another connection.
 *
 * Peers are authenticated, but a frame is still checked field by field before the
 * Raft core sees it (a bug or a version mismatch on the other side must not reach an
 * assertion in the core): a frame that is not exactly one of the shapes below is
 * refused as a whole and the connection closed.
 */
import { Decoder, Encoder, type Options } from 'cbor-x';
import type { ConfChange, Entry, Message, MessageType, Snapshot } from '../raft/index.ts';
import { MESSAGE_TYPES } from '../raft/index.ts';

/** The most bytes of one peer WebSocket message: a whole snapshot travels in one (256 MiB). */
export const RAFT_PEER_FRAME_BYTES_MAX = 256 * 1024 * 1024;
/** The most messages in one `msgs` frame. */
export const RAFT_PEER_BATCH_MSGS_MAX = 65_536;
/** The most UTF-8 characters of a cluster id. */
export const RAFT_CLUSTER_ID_CHARS_MAX = 255;

export type ChallengeFrame = { readonly t: 'challenge'; readonly nonce: Uint8Array };
export type HelloFrame = { readonly t: 'hello'; readonly cluster: string; readonly from: number; readonly mac: Uint8Array };
export type MessagesFrame = { readonly t: 'msgs'; readonly msgs: readonly Message[] };
export type PeerFrame = ChallengeFrame | HelloFrame | MessagesFrame;

/** Plain CBOR maps and byte strings, no cbor-x extensions: the raft host's one CBOR dialect (peer frames, snapshots, the control API). */
export const RAFT_CBOR_OPTIONS: Options = { useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false };
const encoder = new Encoder(RAFT_CBOR_OPTIONS);
const decoder = new Decoder(RAFT_CBOR_OPTIONS);

export function encodePeerFrame(frame: PeerFrame): Uint8Array {
  return encoder.encode(frame);
}

/** The frame in `bytes`, or a string saying what is wrong with it. */
export function decodePeerFrame(bytes: Uint8Array): PeerFrame | string {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (error) {
    return `not CBOR (${(error as Error).message})`;
  }
  if (!isRecord(value)) return 'not a map';
  switch (value.t) {
    case 'challenge':
      return isBytes(value.nonce) ? { t: 'challenge', nonce: value.nonce } : 'challenge without a nonce';
    case 'hello':
      if (typeof value.cluster !== 'string' || value.cluster.length > RAFT_CLUSTER_ID_CHARS_MAX) return 'hello: bad cluster';
      if (!isId(value.from) || !isBytes(value.mac)) return 'hello: bad from or mac';
      return { t: 'hello', cluster: value.cluster, from: value.from, mac: value.mac };
    case 'msgs': {
      if (!Array.isArray(value.msgs) || value.msgs.length > RAFT_PEER_BATCH_MSGS_MAX) return 'msgs: not a list';
      const msgs: Message[] = [];
      for (const item of value.msgs) {
        const message = toMessage(item);
        if (message === undefined) return 'msgs: a malformed Raft message';
        msgs.push(message);
      }
      return { t: 'msgs', msgs };
    }
    default:
      return 'unknown frame type';
  }
}

// ---- field checks ---------------------------------------------------------------------

const NUMBER_FIELDS: Readonly<Record<MessageType, readonly string[]>> = {
  append: ['index', 'logTerm', 'commit'],
  'append-resp': ['index', 'rejectHint', 'logTerm'],
  heartbeat: ['commit', 'context'],
  'heartbeat-resp': ['context'],
  vote: ['index', 'logTerm'],
  'pre-vote': ['index', 'logTerm'],
  'vote-resp': [],
  'pre-vote-resp': [],
  snapshot: [],
  'timeout-now': [],
  'read-index': ['requestId'],
  'read-index-resp': ['requestId', 'index'],
};
const BOOLEAN_FIELDS: Partial<Record<MessageType, readonly string[]>> = {
  'append-resp': ['reject'],
  vote: ['force'],
  'pre-vote': ['force'],
  'vote-resp': ['reject'],
  'pre-vote-resp': ['reject'],
};
const CHANGE_TYPES: ReadonlySet<string> = new Set<ConfChange['type']>(['add-learner', 'add-voter', 'remove']);

function toMessage(value: unknown): Message | undefined {
  if (!isRecord(value) || typeof value.type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(value.type)) return undefined;
  const type = value.type as MessageType;
  if (!isId(value.from) || !isId(value.to) || !isCount(value.term)) return undefined;
  for (const field of NUMBER_FIELDS[type]) if (!isCount(value[field])) return undefined;
  for (const field of BOOLEAN_FIELDS[type] ?? []) if (typeof value[field] !== 'boolean') return undefined;
  if (type === 'append') {
    if (!Array.isArray(value.entries)) return undefined;
    const entries: Entry[] = [];
    for (const item of value.entries) {
      const entry = toEntry(item);
      if (entry === undefined) return undefined;
      entries.push(entry);
    }
    return { ...(value as unknown as Message), entries } as Message;
  }
  if (type === 'snapshot') {
    const snapshot = toSnapshot(value.snapshot);
    return snapshot === undefined ? undefined : ({ ...(value as unknown as Message), snapshot } as Message);
  }
  return value as unknown as Message;
}

function toEntry(value: unknown): Entry | undefined {
  if (!isRecord(value) || !isCount(value.index) || !isCount(value.term)) return undefined;
  if (value.kind === 'normal') return isBytes(value.data) ? { kind: 'normal', index: value.index, term: value.term, data: value.data } : undefined;
  if (value.kind !== 'conf-change' || !isRecord(value.change)) return undefined;
  const change = value.change;
  if (typeof change.type !== 'string' || !CHANGE_TYPES.has(change.type) || !isId(change.nodeId) || !isBytes(change.context)) return undefined;
  return {
    kind: 'conf-change',
    index: value.index,
    term: value.term,
    change: { type: change.type as ConfChange['type'], nodeId: change.nodeId, context: change.context },
  };
}

function toSnapshot(value: unknown): Snapshot | undefined {
  if (!isRecord(value) || !isBytes(value.data) || !isRecord(value.metadata)) return undefined;
  const { index, term, confState } = value.metadata;
  if (!isCount(index) || !isCount(term) || !isRecord(confState)) return undefined;
  if (!isIdList(confState.voters) || !isIdList(confState.learners)) return undefined;
  return { metadata: { index, term, confState: { voters: confState.voters, learners: confState.learners } }, data: value.data };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isId(value: unknown): value is number {
  return isCount(value) && value > 0;
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isId);
}
