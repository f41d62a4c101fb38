/**
 * Subject routing: a token trie of subscriptions with a bounded match cache.
 *
 * nats-server parity: server/sublist.go. Each trie level maps literal tokens
 * to nodes and has dedicated `*` (pwc) and `>` (fwc) children; each node holds
 * its plain subscriptions and its queue subscriptions grouped by queue name.
 * `match` walks the literal token, the `*` child and the `>` child at every
 * level. Results are cached per published subject; an insert or remove updates
 * or evicts only the cached subjects its subscription subject matches (nats-
 * server `addToCache`/`removeFromCache`), and bumps `genid` so callers keeping
 * their own L1 cache (nats-server client.go `c.in.results`) can drop it.
 *
 * Not concurrent and not re-entrant: Node runs it on one thread.
 */
import { assert } from '../util/assert.ts';
import { FULL_WILDCARD, PARTIAL_WILDCARD, subjectHasWildcard, subjectMatchesFilter } from './subject.ts';

/** Default bound of the match cache (nats-server `slCacheMax`). */
export const SUBLIST_CACHE_ENTRIES_MAX = 1024;

/**
 * Size at which an {@link EntryBag} builds an identity index, so removing one
 * of many subscriptions on the same subject stays O(1) (a connection closing
 * while thousands of others share its `events.>` subscription).
 */
const BAG_INDEX_ENTRIES_MIN = 32;

/** What the sublist stores. Both fields must not change while inserted. */
export interface SublistEntry {
  /** A valid subscription subject (`isValidSubject`); wildcards allowed. */
  readonly subject: string;
  /** Queue group name, `''` for a plain subscription. */
  readonly queue: string;
}

/**
 * The subscriptions matching one published subject: an immutable snapshot.
 * The arrays are shared with the cache and other callers and are never
 * changed after `match` returns them (an insert replaces a cached result with
 * a copy); hold them as long as needed, never write to them. Order within each
 * array is unspecified.
 */
export interface SublistResult<T> {
  /** Plain (non-queue) subscriptions; each gets a copy of the message. */
  readonly plain: readonly T[];
  /** One non-empty array per queue group name; one member of each gets the message. */
  readonly queues: readonly (readonly T[])[];
}

/** Counters for /subsz; field meanings follow nats-server `SublistStats`. */
export interface SublistStats {
  /** Subscriptions stored (`num_subscriptions`). */
  readonly count: number;
  /** Cached results (`num_cache`). */
  readonly cacheCount: number;
  /** Successful inserts since creation (`num_inserts`). */
  readonly inserts: number;
  /** Successful removes since creation (`num_removes`). */
  readonly removes: number;
  /** `match` calls since creation (`num_matches`). */
  readonly matches: number;
  /** `match` calls answered from the cache. */
  readonly cacheHits: number;
  /** `cacheHits / matches`, 0 before the first match (`cache_hit_rate`). */
  readonly cacheHitRate: number;
  /** Largest `plain.length + queues.length` over cached results (`max_fanout`). */
  readonly maxFanout: number;
  /** Mean `plain.length + queues.length` over cached results (`avg_fanout`). */
  readonly avgFanout: number;
}

/** Options for {@link Sublist}. */
export interface SublistOptions {
  /** Match cache bound; 0 disables the cache. Default {@link SUBLIST_CACHE_ENTRIES_MAX}. */
  readonly cacheEntriesMax?: number;
}

/**
 * The shared result for "no interest" (nats-server `emptyResult`). Results are
 * not `Object.freeze`d: frozen objects and arrays get other hidden classes, which
 * made the router's reads polymorphic and cost about 40% of cached match
 * throughput when measured. The `readonly` types are the guard.
 */
const EMPTY_RESULT: SublistResult<never> = { plain: [], queues: [] };

/** A set of entries kept as an array for fast iteration, with O(1) removal once large. */
class EntryBag<T> {
  /** Queue group name (`''` for the plain bag). */
  readonly name: string;
  /** The entries, unordered. Read-only for everyone but this class. */
  readonly items: T[] = [];
  /** Entry → position in `items`; only while the bag is large. */
  #index: Map<T, number> | null = null;

  constructor(name: string) {
    this.name = name;
  }

