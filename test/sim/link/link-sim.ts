/**
 * One seeded simulation run of leaf↔hub stream sync under faults (core/link/README.md
 * "Stream sync rules"; STYLE.md §2.8 (3), house rule 10).
 *
 * Method. The seed picks a profile: one or two leaves, heartbeats, backoff, windows, batch
 * limits, network and disk latencies, the streams (upstream on each leaf, downstream on the
 * hub, each keeping data either by limits or until every peer acknowledged it) and a random
 * subset of fault kinds (swarm testing, as in the Raft simulator). A chaos phase publishes,
 * deletes by limits, purges, deletes single messages and re-creates streams while the faults
 * hit; the checkers (link-checker.ts) run on every write, frame, flush and crash. Then
 * everything heals — except half-open connections, which only heartbeats can find — and the
 * liveness phase requires, within a bound of virtual time, every receiver's durable copy to
 * equal its sender's stream exactly (minus true gaps) and every sender to know it.
 *
 * Same seed → same run → byte-identical transcript.
 */
import { HubConnection, LeafConnection, LinkReceiver, LinkSender } from '../../../core/link/index.ts';
import { SeededPrng } from '../../../core/util/prng.ts';
import { SafetyViolation } from '../harness/checkers.ts';
import type { HostBugs, LinkImpl, SimNode, WorldOptions, WorldStats } from './link-world.ts';
import { LinkWorld } from './link-world.ts';
import type { SimStream } from './sim-store.ts';

export const REAL_LINK_IMPL: LinkImpl = { LinkSender, LinkReceiver, LeafConnection, HubConnection };

export type LinkSimOptions = {
  readonly seed: number;
  readonly isTranscriptOn: boolean;
  readonly impl: LinkImpl;
  readonly bugs: HostBugs;
  /** Virtual ms of the fault phase. */
  readonly chaosMs: number;
};

export const LINK_SIM_DEFAULTS = {
  isTranscriptOn: false,
  impl: REAL_LINK_IMPL,
  bugs: { ackBeforeFlush: false },
  chaosMs: 20_000,
} as const satisfies Omit<LinkSimOptions, 'seed'>;

export type LinkSimResult = {
  readonly seed: number;
  readonly isOk: boolean;
  readonly failure: string | undefined;
  readonly profile: string;
  readonly transcript: readonly string[];
  readonly stats: WorldStats;
  readonly checks: number;
  /** Virtual ms from healing to convergence (undefined when it failed). */
  readonly convergeMs: number | undefined;
  readonly endTime: number;
};

const FAULT_KINDS = [
  'reset',
  'blackhole',
  'half-open',
  'partition',
  'crash-leaf',
  'crash-hub',
  'power-loss',
  'limits',
  'purge',
  'delete-msg',
  'recreate',
  'window',
  'auth',
  'slow-disk',
] as const;
type FaultKind = (typeof FAULT_KINDS)[number];
const DISRUPTIONS: readonly FaultKind[] = ['reset', 'blackhole', 'half-open', 'partition', 'crash-leaf', 'crash-hub', 'power-loss', 'auth', 'slow-disk'];

const WINDOW_CHOICES = [1024, 2048, 4096, 16_384, 262_144] as const;

type StreamPlan = { readonly node: string; readonly name: string; readonly retention: 'any' | 'acked'; readonly publishEveryMax: number };

type Profile = {
  readonly world: Omit<WorldOptions, 'seed' | 'isTranscriptOn' | 'impl' | 'bugs'>;
  readonly faults: readonly FaultKind[];
  /** Disruptions (connections, processes, auth) come every faultGapMax/10 … faultGapMax ms. */
  readonly faultGapMax: number;
  /** Stream edits (purge, delete, re-create, window) every editGapMax/10 … editGapMax ms. */
  readonly editGapMax: number;
  readonly streams: readonly StreamPlan[];
  readonly bigMessageChance: number;
};

function pick<T>(prng: SeededPrng, items: readonly T[]): T {
  return items[prng.between(0, items.length - 1)]!;
}

