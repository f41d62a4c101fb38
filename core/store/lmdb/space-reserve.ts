/**
 * Keeps `data.mdb` allocated ahead of what LMDB uses, so that LMDB itself never
 * meets ENOSPC.
 *
 * Why: lmdb 3.5.6 handles a failed page write badly. In `mdb_page_flush` a
 * `pwrite` error (ENOSPC on ext4) makes it `sprintf` a message of more than 100
 * bytes into a `malloc(100)` buffer; glibc detects the heap overflow and aborts
 * the process (test/fault/README.md). A short write (a full tmpfs) takes another
 * path (EIO) and is survivable, a failed write is not. So canopy must never let
 * LMDB write to a block the filesystem has not allocated yet.
 *
 * How: without WRITEMAP (env.ts), LMDB grows `data.mdb` only by `pwrite`-ing
 * pages past its end, and overwrites pages in place otherwise. Overwriting a
 * block that is already allocated needs no new space, so it cannot fail with
 * ENOSPC. Before every commit, {@link SpaceReserve.ensure} compares LMDB's used
 * end (`(lastPageNumber + 1) × pageSize` of the newest meta page) with the end
 * of the file, and when the headroom is below what the batch may append plus
 * {@link SPACE_RESERVE_BYTES}, it writes zeros past the end of the file itself.
 * If that write fails with ENOSPC (or EDQUOT), the commit is refused with
 * StoreError `full` before anything reaches LMDB; nothing is lost, and the next
 * commit tries again (publishing resumes when space returns).
 *
 * Choices, with the reasoning:
 * - Zeros, written with `write()`, not `fallocate()` (which Node does not
 *   offer anyway): fallocate makes "unwritten" extents, and the first write into
 *   one converts (and may split) the extent, which can need a new extent-tree
 *   block. Written zeros are ordinary extents: LMDB's later writes are pure
 *   overwrites.
 * - No fdatasync after the zeros. ext4 with delayed allocation reserves the
 *   blocks (data, plus metadata from its own reserved pool) when `write()`
 *   returns, and `write()` is where it reports ENOSPC; later writeback of those
 *   blocks does not fail for lack of space. LMDB's next commit fdatasyncs the
 *   file and so persists the zeros too. If the machine crashes before that, the
 *   file may come back shorter, which is harmless: the reserve only ever starts
 *   from the file size it finds (`fstat`). The same holds for tmpfs (pages are
 *   charged at `write()`).
 * - Where the zeros go: only at offsets at or past the current file size. LMDB
 *   has never written there (a write would have extended the file), so no live
 *   page can be there; it may be below LMDB's used end (a page allocated and
 *   freed in the same transaction is never written), and filling it is then
 *   what keeps a hole from appearing under a page LMDB may reuse later. The
 *   zeros are written only while no commit is in flight (one batch at a time,
 *   commit-pipeline.ts), so LMDB does not extend the file concurrently.
 * - A partial extension (the disk filled up in the middle) is kept, not
 *   truncated: those blocks are allocated, sit past LMDB's used end, and count
 *   as headroom for later, smaller commits; truncating would only hand them to
 *   whatever is filling the disk. It is never more than one extension.
 * - Files created before this reserve existed may contain holes under LMDB's
 *   used end (see above); nothing here finds or fills them.
 *
 * Size: after a commit, the file extends at least {@link SPACE_RESERVE_BYTES}
 * past LMDB's used end (if the batch stayed within its bound), and at most the
 * bound of the largest recent batch plus the reserve plus one
 * {@link SPACE_EXTEND_STEP_BYTES}. A file bigger than the LMDB map is fine:
 * LMDB maps `mapSize` bytes and never reads past its used end, and a reopen
 * takes the map size from the meta page (tested).
 */
import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import { StoreError, StoreErrorCode } from '../../jetstream/store.ts';

/**
 * Headroom kept past everything a commit may append (its bound,
 * commit-pipeline.ts `batchBound`). The bound is an estimate of B-tree growth,
 * not a proof (branch pages, freelist records); this absorbs what it misses
 * before LMDB could write past the allocated end. 64 pages of 16 KiB; no
 * measured batch came near it (test/core/store/space-reserve.test.ts checks
 * that each commit leaves all of it), and it is small next to the disk of a
 * device running a store.
 */
