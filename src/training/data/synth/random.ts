/**
 * A small seeded pseudo-random generator (mulberry32) with the helpers scene generation needs.
 * Deterministic across platforms: integer arithmetic only, no Math.random.
 */
import { mulberry32 } from '../../../util/prng.js';

/** Mixes any 32-bit seed into a well-spread starting state (splitmix32-style finaliser). */
function mixSeed(seed: number): number {
  let h = (seed | 0) ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seeded PRNG: mulberry32 (src/util/prng.ts). Same seed, same sequence. */
export class Rng {
  private readonly draw: () => number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    this.draw = mulberry32(mixSeed(Math.trunc(seed)));
  }

  /** Next float in [0, 1). */
  next(): number {
    return this.draw();
  }

  /** Next unsigned 32-bit integer (for deriving seeds of sub-generators). */
  nextUint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  /** Float in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array');
    return items[Math.floor(this.next() * items.length)];
  }

  /** One key of a weight table, with probability proportional to its weight. */
  weighted<K extends string | number>(weights: readonly (readonly [K, number])[]): K {
    const total = weights.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [k, w] of weights) {
      r -= w;
      if (r < 0) return k;
    }
    return weights[weights.length - 1][0];
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** Seed of the i-th item of a run: independent streams per item, so items can be made in any order. */
export function itemSeed(runSeed: number, index: number): number {
  return mixSeed(Math.imul(mixSeed(runSeed) ^ 0x51ed270b, 0x2c1b3c6d) + index) >>> 0;
}