  /** Adds `entry`; false when it is already present. */
  add(entry: T): boolean {
    const items = this.items;
    if (this.#index !== null) {
      if (this.#index.has(entry)) return false;
      this.#index.set(entry, items.length);
    } else if (items.includes(entry)) {
      return false;
    } else if (items.length + 1 >= BAG_INDEX_ENTRIES_MIN) {
      this.#index = new Map();
      for (let i = 0; i < items.length; i++) this.#index.set(items[i]!, i);
      this.#index.set(entry, items.length);
    }
    items.push(entry);
    return true;
  }

  /** Removes `entry` (swap with the last one); false when it is absent. */
  delete(entry: T): boolean {
    const items = this.items;
    const index = this.#index === null ? items.lastIndexOf(entry) : (this.#index.get(entry) ?? -1);
    if (index === -1) return false;
    const last = items.pop()!;
    if (index < items.length) {
      items[index] = last;
      this.#index?.set(last, index);
    }
    if (this.#index !== null) {
      this.#index.delete(entry);
      if (items.length < BAG_INDEX_ENTRIES_MIN >> 1) this.#index = null;
    }
    return true;
  }
}

/** A trie node: the subscriptions whose subject ends here, and the next level. */
class SublistNode<T> {
  next: SublistLevel<T> | null = null;
  plain: EntryBag<T> | null = null;
  /** Queue groups, at most one per name; null when none. */
  queues: EntryBag<T>[] | null = null;

  get isEmpty(): boolean {
    return this.plain === null && this.queues === null && this.next === null;
  }

  queueGroup(name: string): EntryBag<T> | undefined {
    const queues = this.queues;
    if (queues === null) return undefined;
    for (let i = 0; i < queues.length; i++) {
      if (queues[i]!.name === name) return queues[i];
    }
    return undefined;
  }
}

/** One token position: literal children plus the `*` and `>` children. */
class SublistLevel<T> {
  readonly nodes = new Map<string, SublistNode<T>>();
  pwc: SublistNode<T> | null = null;
  fwc: SublistNode<T> | null = null;

  get isEmpty(): boolean {
    return this.nodes.size === 0 && this.pwc === null && this.fwc === null;
  }
}

/**
 * Stores subscriptions and finds those matching a published subject.
 * Entries are compared by identity.
 */
export class Sublist<T extends SublistEntry> {
  readonly #root = new SublistLevel<T>();
  /** Published subject → result; null when the cache is disabled. */
  readonly #cache: Map<string, SublistResult<T>> | null;
  readonly #cacheEntriesMax: number;
  /** Scratch: tokens of the subject being matched/inserted/removed. */
  readonly #tokens: string[] = [];
  /** Scratch for `remove`: the level and node at each token, for pruning. */
  readonly #pathLevels: SublistLevel<T>[] = [];
  readonly #pathNodes: SublistNode<T>[] = [];
  #count = 0;
  #nodeCount = 0;
  #genid = 0;
  #inserts = 0;
  #removes = 0;
  #matches = 0;
  #cacheHits = 0;

  constructor(options: SublistOptions = {}) {
    const cacheEntriesMax = options.cacheEntriesMax ?? SUBLIST_CACHE_ENTRIES_MAX;
    assert(Number.isSafeInteger(cacheEntriesMax) && cacheEntriesMax >= 0, 'cacheEntriesMax must be an integer >= 0');
    this.#cacheEntriesMax = cacheEntriesMax;
    this.#cache = cacheEntriesMax > 0 ? new Map() : null;
  }

  /** Subscriptions stored. */
  get count(): number {
    return this.#count;
  }

  /** Results currently cached (never more than `cacheEntriesMax`). */
  get cacheCount(): number {
    return this.#cache === null ? 0 : this.#cache.size;
  }

  /** Trie nodes allocated; 0 when empty (pruning works). */
  get nodeCount(): number {
    return this.#nodeCount;
  }

  /** Changes on every successful insert and remove; never decreases. */
  get genid(): number {
    return this.#genid;
  }

