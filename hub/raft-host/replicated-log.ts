/**
 * ReplicatedLog: the small state machine the Raft host replicates (issue 5 item 4): an
 * append-only log of opaque records, one per committed proposal, plus the address book
 * of the members (from the context of membership changes). It exists to prove the host
 * end to end (every acknowledged proposal on every replica, in the same order); the
 * replicated streams replace it later.
 *
 * Kept in memory and rebuilt at start from the storage snapshot plus the committed log.
 * Its snapshot is the whole state in one CBOR value, so snapshots are taken rarely
 * (RaftHostOptions.snapshotEntries) and the host's memory grows with the data: fine for
 * a test harness and a benchmark, not for streams.
 */
import { Decoder, Encoder } from 'cbor-x';
import { crc32cUpdate, CRC32C_INIT } from '../../core/util/crc32c.ts';
import type { ConfState, Entry, NodeId } from '../raft/index.ts';
import { applyConfChange } from '../raft/index.ts';
import { RAFT_CBOR_OPTIONS } from './wire.ts';

export type LogRecord = { readonly index: number; readonly data: Uint8Array };

type SnapshotBody = {
  readonly records: readonly (readonly [number, Uint8Array])[];
  readonly addresses: readonly (readonly [NodeId, string])[];
  readonly digest: number;
};

const encoder = new Encoder(RAFT_CBOR_OPTIONS);
const decoder = new Decoder(RAFT_CBOR_OPTIONS);
const textDecoder = new TextDecoder();

export class ReplicatedLog {
  #records: LogRecord[] = [];
  /** Running CRC-32C over every record's data in order: replicas compare it cheaply. */
  #digest = CRC32C_INIT;
  #appliedIndex = 0;
  #confState: ConfState;
  readonly #addresses = new Map<NodeId, string>();

  constructor(confState: ConfState) {
    this.#confState = confState;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  get confState(): ConfState {
    return this.#confState;
  }

  get length(): number {
    return this.#records.length;
  }

  get digest(): number {
    return this.#digest >>> 0;
  }

  addresses(): ReadonlyMap<NodeId, string> {
    return this.#addresses;
  }

  /** Applies one committed entry; returns the address change it made, if any. */
  apply(entry: Entry): { readonly nodeId: NodeId; readonly address: string | undefined } | undefined {
    this.#appliedIndex = entry.index;
    if (entry.kind === 'normal') {
      if (entry.data.length === 0) return undefined; // a leader's no-op
      this.#records.push({ index: entry.index, data: entry.data });
      this.#digest = crc32cUpdate(this.#digest, entry.data);
      return undefined;
    }
    this.#confState = applyConfChange(this.#confState, entry.change);
    const { nodeId, type, context } = entry.change;
    if (type === 'remove') {
      this.#addresses.delete(nodeId);
      return { nodeId, address: undefined };
    }
    if (context.length === 0) return undefined;
    const address = textDecoder.decode(context);
    this.#addresses.set(nodeId, address);
    return { nodeId, address };
  }

  /** Records with raft index ≥ `fromIndex`, at most `max` of them. */
  read(fromIndex: number, max: number): LogRecord[] {
    let lo = 0;
    let hi = this.#records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#records[mid]!.index < fromIndex) lo = mid + 1;
      else hi = mid;
    }
    return this.#records.slice(lo, lo + max);
  }

  snapshot(): Uint8Array {
    const body: SnapshotBody = {
      records: this.#records.map((record) => [record.index, record.data] as const),
      addresses: [...this.#addresses],
      digest: this.#digest,
    };
    return encoder.encode(body);
  }

  /** Replaces the state with a snapshot taken at `index` under `confState`. Empty data is the empty state. */
  restore(index: number, confState: ConfState, data: Uint8Array): void {
    this.#appliedIndex = index;
    this.#confState = confState;
    this.#addresses.clear();
    if (data.length === 0) {
      this.#records = [];
      this.#digest = CRC32C_INIT;
      return;
    }
    const body = decoder.decode(data) as SnapshotBody;
    this.#records = body.records.map(([recordIndex, recordData]) => ({ index: recordIndex, data: recordData }));
    this.#digest = body.digest;
    for (const [id, address] of body.addresses) this.#addresses.set(id, address);
  }
}
