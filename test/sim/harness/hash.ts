/**
 * A 53-bit chain hash over log entries, for the checkers: the hash at index i
 * covers every entry up to i, so equal hashes mean equal prefixes.
 * Not cryptographic; two independent 32-bit FNV-1a/murmur-style lanes.
 */
import type { Entry } from '../../../hub/raft/index.ts';

const LOW_LANE_BITS = 0x1f_ffff;

function mix32(hash: number, value: number): number {
  let h = Math.imul(hash ^ value, 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

export function entryDigest(entry: Entry): number {
  let h = 0x811c9dc5;
  if (entry.kind === 'normal') {
    h = mix32(h, 1);
    for (let i = 0; i < entry.data.length; i++) h = mix32(h, entry.data[i]!);
  } else {
    h = mix32(h, 2);
    h = mix32(h, entry.change.type.length);
    h = mix32(h, entry.change.nodeId);
  }
  return h;
}

/** The chain hash at `entry.index` given the chain hash at `entry.index - 1`. */
export function chainHash(previous: number, entry: Entry): number {
  const high = Math.floor(previous / 0x20_0000) >>> 0;
  const low = previous & LOW_LANE_BITS;
  const digest = entryDigest(entry);
  const nextHigh = mix32(mix32(mix32(high ^ 0x9e3779b9, entry.index), entry.term), digest);
  const nextLow = mix32(mix32(mix32(low ^ 0x85ebca6b, digest), entry.term), entry.index) & LOW_LANE_BITS;
  return nextHigh * 0x20_0000 + nextLow;
}