  /**
   * Adds `entry`. The caller has validated `entry.subject` (`isValidSubject`);
   * inserting an invalid subject or the same entry twice is a programmer error.
   */
  insert(entry: T): void {
    const subject = entry.subject;
    const count = this.#tokenize(subject);
    assert(count > 0, 'sublist insert: subject has an empty token');
    const tokens = this.#tokens;
    // Checked before the walk so that a failed assertion leaves no nodes behind.
    for (let i = 0; i < count - 1; i++) assert(tokens[i] !== FULL_WILDCARD, 'sublist insert: ">" is not the last token');
    let level = this.#root;
    let node: SublistNode<T> | undefined;
    for (let i = 0; i < count; i++) {
      const token = tokens[i]!;
      if (token === FULL_WILDCARD) {
        node = level.fwc ?? (level.fwc = this.#newNode());
      } else if (token === PARTIAL_WILDCARD) {
        node = level.pwc ?? (level.pwc = this.#newNode());
      } else {
        node = level.nodes.get(token);
        if (node === undefined) {
          node = this.#newNode();
          level.nodes.set(token, node);
        }
      }
      if (i < count - 1) level = node.next ?? (node.next = new SublistLevel());
    }
    assert(node !== undefined, 'sublist insert: no node');
    const isAdded = addToNode(node, entry);
    assert(isAdded, 'sublist insert: entry is already present');
    this.#count++;
    this.#inserts++;
    this.#genid++;
    this.#addToCache(entry);
  }

  /** Removes `entry` (by identity); false when it is not stored. Prunes empty nodes. */
  remove(entry: T): boolean {
    if (!this.#removeFromTrie(entry)) return false;
    this.#genid++;
    this.#removeFromCache(entry.subject);
    return true;
  }

  /**
   * Removes many entries at once (a closing connection): clears the cache
   * once instead of scanning it per wildcard entry (nats-server `RemoveBatch`).
   * Returns how many were removed.
   */
  removeBatch(entries: readonly T[]): number {
    let removed = 0;
    for (let i = 0; i < entries.length; i++) {
      if (this.#removeFromTrie(entries[i]!)) removed++;
    }
    if (removed > 0) {
      this.#genid++;
      this.#cache?.clear();
    }
    return removed;
  }

  /**
   * The subscriptions matching published `subject`. `*`/`>` tokens in
   * `subject` (non-pedantic publishers) are literal tokens: a subscription on
   * `foo.*` matches a publish to `foo.*`, one on `foo.bar` does not. A subject
   * with an empty token matches nothing. A cache hit is one Map lookup.
   */
  match(subject: string): SublistResult<T> {
    this.#matches++;
    const cache = this.#cache;
    if (cache !== null) {
      const cached = cache.get(subject);
      if (cached !== undefined) {
        this.#cacheHits++;
        return cached;
      }
    }
    const count = this.#tokenize(subject);
    // nats-server parity: sublist.go match returns emptyResult, uncached, for an empty token.
    if (count < 0) return EMPTY_RESULT;
    const plain: T[] = [];
    const queues: T[][] = [];
    matchLevel(this.#root, this.#tokens, 0, count, plain, queues);
    const result = plain.length === 0 && queues.length === 0 ? EMPTY_RESULT : { plain, queues };
    if (cache !== null) this.#cacheSet(cache, subject, result);
    return result;
  }

  /** True when `match(subject)` would return something. Leaves the counters alone. */
  hasInterest(subject: string): boolean {
    const cached = this.#cache?.get(subject);
    if (cached !== undefined) return cached.plain.length > 0 || cached.queues.length > 0;
    const count = this.#tokenize(subject);
    if (count < 0) return false;
    return hasInterestLevel(this.#root, this.#tokens, 0, count);
  }

  /** Appends every stored entry to `out` (for /subsz) and returns it. */
  all(out: T[] = []): T[] {
    collectAll(this.#root, out);
    return out;
  }

  /** Counters and cache fan-out (nats-server `Sublist.Stats`). Walks the cache: not for the hot path. */
  stats(): SublistStats {
    let fanoutTotal = 0;
    let fanoutMax = 0;
    let cached = 0;
    if (this.#cache !== null) {
      for (const result of this.#cache.values()) {
        const fanout = result.plain.length + result.queues.length;
        fanoutTotal += fanout;
        if (fanout > fanoutMax) fanoutMax = fanout;
        cached++;
      }
    }
    return {
      count: this.#count,
      cacheCount: cached,
      inserts: this.#inserts,
      removes: this.#removes,
      matches: this.#matches,
      cacheHits: this.#cacheHits,
      cacheHitRate: this.#matches > 0 ? this.#cacheHits / this.#matches : 0,
      maxFanout: fanoutMax,
      avgFanout: fanoutTotal > 0 ? fanoutTotal / cached : 0,
    };
  }

  #newNode(): SublistNode<T> {
    this.#nodeCount++;
    return new SublistNode();
  }

  /**
   * Splits `subject` into `#tokens`; returns the token count, or -1 when the
   * subject is empty or has an empty token.
   */
  #tokenize(subject: string): number {
    const length = subject.length;
    if (length === 0) return -1;
    const tokens = this.#tokens;
    let count = 0;
    let start = 0;
    for (;;) {
      const dot = subject.indexOf('.', start);
      const end = dot === -1 ? length : dot;
      if (end === start) return -1;
      tokens[count++] = subject.substring(start, end);
      if (dot === -1) return count;
      start = dot + 1;
    }
  }

  #removeFromTrie(entry: T): boolean {
    const count = this.#tokenize(entry.subject);
    if (count < 0) return false;
    const tokens = this.#tokens;
    const pathLevels = this.#pathLevels;
    const pathNodes = this.#pathNodes;
    let level: SublistLevel<T> | null = this.#root;
    for (let i = 0; i < count; i++) {
      if (level === null) return false;
      const token = tokens[i]!;
      const node: SublistNode<T> | null | undefined =
        token === FULL_WILDCARD ? level.fwc : token === PARTIAL_WILDCARD ? level.pwc : level.nodes.get(token);
      if (node === null || node === undefined) return false;
      pathLevels[i] = level;
      pathNodes[i] = node;
      level = node.next;
    }
    if (!removeFromNode(pathNodes[count - 1]!, entry)) return false;
    this.#count--;
    this.#removes++;
    this.#prune(count);
    return true;
  }

  /** Detaches the empty nodes on the recorded path, deepest first. */
  #prune(count: number): void {
    const tokens = this.#tokens;
    for (let i = count - 1; i >= 0; i--) {
      const node = this.#pathNodes[i]!;
      const level = this.#pathLevels[i]!;
      if (node.next !== null && node.next.isEmpty) node.next = null;
      if (!node.isEmpty) return;
      if (node === level.fwc) level.fwc = null;
      else if (node === level.pwc) level.pwc = null;
      else level.nodes.delete(tokens[i]!);
      this.#nodeCount--;
    }
  }

  /** Adds `result` for `subject`, first dropping the oldest quarter when full. */
  #cacheSet(cache: Map<string, SublistResult<T>>, subject: string, result: SublistResult<T>): void {
    if (cache.size >= this.#cacheEntriesMax) {
      // Map iterates in insertion order: the first keys are the oldest. Dropping a
      // quarter at once amortizes the sweep (nats-server reduceCacheCount drains
      // from over 1024 down to 256, in the background).
      const target = this.#cacheEntriesMax - Math.max(1, this.#cacheEntriesMax >> 2);
      for (const key of cache.keys()) {
        if (cache.size <= target) break;
        cache.delete(key);
      }
    }
    cache.set(subject, result);
  }

  /**
   * Adds a new entry to the cached results it matches (copy-on-write: callers
   * may hold the old result). nats-server parity: sublist.go `addToCache`.
   */
  #addToCache(entry: T): void {
    const cache = this.#cache;
    if (cache === null || cache.size === 0) return;
    const subject = entry.subject;
    if (!subjectHasWildcard(subject)) {
      const result = cache.get(subject);
      if (result !== undefined) cache.set(subject, resultWithEntry(result, entry));
      return;
    }
    for (const [key, result] of cache) {
      if (subjectMatchesFilter(key, subject)) cache.set(key, resultWithEntry(result, entry));
    }
  }

  /** Evicts the cached results a removed subject matched. nats-server parity: sublist.go `removeFromCache`. */
  #removeFromCache(subject: string): void {
    const cache = this.#cache;
    if (cache === null || cache.size === 0) return;
    if (!subjectHasWildcard(subject)) {
      cache.delete(subject);
      return;
    }
    for (const key of cache.keys()) {
      if (subjectMatchesFilter(key, subject)) cache.delete(key);
    }
  }
}

function addToNode<T extends SublistEntry>(node: SublistNode<T>, entry: T): boolean {
  const name = entry.queue;
  if (name === '') {
    node.plain ??= new EntryBag<T>('');
    return node.plain.add(entry);
  }
  let group = node.queueGroup(name);
  if (group === undefined) {
    group = new EntryBag<T>(name);
    (node.queues ??= []).push(group);
  }
  return group.add(entry);
}

/** Removes `entry`, dropping bags that become empty; false when absent. */
function removeFromNode<T extends SublistEntry>(node: SublistNode<T>, entry: T): boolean {
  const name = entry.queue;
  if (name === '') {
    const plain = node.plain;
    if (plain === null || !plain.delete(entry)) return false;
    if (plain.items.length === 0) node.plain = null;
    return true;
  }
  const group = node.queueGroup(name);
  if (group === undefined || !group.delete(entry)) return false;
  if (group.items.length === 0) {
    const queues = node.queues!;
    queues.splice(queues.indexOf(group), 1);
    if (queues.length === 0) node.queues = null;
  }
  return true;
}

/**
 * Collects into `plain`/`queues` every node below `root` matching
 * `tokens[start, count)`: at each level the `>` child matches the rest, the
 * `*` child is descended into for the rest, and the literal child is followed.
 * Positional parameters on purpose: this recurses per `*` level on every
 * uncached publish, and an options object would be an allocation per call.
 */
function matchLevel<T extends SublistEntry>(
  root: SublistLevel<T>,
  tokens: readonly string[],
  start: number,
  count: number,
  plain: T[],
  queues: T[][],
): void {
  let level: SublistLevel<T> | null = root;
  let node: SublistNode<T> | undefined;
  let pwc: SublistNode<T> | null = null;
  for (let i = start; i < count; i++) {
    if (level === null) return;
    if (level.fwc !== null) addNodeToResult(level.fwc, plain, queues);
    pwc = level.pwc;
    if (pwc !== null && pwc.next !== null && i + 1 < count) {
      matchLevel(pwc.next, tokens, i + 1, count, plain, queues);
    }
    node = level.nodes.get(tokens[i]!);
    level = node === undefined ? null : node.next;
  }
  if (node !== undefined) addNodeToResult(node, plain, queues);
  if (pwc !== null) addNodeToResult(pwc, plain, queues);
}

function addNodeToResult<T extends SublistEntry>(node: SublistNode<T>, plain: T[], queues: T[][]): void {
  if (node.plain !== null) {
    const items = node.plain.items;
    for (let i = 0; i < items.length; i++) plain.push(items[i]!);
  }
  const groups = node.queues;
  if (groups === null) return;
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g]!;
    const slot = findQueueSlot(queues, group.name);
    const members = slot === -1 ? [] : queues[slot]!;
    if (slot === -1) queues.push(members);
    const items = group.items;
    for (let i = 0; i < items.length; i++) members.push(items[i]!);
  }
}