export const SPACE_RESERVE_BYTES = 1024 * 1024;
/**
 * Extensions round the file up to a multiple of this: about one extension
 * (a few dozen `write()` calls, no sync) per MiB that LMDB grows, and at most
 * this much extra disk beyond the reserve.
 */
export const SPACE_EXTEND_STEP_BYTES = 1024 * 1024;
/** Bytes LMDB's freelist spends per freed page (a page number): every page a commit copies frees its old version. */
const FREELIST_ENTRY_BYTES = 8;
/**
 * A commit's copies in one tree are capped by the tree's pages only when
 * there are more than this many: below, the cap cannot save much, and reading
 * the statistics of every tree costs ~10 µs each.
 */
const TREE_STATS_COPIES_MIN = 64;
/** Bytes per `write()` of zeros; the zero buffer is this big and shared. */
const ZERO_WRITE_BYTES = 256 * 1024;

let zeros: Buffer | undefined;

/** What a commit may append to data.mdb (commit-pipeline.ts `batchBound`). */
export type SpaceNeed = {
  /** New pages: data, split slack, pages any commit takes. */
  readonly bytes: number;
  /**
   * Existing pages it may copy (copy-on-write), per tree. A transaction copies
   * each page at most once, so {@link SpaceReserve.ensure} caps them by the
   * pages there are: the tree's own, plus every page no tree's statistics
   * count (sub-trees of duplicates, free pages), and all together by the pages
   * LMDB uses.
   */
  readonly pageCopies: ReadonlyMap<Database<any, any>, number>;
};

/** What lmdb-js' `getStats()` returns, as far as used here (see node_modules/lmdb/src/env.cpp `info`, `stat`). */
type LmdbStats = {
  readonly lastPageNumber?: unknown;
  readonly pageSize?: unknown;
  readonly treeBranchPageCount?: unknown;
  readonly treeLeafPageCount?: unknown;
  readonly overflowPages?: unknown;
};

/** Errors of a write that mean "no space", with the text the refusal gives. */
const NO_SPACE_CAUSES: ReadonlyMap<string, string> = new Map([
  ['ENOSPC', 'No space left on device'],
  ['EDQUOT', 'Disk quota exceeded'],
]);

export class SpaceReserve {
  readonly #root: RootDatabase;
  readonly #file: string;
  readonly #fd: number;
  readonly #pageBytes: number;
  /** Every named database (countTrees). */
  #trees: readonly Database<any, any>[] = [];
  /** The file size as last seen or extended to: every byte below it is allocated. */
  #allocatedEnd: number;
  #isClosed = false;

  /** `file` is the environment's `data.mdb`, opened by LMDB already. */
  constructor(file: string, root: RootDatabase) {
    this.#root = root;
    this.#file = file;
    this.#pageBytes = numberStat(this.#stats(), 'pageSize');
    // Write-only, never O_TRUNC, O_CREAT or O_APPEND: positioned writes past the end only.
    this.#fd = openSync(file, constants.O_WRONLY);
    this.#allocatedEnd = fstatSync(this.#fd).size;
  }

  /** LMDB's page size for this environment (from the environment, not the option). */
  get pageBytes(): number {
    return this.#pageBytes;
  }