function chooseProfile(prng: SeededPrng): Profile {
  const leafCount = prng.chance(0.3) ? 2 : 1;
  const leafHeartbeatMs = prng.between(100, 1000);
  const hubHeartbeatMs = prng.between(100, 1000);
  const backoffBaseMs = prng.between(5, 200);
  let batchMsgsMax = pick(prng, [1, 2, 5, 20, 100]);
  let inflightBatchesMax = pick(prng, [1, 2, 4, 16]);
  // At least four messages per round trip, so the liveness bound holds for every profile.
  if (batchMsgsMax * inflightBatchesMax < 4) inflightBatchesMax = 4;
  if (batchMsgsMax === 1 && inflightBatchesMax < 4) batchMsgsMax = 2;
  const delayMin = prng.between(1, 5);
  const refusedStreams = prng.chance(0.2) ? ['up-r'] : [];
  const streams: StreamPlan[] = [];
  for (let leaf = 1; leaf <= leafCount; leaf++) {
    const count = prng.between(1, 3);
    for (let i = 0; i < count; i++) streams.push({ node: `leaf${leaf}`, name: `up-${i}`, retention: prng.chance(0.4) ? 'acked' : 'any', publishEveryMax: prng.between(30, 400) });
    if (refusedStreams.length > 0) streams.push({ node: `leaf${leaf}`, name: 'up-r', retention: 'any', publishEveryMax: 400 });
  }
  const downCount = prng.between(0, 2);
  for (let i = 0; i < downCount; i++) streams.push({ node: 'hub', name: `down-${i}`, retention: prng.chance(0.4) ? 'acked' : 'any', publishEveryMax: prng.between(30, 400) });
  return {
    world: {
      leafCount,
      leafHeartbeatMs,
      hubHeartbeatMs,
      backoffBaseMs,
      backoffMaxMs: prng.between(backoffBaseMs, 3000),
      tickMs: prng.between(10, Math.floor(Math.min(leafHeartbeatMs, hubHeartbeatMs) / 3)),
      leafWindowBytes: pick(prng, WINDOW_CHOICES),
      hubWindowBytes: pick(prng, WINDOW_CHOICES),
      batchMsgsMax,
      batchBytesMax: pick(prng, [256, 1024, 4096, 65_536]),
      inflightBatchesMax,
      delayMin,
      delayMax: prng.between(delayMin, prng.chance(0.2) ? 200 : 40),
      diskLatencyMin: 1,
      diskLatencyMax: prng.chance(0.3) ? prng.between(10, 150) : prng.between(1, 10),
      pumpDelayMax: prng.between(0, 5),
      // Version negotiation: the newest common one (2 when both speak it, else 1).
      leafVersions: prng.chance(0.3) ? [2, 1] : prng.chance(0.2) ? [3, 1] : [1],
      hubVersions: prng.chance(0.3) ? [2, 1] : [1],
      refusedStreams,
    },
    faults: FAULT_KINDS.filter(() => prng.chance(0.5)),
    faultGapMax: prng.between(1000, 6000),
    editGapMax: prng.between(500, 5000),
    streams,
    bigMessageChance: prng.chance(0.5) ? 0.05 : 0,
  };
}

function describeProfile(profile: Profile): string {
  const w = profile.world;
  return [
    `leaves=${w.leafCount}`,
    `faults=${profile.faults.length === 0 ? 'none' : profile.faults.join(',')}`,
    `heartbeat=${w.leafHeartbeatMs}/${w.hubHeartbeatMs}`,
    `backoff=${w.backoffBaseMs}..${w.backoffMaxMs}`,
    `window=${w.leafWindowBytes}/${w.hubWindowBytes}`,
    `batch=${w.batchMsgsMax}msgs/${w.batchBytesMax}B inflight=${w.inflightBatchesMax}`,
    `delay=${w.delayMin}..${w.delayMax}`,
    `disk=${w.diskLatencyMin}..${w.diskLatencyMax}`,
    `streams=${profile.streams.map((s) => `${s.node}:${s.name}${s.retention === 'acked' ? '(acked)' : ''}`).join(',')}`,
  ].join(' ');
}

