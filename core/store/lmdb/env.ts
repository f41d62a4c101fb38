/**
 * Opens the one LMDB environment of the JetStream store with every option
 * spelled out (STYLE.md §2.11 rule 8: no library defaults), and maps LMDB
 * failures to StoreError codes.
 *
 * Durability (RELIABILITY.md §3.4 recipe), by the server's `sync` policy:
 * - `always`: `overlappingSync: false`. Each commit writes the dirty pages,
 *   fdatasyncs, and writes the meta page synchronously before lmdb-js resolves
 *   the commit's promise, so a resolved commit promise means "on disk".
 *   Measured on this machine kind, this is as fast or faster than
 *   `overlappingSync` plus awaiting `flushed` (RELIABILITY.md §3.3).
 * - an interval: `overlappingSync: true`. A commit writes pages and a meta
 *   marked "not flushed" without syncing and resolves (the write is in the OS:
 *   it survives a process crash); the writer thread then fdatasyncs and writes
 *   a "flushed" meta before it starts the next transaction. After a reboot the
 *   lmdb-js fork opens at the last flushed meta and never reuses pages an
 *   unflushed transaction freed, so a power loss costs the last unsynced
 *   commits, never consistency (RELIABILITY.md §3.2). `noSync` is never used:
 *   it can corrupt the store on power loss.
 *
 * Batching: `eventTurnBatching: false`. The store does its own group commit
 * (commit-pipeline.ts): everything written since the previous commit goes into
 * one explicit `batch()`, i.e. one transaction and one fsync, and the next
 * batch starts when the previous one settled. lmdb-js' own event-turn batching
 * would add nothing, and on a failed commit it rejects an internal promise that
 * nobody holds, which Node 20 turns into a crash (measured on a full tmpfs).
 */
import { statfsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Database, DatabaseOptions, RootDatabase, RootDatabaseOptionsWithPath } from 'lmdb';

/**
 * lmdb is required when the first environment opens, not imported at load time: a broker
 * without file streams does not pay its memory (~10 MB RSS with its native library).
 */
const requireLmdb = createRequire(import.meta.url);
function open<V, K>(options: RootDatabaseOptionsWithPath): RootDatabase<V, K & import('lmdb').Key> {
  return (requireLmdb('lmdb') as typeof import('lmdb')).open<V, K & import('lmdb').Key>(options);
}
import { StoreError, StoreErrorCode, type SyncPolicy } from '../../jetstream/store.ts';
import { SpaceReserve } from './space-reserve.ts';

/**
 * LMDB page size. 16 KiB rather than the OS's 4 KiB: a stored 128-byte message
 * takes ~178 bytes in a leaf, and larger pages lose less to partial fill
 * (measured: 1 M such messages take 196 MB of leaves with 4 KiB pages, 182 MB
 * with 16 KiB). Only applies when the environment is created.
 */
export const LMDB_PAGE_BYTES = 16384;
/** Initial map size; the lmdb-js fork grows the map (and file) as needed. */
const LMDB_MAP_BYTES_INITIAL = 64 * 1024 * 1024;
/** Named databases in use (see keys.ts) plus headroom for future ones. */
const LMDB_DATABASES_MAX = 12;
/** LMDB's default reader slots (one per thread with a read transaction). */
const LMDB_READERS_MAX = 126;
/** Below this many free bytes on the filesystem an I/O error of a commit is reported as "full". */
const FREE_BYTES_FULL_THRESHOLD = 4 * 1024 * 1024;
/**
 * Pages the open transaction of a new environment may append: it creates the
 * named databases, whose records fit in one leaf of the main database, plus
 * freelist and a margin (measured: 1 page).
 */
const OPEN_TXN_PAGES_MAX = 8;
/** The names of the named databases (keys.ts). */
const DB_NAMES = {
  meta: 'meta',
  streamIds: 'stream-ids',
  streamMetas: 'stream-metas',
  streamStates: 'stream-state',
  consumerMetas: 'consumer-metas',
  consumerStates: 'consumer-states',
  linkStates: 'link-states',
  messages: 'msgs',
  subjects: 'subject-index',
} as const;

/** Databases of the JetStream environment (key schema in keys.ts). */
/** lmdb-js' database types, for code outside core/store/lmdb that opens its own environment through openLmdbEnvironment (the Raft log). */
export type { Database as LmdbDatabase, RootDatabase as LmdbRootDatabase } from 'lmdb';