/** Index of the result group named `name`, or -1 (nats-server `findQSlot`: few groups, a scan beats a Map). */
function findQueueSlot<T extends SublistEntry>(queues: readonly (readonly T[])[], name: string): number {
  for (let i = 0; i < queues.length; i++) {
    if (queues[i]![0]!.queue === name) return i;
  }
  return -1;
}

function hasInterestLevel<T>(root: SublistLevel<T>, tokens: readonly string[], start: number, count: number): boolean {
  let level: SublistLevel<T> | null = root;
  let node: SublistNode<T> | undefined;
  let pwc: SublistNode<T> | null = null;
  for (let i = start; i < count; i++) {
    if (level === null) return false;
    if (level.fwc !== null) return true; // nodes hold entries or children; a bare `>` node holds entries
    pwc = level.pwc;
    if (pwc !== null && pwc.next !== null && i + 1 < count && hasInterestLevel(pwc.next, tokens, i + 1, count)) {
      return true;
    }
    node = level.nodes.get(tokens[i]!);
    level = node === undefined ? null : node.next;
  }
  return (node !== undefined && hasEntries(node)) || (pwc !== null && hasEntries(pwc));
}

function hasEntries<T>(node: SublistNode<T>): boolean {
  return node.plain !== null || node.queues !== null;
}