/** Runs one seed to completion. Never throws for a protocol failure: it reports it. */
export function runLinkSeed(options: LinkSimOptions): LinkSimResult {
  const prng = new SeededPrng(options.seed);
  const profile = chooseProfile(prng.fork());
  const world = new LinkWorld({ ...profile.world, seed: prng.nextU32(), isTranscriptOn: options.isTranscriptOn, impl: options.impl, bugs: options.bugs });
  const run = new SimRun({ world, profile, prng: prng.fork(), options });
  let failure: string | undefined;
  try {
    run.execute();
  } catch (error) {
    if (error instanceof SafetyViolation) failure = `safety: ${error.message}`;
    else if (error instanceof Error) failure = `${error.name}: ${error.message}\n${error.stack ?? ''}`;
    else failure = String(error);
    world.note(`FAILED ${failure.split('\n')[0] ?? ''}`);
  }
  if (failure === undefined && run.livenessFailure !== undefined) {
    failure = run.livenessFailure;
    world.note(`FAILED ${failure}`);
  }
  world.note(`END ${JSON.stringify(world.stats)} checks=${world.checker.checks}`);
  if (options.isTranscriptOn) world.transcript.unshift(`SEED=${options.seed} ${describeProfile(profile)}`);
  return {
    seed: options.seed,
    isOk: failure === undefined,
    failure,
    profile: describeProfile(profile),
    transcript: world.transcript,
    stats: world.stats,
    checks: world.checker.checks,
    convergeMs: run.convergeMs,
    endTime: world.now,
  };
}

class SimRun {
  readonly #world: LinkWorld;
  readonly #profile: Profile;
  readonly #prng: SeededPrng;
  readonly #options: LinkSimOptions;
  #isChaos = true;
  #messageCount = 0;
  livenessFailure: string | undefined = undefined;
  convergeMs: number | undefined = undefined;

  constructor(options: { world: LinkWorld; profile: Profile; prng: SeededPrng; options: LinkSimOptions }) {
    this.#world = options.world;
    this.#profile = options.profile;
    this.#prng = options.prng;
    this.#options = options.options;
  }