export type LmdbDatabases = {
  readonly root: RootDatabase;
  /** Keeps data.mdb allocated ahead of LMDB (space-reserve.ts); closed by the owner after `root`. */
  readonly space: SpaceReserve;
  /** `format`, `next-stream-id`. */
  readonly meta: Database<unknown, string>;
  /** Stream name → stream id. */
  readonly streamIds: Database<number, string>;
  /** Stream name → stream metadata (JSON). */
  readonly streamMetas: Database<Record<string, unknown>, string>;
  /** Stream id → counters (codec.ts). */
  readonly streamStates: Database<Buffer, Buffer>;
  /** [stream, consumer] → consumer metadata (JSON). */
  readonly consumerMetas: Database<Record<string, unknown>, [string, string]>;
  /** [stream, consumer] → consumer positions (codec.ts). */
  readonly consumerStates: Database<Buffer, [string, string]>;
  /** [stream, origin] → link sync state (JSON; core/link). */
  readonly linkStates: Database<Record<string, unknown>, [string, string]>;
  /** [streamId, seq] → message record. */
  readonly messages: Database<Buffer, Buffer>;
  /** [streamId, subject, chunk] → 2-byte sequence lows (dupsort, dupfixed). */
  readonly subjects: Database<Buffer, Buffer>;
};

/** Raw bytes in and out, for the dupsort index (lmdb-js' `binary` encoding cannot bound duplicate ranges). */
const RAW_ENCODER = {
  encode: (value: Uint8Array): Uint8Array => value,
  decode: (bytes: Uint8Array, length?: number): Buffer => Buffer.from(Uint8Array.prototype.slice.call(bytes, 0, length ?? bytes.length)),
  writeKey: (key: Uint8Array, target: Uint8Array, start: number): number => {
    target.set(key, start);
    return start + key.length;
  },
  readKey: (source: Uint8Array, start: number, end: number): Uint8Array => Uint8Array.prototype.slice.call(source, start, end),
};

/** A named database's options; `dupFixed` and `encoder` are lmdb-js options missing from its typings. */
export function named(name: string, options: Record<string, unknown>): DatabaseOptions & { name: string } {
  return { name, cache: false, compression: false, ...options } as DatabaseOptions & { name: string };
}

/** Options lmdb-js accepts beyond its typings. */
type ExplicitRootOptions = RootDatabaseOptionsWithPath & {
  readonly safeRestore: boolean;
  readonly noReadAhead: boolean;
  readonly trackMetrics: boolean;
};

export function openLmdbDatabases(path: string, syncPolicy: SyncPolicy): LmdbDatabases {
  const { root, space } = openLmdbEnvironment({ path, syncPolicy, databaseNames: Object.values(DB_NAMES) });
  try {
    return openDatabases(root, space);
  } catch (err) {
    space.close();
    throw err;
  }
}

/**
 * Opens an LMDB environment with canopy's explicit options (the file comment)
 * and its {@link SpaceReserve}, for any store that keeps its own named
 * databases (the JetStream store here, the Raft log in hub/raft-host).
 * `databaseNames`: every named database the store opens, so that a store on a
 * full disk that already has them all still opens, for reads.
 */
export function openLmdbEnvironment(options: {
  readonly path: string;
  readonly syncPolicy: SyncPolicy;
  readonly databaseNames: readonly string[];
}): { readonly root: RootDatabase<Buffer, Buffer>; readonly space: SpaceReserve } {
  const { path, syncPolicy } = options;
  const rootOptions: ExplicitRootOptions = {
    path,
    pageSize: LMDB_PAGE_BYTES,
    mapSize: LMDB_MAP_BYTES_INITIAL,
    maxDbs: LMDB_DATABASES_MAX,
    maxReaders: LMDB_READERS_MAX,
    // Durability: with `always` a resolved commit promise means synced (see the file comment).
    overlappingSync: syncPolicy !== 'always',
    separateFlushed: false,
    noSync: false,
    noMetaSync: false,
    // Never: a write into a full filesystem through the map is SIGBUS (RELIABILITY.md §3.3).
    useWritemap: false,
    // Zero unused page space before writing, so freed bytes of erased messages do not linger in new pages.
    noMemInit: false,
    remapChunks: false,
    eventTurnBatching: false,
    commitDelay: 0,
    // With overlappingSync: after a reboot open at the last flushed meta, after a process crash at the newest.
    safeRestore: false,
    noReadAhead: false,
    trackMetrics: false,
    readOnly: false,
    noSubdir: false,
    compression: false,
    cache: false,
    encoding: 'binary',
    keyEncoding: 'binary',
  };
  const root = open<Buffer, Buffer>(rootOptions);
  try {
    return { root, space: openSpaceReserve(path, root, options.databaseNames) };
  } catch (err) {
    void root.close();
    throw err;
  }
}