function collectAll<T>(level: SublistLevel<T>, out: T[]): void {
  for (const node of level.nodes.values()) collectNode(node, out);
  if (level.pwc !== null) collectNode(level.pwc, out);
  if (level.fwc !== null) collectNode(level.fwc, out);
}

function collectNode<T>(node: SublistNode<T>, out: T[]): void {
  if (node.plain !== null) pushAll(out, node.plain.items);
  if (node.queues !== null) {
    for (let g = 0; g < node.queues.length; g++) pushAll(out, node.queues[g]!.items);
  }
  if (node.next !== null) collectAll(node.next, out);
}

/** `out.push(...items)` without the argument-count limit of a spread. */
function pushAll<T>(out: T[], items: readonly T[]): void {
  for (let i = 0; i < items.length; i++) out.push(items[i]!);
}

/** A new result: `result` plus `entry` (copy-on-write; unchanged groups are shared). */
function resultWithEntry<T extends SublistEntry>(result: SublistResult<T>, entry: T): SublistResult<T> {
  if (entry.queue === '') {
    const plain = result.plain.slice();
    plain.push(entry);
    return { plain, queues: result.queues };
  }
  const queues = result.queues.slice();
  const slot = findQueueSlot(queues, entry.queue);
  if (slot === -1) {
    queues.push([entry]);
  } else {
    const members = queues[slot]!.slice();
    members.push(entry);
    queues[slot] = members;
  }
  return { plain: result.plain, queues };
}