  #has(kind: FaultKind): boolean {
    return this.#profile.faults.includes(kind);
  }

  execute(): void {
    const world = this.#world;
    for (const plan of this.#profile.streams) world.createStream(world.node(plan.node), plan.name, plan.retention);
    world.start();
    for (const plan of this.#profile.streams) this.#scheduleWorkload(plan);
    this.#scheduleFaults();
    world.runUntil(this.#options.chaosMs);
    this.#isChaos = false;
    this.#heal();
    const healedAt = world.now;
    const bound = this.#livenessBoundMs();
    world.note(`LIVENESS bound ${bound} ms`);
    while (world.now < healedAt + bound) {
      world.runUntil(world.now + 100);
      if (this.#isConverged()) {
        this.convergeMs = world.now - healedAt;
        world.note(`CONVERGED after ${this.convergeMs} ms`);
        this.#checkProgress();
        return;
      }
    }
    this.livenessFailure = `liveness: not converged ${bound} ms after healing (${this.#report()})`;
  }

  // ---------------------------------------------------------------- workload

  #current(plan: StreamPlan): SimStream {
    return this.#world.node(plan.node).store.current.get(plan.name)!;
  }

  #scheduleWorkload(plan: StreamPlan): void {
    const world = this.#world;
    const node = world.node(plan.node);
    const publish = (): void => {
      if (!this.#isChaos) return;
      this.#publish(node, this.#current(plan));
      world.schedule(this.#prng.between(1, plan.publishEveryMax), 'publish', publish);
    };
    world.schedule(this.#prng.between(1, plan.publishEveryMax), 'publish', publish);
    // Retention: "keep until acknowledged" streams delete only what every peer has; the others
    // delete by limits whatever the peer has (creating real gaps) when that fault is on.
    if (plan.retention === 'acked' || this.#has('limits')) {
      const retain = (): void => {
        if (!this.#isChaos) return;
        const stream = this.#current(plan);
        const maxSeq = plan.retention === 'acked' ? world.ackedByAll(node, stream) : Number.MAX_SAFE_INTEGER;
        const deleted = stream.deleteOldest(this.#prng.between(1, 40), maxSeq, 'limits');
        if (deleted > 0) {
          world.stats.deleted += deleted;
          world.note(`LIMITS ${node.name} ${stream.name} deleted ${deleted}, first=${stream.firstSeq} last=${stream.lastSeq}`);
          world.streamChanged(node, stream.name);
        }
        world.schedule(this.#prng.between(50, 2000), 'retain', retain);
      };
      world.schedule(this.#prng.between(50, 2000), 'retain', retain);
    }
  }

  #publish(node: SimNode, stream: SimStream): void {
    const prng = this.#prng;
    this.#messageCount += 1;
    const size = prng.chance(this.#profile.bigMessageChance) ? prng.between(1000, 6000) : prng.between(0, 200);
    const headerSize = prng.chance(0.3) ? prng.between(5, 60) : 0;
    stream.publish({
      subject: `${stream.name}.s${prng.between(0, 9)}`,
      headers: headerSize === 0 ? undefined : PAYLOAD.subarray(0, headerSize),
      data: PAYLOAD.subarray(0, size),
      timestampNs: BigInt(this.#world.now) * 1_000_000n,
    });
    this.#world.stats.published++;
    this.#world.streamChanged(node, stream.name);
  }

  // ---------------------------------------------------------------- faults

  /**
   * Two independent schedules: disruptions (connections, processes, auth) and stream edits
   * (purge, single deletes, re-creation, window changes). Disruptions leave the link time to
   * work between them, or a seed would only test reconnecting.
   */
  #scheduleFaults(): void {
    const world = this.#world;
    const disruptions = this.#profile.faults.filter((kind) => DISRUPTIONS.includes(kind));
    const edits = this.#profile.faults.filter((kind) => !DISRUPTIONS.includes(kind) && kind !== 'limits');
    const schedule = (kinds: readonly FaultKind[], gapMax: number): void => {
      if (kinds.length === 0) return;
      const inject = (): void => {
        if (!this.#isChaos) return;
        this.#inject(pick(this.#prng, kinds));
        world.schedule(this.#prng.between(Math.floor(gapMax / 10), gapMax), 'fault', inject);
      };
      world.schedule(this.#prng.between(50, gapMax), 'fault', inject);
    };
    schedule(disruptions, this.#profile.faultGapMax);
    schedule(edits, this.#profile.editGapMax);
  }

  #inject(kind: FaultKind): void {
    const world = this.#world;
    const prng = this.#prng;
    switch (kind) {
      case 'reset':
      case 'blackhole':
      case 'half-open': {
        const links = world.openLinks();
        if (links.length === 0) return;
        const link = pick(prng, links);
        if (kind === 'reset') world.reset(link);
        else world.killPipe(link, kind === 'blackhole' ? 'both' : prng.chance(0.5) ? 'toHub' : 'toLeaf');
        return;
      }
      case 'partition': {
        const leaf = pick(prng, world.leaves).name;
        world.partition(leaf);
        world.schedule(prng.between(100, 3000), 'heal', () => world.healPartition(leaf));
        return;
      }
      case 'crash-leaf':
      case 'crash-hub':
      case 'power-loss': {
        const node = kind === 'crash-hub' ? world.hub : kind === 'crash-leaf' ? pick(prng, world.leaves) : pick(prng, [world.hub, ...world.leaves]);
        if (!node.isUp) return;
        world.crash(node, kind === 'power-loss' ? 'power' : 'process');
        world.schedule(prng.between(50, 2000), 'restart', () => {
          if (this.#isChaos) world.restart(node);
        });
        return;
      }
      case 'limits':
        return; // driven by the retention loop
      case 'purge':
      case 'delete-msg':
      case 'recreate': {
        const plan = pick(prng, this.#profile.streams);
        const node = world.node(plan.node);
        const stream = this.#current(plan);
        if (kind === 'recreate') {
          world.createStream(node, plan.name, plan.retention);
          return;
        }
        if (plan.retention === 'acked') return; // such streams only lose acknowledged data
        const deleted = kind === 'purge' ? stream.purge() : stream.deleteOne(prng.between(stream.firstSeq, Math.max(stream.firstSeq, stream.lastSeq))) ? 1 : 0;
        if (deleted === 0) return;
        world.stats.deleted += deleted;
        world.note(`${kind.toUpperCase()} ${node.name} ${stream.name} deleted ${deleted}, first=${stream.firstSeq} last=${stream.lastSeq}`);
        world.streamChanged(node, stream.name);
        return;
      }
      case 'window': {
        const node = pick(prng, [world.hub, ...world.leaves]);
        world.changeWindow(node, pick(prng, WINDOW_CHOICES));
        return;
      }
      case 'slow-disk': {
        const node = pick(prng, [world.hub, ...world.leaves]);
        world.diskSlowUntil.set(node.name, world.now + prng.between(500, 5000));
        world.note(`FAULT slow disk on ${node.name}`);
        return;
      }
      case 'auth': {
        const leaf = pick(prng, world.leaves).name;
        world.authRefusedUntil.set(leaf, world.now + prng.between(100, 2000));
        world.note(`FAULT auth refused for ${leaf}`);
        const links = world.openLinks().filter((link) => link.leaf === leaf);
        if (links.length > 0 && prng.chance(0.5)) world.reset(pick(prng, links));
        return;
      }
    }
  }

  // ---------------------------------------------------------------- liveness

  #heal(): void {
    const world = this.#world;
    world.note('HEAL partitions healed, auth restored, crashed nodes restarted (half-open connections stay until heartbeats find them)');
    for (const leaf of world.leaves) world.healPartition(leaf.name);
    world.authRefusedUntil.clear();
    world.diskSlowUntil.clear();
    world.restart(world.hub);
    for (const leaf of world.leaves) world.restart(leaf);
  }

  /**
   * How long the healed system may take: a full backoff, ten heartbeats to find half-open
   * connections and reconnect, ten seconds of slack, and one round trip per message still to
   * sync (the floor of any profile: a batch holds at least one message).
   */
  #livenessBoundMs(): number {
    const w = this.#profile.world;
    const roundTripMs = 2 * w.delayMax + w.diskLatencyMax + 2 * w.pumpDelayMax + w.tickMs;
    let backlogMsgs = 0;
    for (const [sender, receiver] of this.#pairs()) {
      for (const stream of sender.store.current.values()) backlogMsgs += Math.max(0, stream.lastSeq - this.#world.copyCursor(receiver, sender.name, stream.key).durable);
    }
    return w.backoffMaxMs + 10 * Math.max(w.leafHeartbeatMs, w.hubHeartbeatMs) + 10_000 + backlogMsgs * roundTripMs;
  }

  /** The pairs (sender node, receiver node) that sync. */
  #pairs(): [SimNode, SimNode][] {
    const world = this.#world;
    const pairs: [SimNode, SimNode][] = [];
    for (const leaf of world.leaves) pairs.push([leaf, world.hub], [world.hub, leaf]);
    return pairs;
  }

  #isRefused(sender: SimNode, stream: string): boolean {
    return sender !== this.#world.hub && this.#profile.world.refusedStreams.includes(stream);
  }

  #isConverged(): boolean {
    const world = this.#world;
    for (const leaf of world.leaves) if (world.leafConnectionState(leaf.name) !== 'up' || !world.isHubUpFor(leaf.name)) return false;
    for (const [sender, receiver] of this.#pairs()) {
      for (const stream of sender.store.current.values()) {
        if (this.#isRefused(sender, stream.name)) continue;
        const cursor = world.copyCursor(receiver, sender.name, stream.key);
        if (cursor.durable !== stream.lastSeq || cursor.staged !== cursor.durable) return false;
        if (world.senderOf(sender, receiver.name)?.acked(stream.name)?.seq !== stream.lastSeq) return false;
      }
      // Every offer answered: the senders' own view is settled too.
      for (const progress of world.senderOf(sender, receiver.name)!.progress()) {
        if (progress.state !== (this.#isRefused(sender, progress.stream) ? 'refused' : 'syncing')) return false;
      }
    }
    return true;
  }

  /** After convergence the senders' monitoring must agree: nothing pending, nothing in flight. */
  #checkProgress(): void {
    const world = this.#world;
    for (const [sender, receiver] of this.#pairs()) {
      for (const progress of world.senderOf(sender, receiver.name)!.progress()) {
        const isRefused = this.#isRefused(sender, progress.stream);
        const expected = isRefused ? 'refused' : 'syncing';
        if (progress.state !== expected) throw new SafetyViolation(`${sender.name} reports ${progress.stream} as ${progress.state}, expected ${expected}`);
        if (!isRefused && (progress.backlogMsgs !== 0 || progress.inflightBytes !== 0 || progress.ackedSeq !== progress.lastSeq)) {
          throw new SafetyViolation(`${sender.name} reports a backlog for ${progress.stream} after convergence: ${JSON.stringify(progress, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}`);
        }
      }
    }
  }

  #report(): string {
    const world = this.#world;
    const parts = [world.describeNode(world.hub), ...world.leaves.map((leaf) => world.describeNode(leaf))];
    for (const [sender, receiver] of this.#pairs()) {
      for (const stream of sender.store.current.values()) {
        const cursor = world.copyCursor(receiver, sender.name, stream.key);
        const acked = world.senderOf(sender, receiver.name)?.acked(stream.name)?.seq;
        parts.push(`${sender.name}:${stream.name} last=${stream.lastSeq} ${receiver.name} durable=${cursor.durable} staged=${cursor.staged} acked=${acked ?? '-'}`);
      }
    }
    return parts.join('; ');
  }
}

/** Shared payload bytes: messages are views of it (the content is irrelevant, the sizes matter). */
const PAYLOAD = new Uint8Array(8192).map((_, i) => (i * 31) & 0xff);
