/**
 * A simulated packet network between hosts, modelled on TigerBeetle's
 * PacketSimulator options (RELIABILITY.md §2.4, §2.7 B): per-message delay,
 * loss, duplication (replay) and reordering (independent delays), plus
 * partitions. Partitions are a directed "can host a reach host b" matrix, so
 * symmetric splits, one-way (asymmetric) links and bridges (two halves that
 * share one host) are all just matrices.
 *
 * Addresses are hosts, not Raft ids: a message for a Raft id that no running
 * host currently owns is dropped (an old incarnation's mail).
 */
import type { SeededPrng } from '../../../core/util/prng.ts';

export type NetworkProfile = {
  /** Probability a message is lost. */
  readonly lossProbability: number;
  /** Probability a message is delivered twice. */
  readonly duplicateProbability: number;
  readonly delayMin: number;
  readonly delayMax: number;
  /** Probability a message takes a long detour (up to `delaySpikeMax`), which reorders it. */
  readonly delaySpikeProbability: number;
  readonly delaySpikeMax: number;
};

export const CALM_NETWORK: NetworkProfile = {
  lossProbability: 0,
  duplicateProbability: 0,
  delayMin: 1,
  delayMax: 4,
  delaySpikeProbability: 0,
  delaySpikeMax: 4,
};

export type PartitionKind = 'healed' | 'symmetric' | 'asymmetric' | 'bridge' | 'isolate';

export class SimNetwork {
  readonly hostCount: number;
  profile: NetworkProfile = CALM_NETWORK;
  partitionKind: PartitionKind = 'healed';
  /** #blocked[from * hostCount + to]: messages from `from` to `to` are dropped. */
  #blocked: boolean[];

  constructor(hostCount: number) {
    this.hostCount = hostCount;
    this.#blocked = new Array<boolean>(hostCount * hostCount).fill(false);
  }

  canReach(from: number, to: number): boolean {
    return !this.#blocked[from * this.hostCount + to];
  }

  heal(): void {
    this.#blocked.fill(false);
    this.partitionKind = 'healed';
  }

  /** Blocks every link between `groupA` and the rest, both ways. */
  partition(groupA: readonly number[]): void {
    this.heal();
    for (let a = 0; a < this.hostCount; a++) {
      for (let b = 0; b < this.hostCount; b++) {
        if (groupA.includes(a) !== groupA.includes(b)) this.#blocked[a * this.hostCount + b] = true;
      }
    }
    this.partitionKind = groupA.length === 1 ? 'isolate' : 'symmetric';
  }

  /** Blocks only `from → to` links (the reverse direction still works). */
  blockOneWay(links: readonly (readonly [number, number])[]): void {
    this.heal();
    for (const [from, to] of links) this.#blocked[from * this.hostCount + to] = true;
    this.partitionKind = 'asymmetric';
  }

  /** Two halves that cannot talk to each other, except through `bridgeHost`, which reaches both. */
  bridge(options: { left: readonly number[]; right: readonly number[]; bridgeHost: number }): void {
    this.heal();
    for (const a of options.left) {
      for (const b of options.right) {
        this.#blocked[a * this.hostCount + b] = true;
        this.#blocked[b * this.hostCount + a] = true;
      }
    }
    this.partitionKind = 'bridge';
  }

  describe(): string {
    if (this.partitionKind === 'healed') return 'healed';
    const links: string[] = [];
    for (let a = 0; a < this.hostCount; a++) {
      for (let b = 0; b < this.hostCount; b++) {
        if (this.#blocked[a * this.hostCount + b]) links.push(`h${a}-x->h${b}`);
      }
    }
    return `${this.partitionKind} ${links.join(' ')}`;
  }

  /**
   * Decides the fate of one message: the delivery delays (empty if lost, two if
   * duplicated). Partitions are checked again at delivery time by the caller.
   */
  delaysFor(options: { from: number; to: number; prng: SeededPrng }): number[] {
    const { prng } = options;
    if (!this.canReach(options.from, options.to)) return [];
    if (prng.chance(this.profile.lossProbability)) return [];
    const copies = prng.chance(this.profile.duplicateProbability) ? 2 : 1;
    const delays: number[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = prng.between(this.profile.delayMin, this.profile.delayMax);
      if (prng.chance(this.profile.delaySpikeProbability)) delay += prng.between(1, this.profile.delaySpikeMax);
      delays.push(delay);
    }
    return delays;
  }
}
