/**
 * How a purge request maps onto store operations, shared by the memory and
 * LMDB stores.
 *
 * nats-server parity: server/filestore.go `PurgeEx` (2025), `purge`, `compact`:
 * - no subject (or `>`), no `seq`, no `keep`: purge everything; `lastSeq` stays,
 *   `firstSeq` becomes `lastSeq + 1`;
 * - no subject and `seq > 1`: compact, i.e. remove everything below `seq`
 *   (`keep` is then ignored); when `seq > lastSeq + 1` the stream becomes empty
 *   with `firstSeq = seq`, `lastSeq = seq - 1`, so the next message gets `seq`;
 * - otherwise remove matching messages oldest first, only those below `seq`
 *   when `seq > 1`, and at most `total matching - keep` of them when `keep > 0`
 *   (nothing when `keep >= total`). `seq` 0 and 1 both mean "no bound".
 * (memstore.go's `PurgeEx` differs only in treating `{seq: 1}` without a
 * subject as "remove nothing"; both stores here follow the file store.)
 */
import type { PurgeOptions } from '../jetstream/store.ts';
import { assert } from '../util/assert.ts';
import { compileFilter, type CompiledFilter } from './subject-filter.ts';

export type PurgePlan =
  | { readonly kind: 'all' }
  | { readonly kind: 'compact'; readonly seq: number }
  | {
      readonly kind: 'filtered';
      readonly filter: CompiledFilter;
      /** Remove only messages with seq below this (Infinity: no bound). */
      readonly seqBelow: number;
      /** Keep this many of the newest matching messages (0: keep none). */
      readonly keep: number;
    };

export function planPurge(options: PurgeOptions): PurgePlan {
  const subject = options.subject ?? '';
  const seq = options.seq ?? 0;
  const keep = options.keep ?? 0;
  assert(Number.isSafeInteger(seq) && seq >= 0, 'purge seq must be a non-negative integer');
  assert(Number.isSafeInteger(keep) && keep >= 0, 'purge keep must be a non-negative integer');
  const isAll = subject === '' || subject === '>';
  if (isAll && keep === 0 && seq <= 1) return { kind: 'all' };
  if (isAll && seq > 1) return { kind: 'compact', seq };
  return { kind: 'filtered', filter: compileFilter(isAll ? '>' : subject), seqBelow: seq > 1 ? seq : Infinity, keep };
}