/** One synchronous transaction (one fsync) creates or opens every named database. */
function openDatabases(root: RootDatabase<Buffer, Buffer>, space: SpaceReserve): LmdbDatabases {
  const dbs = root.transactionSync(() => ({
    root,
    space,
    meta: root.openDB<unknown, string>(named(DB_NAMES.meta, { encoding: 'json', keyEncoding: 'ordered-binary' })),
    streamIds: root.openDB<number, string>(named(DB_NAMES.streamIds, { encoding: 'json', keyEncoding: 'ordered-binary' })),
    streamMetas: root.openDB<Record<string, unknown>, string>(
      named(DB_NAMES.streamMetas, { encoding: 'json', keyEncoding: 'ordered-binary' }),
    ),
    streamStates: root.openDB<Buffer, Buffer>(named(DB_NAMES.streamStates, { encoding: 'binary', keyEncoding: 'binary' })),
    consumerMetas: root.openDB<Record<string, unknown>, [string, string]>(
      named(DB_NAMES.consumerMetas, { encoding: 'json', keyEncoding: 'ordered-binary' }),
    ),
    consumerStates: root.openDB<Buffer, [string, string]>(
      named(DB_NAMES.consumerStates, { encoding: 'binary', keyEncoding: 'ordered-binary' }),
    ),
    linkStates: root.openDB<Record<string, unknown>, [string, string]>(
      named(DB_NAMES.linkStates, { encoding: 'json', keyEncoding: 'ordered-binary' }),
    ),
    messages: root.openDB<Buffer, Buffer>(named(DB_NAMES.messages, { encoding: 'binary', keyEncoding: 'binary' })),
    subjects: root.openDB<Buffer, Buffer>(
      named(DB_NAMES.subjects, { keyEncoding: 'binary', dupSort: true, dupFixed: true, encoder: RAW_ENCODER }),
    ),
  }));
  space.countTrees([dbs.meta, dbs.streamIds, dbs.streamMetas, dbs.streamStates, dbs.consumerMetas, dbs.consumerStates, dbs.linkStates, dbs.messages, dbs.subjects]);
  return dbs;
}

/**
 * The reserve of a freshly opened environment, with headroom for the open
 * transaction when it writes (a new environment: it creates the databases).
 * When every database exists, that transaction changes nothing and LMDB
 * commits nothing, so a store on a full disk still opens, for reads.
 */
function openSpaceReserve(path: string, root: RootDatabase, databaseNames: readonly string[]): SpaceReserve {
  const space = new SpaceReserve(join(path, 'data.mdb'), root);
  const refused = space.ensure({ bytes: OPEN_TXN_PAGES_MAX * space.pageBytes, pageCopies: new Map() });
  if (refused === undefined) return space;
  const existing = new Set<string>();
  // The main database's keys are the names of the named databases, as C strings (NUL-terminated).
  for (const key of root.getKeys()) existing.add(Buffer.from(key as Uint8Array).toString('utf8').replace(/\0$/, ''));
  if (databaseNames.every((name) => existing.has(name))) return space;
  space.close();
  throw refused;
}

const ENOSPC = 28;
const EIO = 5;
const MDB_MAP_FULL = -30792;

/**
 * The StoreError for a failed commit. lmdb-js rejects with "Commit failed"
 * whose `commitError` is a promise rejected with the cause (`code` = errno or
 * MDB code). ENOSPC and MDB_MAP_FULL are `full`. LMDB turns a short write into
 * EIO, which is how a full tmpfs shows up, so EIO with less than 4 MiB free
 * on the store's filesystem is also `full`. Everything else is `io`.
 */
export function commitStoreError(cause: unknown, code: number | undefined, storePath: string): StoreError {
  const text = cause instanceof Error ? cause.message : String(cause);
  if (code === ENOSPC || code === MDB_MAP_FULL || (code === EIO && freeBytes(storePath) < FREE_BYTES_FULL_THRESHOLD)) {
    return new StoreError(StoreErrorCode.full, `store is full: ${text}`, { cause });
  }
  return new StoreError(StoreErrorCode.io, `store write failed: ${text}`, { cause });
}

function freeBytes(path: string): number {
  try {
    const stats = statfsSync(path);
    return stats.bavail * stats.bsize;
  } catch {
    // Cannot tell: report the I/O error as such.
    return Number.POSITIVE_INFINITY;
  }
}
