/**
 * A small seeded pseudo-random number generator for everything that must be
 * reproducible: Raft election jitter, reconnect back-off, the simulator
 * (STYLE.md §2.3 "Prng", house rule 10). Not for secrets.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's "small fast chaotic" PRNG,
 * public domain, from PractRand): 128 bits of state, 32-bit output, passes
 * PractRand and BigCrush, and needs only 32-bit integer arithmetic, which
 * JavaScript does exactly with `| 0` and `>>> 0`. The seed is spread over the
 * state with splitmix32 so that nearby seeds (1, 2, 3, …) give unrelated
 * streams.
 */

/** The injected randomness interface. */
export interface Prng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number;
  /**
   * A uniformly distributed integer in [min, max], both ends inclusive.
   * Both bounds must be safe integers with `min <= max` and
   * `max - min < 2^32`.
   */
  between(min: number, max: number): number;
}

const U32_RANGE = 0x1_0000_0000;

/** Mixes a 32-bit value (splitmix32 finaliser). */
function splitmix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** sfc32 seeded from one safe integer. Same seed → same sequence, always. */
export class SeededPrng implements Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`prng seed must be a safe integer: ${seed}`);
    const low = seed >>> 0;
    const high = Math.floor(seed / U32_RANGE) >>> 0;
    this.#a = splitmix32(low);
    this.#b = splitmix32(this.#a ^ high);
    this.#c = splitmix32(this.#b + 1);
    this.#d = 1;
    // Discard the first outputs: sfc32's authors recommend a short warm-up.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  between(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
      throw new RangeError(`prng between: bad bounds [${min}, ${max}]`);
    }
    const span = max - min + 1;
    if (span > U32_RANGE) throw new RangeError(`prng between: span ${span} exceeds 2^32`);
    // Rejection sampling removes the modulo bias.
    const limit = U32_RANGE - (U32_RANGE % span);
    let value = this.nextU32();
    while (value >= limit) value = this.nextU32();
    return min + (value % span);
  }

  /** True with probability `probability` (0 ≤ p ≤ 1), in steps of 2^-32. */
  chance(probability: number): boolean {
    if (probability <= 0) return false;
    if (probability >= 1) return true;
    return this.nextU32() < probability * U32_RANGE;
  }

  /** An independent generator derived from this one (a sub-seed per subsystem). */
  fork(): SeededPrng {
    return new SeededPrng(this.nextU32() * 0x20_0000 + (this.nextU32() & 0x1f_ffff));
  }
}