  /** LMDB's used end: every page up to the newest meta page's last page number. */
  get usedEnd(): number {
    return (numberStat(this.#stats(), 'lastPageNumber') + 1) * this.#pageBytes;
  }

  /** The environment's named databases, whose page counts cap a commit's copies (SpaceNeed). */
  countTrees(trees: readonly Database<any, any>[]): void {
    this.#trees = trees;
  }

  /** The size of data.mdb as this reserve last saw or made it. */
  get allocatedEnd(): number {
    return this.#allocatedEnd;
  }

  /**
   * Makes sure what a commit may append, plus {@link SPACE_RESERVE_BYTES}, is
   * allocated past LMDB's used end; returns the refusal (`full` when the
   * filesystem is out of space, `io` for any other write error), or undefined.
   * Must not be called while a commit is in flight. Costs one `getStats()`
   * (~6 µs, no syscall) when the headroom suffices, plus the statistics of
   * every tree (~10 µs each) when a batch copies many pages of one tree.
   */
  ensure(need: SpaceNeed): StoreError | undefined {
    let usedEnd: number;
    let appendBytes: number;
    try {
      usedEnd = this.usedEnd;
      appendBytes = this.appendBytes(need, usedEnd);
    } catch (err) {
      return err instanceof StoreError ? err : new StoreError(StoreErrorCode.io, `store write failed: ${errorText(err)}`, { cause: err });
    }
    const target = usedEnd + appendBytes + SPACE_RESERVE_BYTES;
    if (target <= this.#allocatedEnd) return undefined;
    return this.#extend(target);
  }

  /** The bytes a commit of `need` may append past `usedEnd`: its new pages, and its page copies as capped (SpaceNeed). */
  appendBytes(need: SpaceNeed, usedEnd: number): number {
    return need.bytes + this.#cappedCopies(need.pageCopies, usedEnd / this.#pageBytes) * (this.#pageBytes + FREELIST_ENTRY_BYTES);
  }

  /** Closes the file (once; later calls do nothing). */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    closeSync(this.#fd);
  }

  #extend(target: number): StoreError | undefined {
    let end: number;
    try {
      // LMDB may have written past what was allocated here (a batch beyond its bound).
      end = fstatSync(this.#fd).size;
    } catch (err) {
      return new StoreError(StoreErrorCode.io, `store write failed: ${errorText(err)}`, { cause: err });
    }
    this.#allocatedEnd = end;
    if (end >= target) return undefined;
    const goal = Math.ceil(target / SPACE_EXTEND_STEP_BYTES) * SPACE_EXTEND_STEP_BYTES;
    zeros ??= Buffer.alloc(ZERO_WRITE_BYTES);
    try {
      while (end < goal) {
        const written = writeSync(this.#fd, zeros, 0, Math.min(zeros.length, goal - end), end);
        if (written <= 0) break;
        end += written;
        this.#allocatedEnd = end;
      }
    } catch (err) {
      if (end >= target) return undefined;
      const code = (err as { code?: unknown }).code;
      const noSpace = typeof code === 'string' ? NO_SPACE_CAUSES.get(code) : undefined;
      const short = `${target - end} more bytes needed in ${basename(this.#file)}`;
      if (noSpace !== undefined) return new StoreError(StoreErrorCode.full, `store is full: ${noSpace} (${short})`, { cause: err });
      return new StoreError(StoreErrorCode.io, `store write failed: ${errorText(err)} (${short})`, { cause: err });
    }
    if (end >= target) return undefined;
    return new StoreError(StoreErrorCode.full, `store is full: a write of zeros made no progress (${target - end} more bytes needed)`);
  }

  #cappedCopies(copies: ReadonlyMap<Database<any, any>, number>, usedPages: number): number {
    let total = 0;
    let untrackedPages: number | undefined;
    for (const [tree, count] of copies) {
      if (count <= TREE_STATS_COPIES_MIN) {
        total += count;
        continue;
      }
      if (untrackedPages === undefined) {
        let tracked = 0;
        for (const each of this.#trees) tracked += treePages(each);
        untrackedPages = Math.max(0, usedPages - tracked);
      }
      total += Math.min(count, treePages(tree) + untrackedPages);
    }
    return Math.min(total, usedPages);
  }

  #stats(): LmdbStats {
    return this.#root.getStats() as LmdbStats;
  }
}

/** Pages of one tree as its statistics count them: branches, leaves, overflow (not sub-trees of duplicates). */
function treePages(tree: Database<any, any>): number {
  const stats = tree.getStats() as LmdbStats;
  return numberStat(stats, 'treeBranchPageCount') + numberStat(stats, 'treeLeafPageCount') + numberStat(stats, 'overflowPages');
}

function numberStat(stats: LmdbStats, name: keyof LmdbStats): number {
  const value = stats[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new StoreError(StoreErrorCode.io, `lmdb getStats() has no numeric ${name}`);
  }
  return value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
