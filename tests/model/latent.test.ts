import { test } from 'node:test';
import assert from 'node:assert/strict';
import { latentForSeed } from '../../src/model/latent.js';

test('a seed always gives the same latent, and these exact values (the seed contract)', () => {
  const a = latentForSeed(42, 8);
  assert.deepEqual(latentForSeed(42, 8), a);
  assert.deepEqual(Array.from(latentForSeed(42, 4)), Array.from(a.subarray(0, 4)), 'a shorter latent is a prefix');
  assert.equal(a.length, 8);
  const golden = Array.from(latentForSeed(7, 4), (v) => Number(v.toFixed(6)));
  assert.deepEqual(golden, GOLDEN_SEED_7);
});

test('different seeds give different latents, negative and large seeds included', () => {
  const seen = new Set<string>();
  for (const seed of [0, 1, 2, -1, -2, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123456789]) {
    seen.add(Array.from(latentForSeed(seed, 6)).join(','));
  }
  assert.equal(seen.size, 10);
});

test('values are standard normal: mean 0, variance 1, no bias across positions', () => {
  const n = 4000;
  const dim = 16;
  let sum = 0;
  let sq = 0;
  let tail = 0;
  const perPos = new Float64Array(dim);
  for (let s = 0; s < n; s++) {
    const z = latentForSeed(s, dim);
    z.forEach((v, i) => {
      sum += v;
      sq += v * v;
      perPos[i] += v;
      if (Math.abs(v) > 1.96) tail++;
    });
  }
  const count = n * dim;
  const mean = sum / count;
  const variance = sq / count - mean * mean;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
  assert.ok(Math.abs(tail / count - 0.05) < 0.006, `tail fraction ${tail / count}`);
  for (const p of perPos) assert.ok(Math.abs(p / n) < 0.07, `position mean ${p / n}`);
});

test('bad seeds and widths are rejected', () => {
  assert.throws(() => latentForSeed(1.5, 4), RangeError);
  assert.throws(() => latentForSeed(2 ** 60, 4), RangeError);
  assert.throws(() => latentForSeed(1, -1), RangeError);
  assert.equal(latentForSeed(1, 0).length, 0);
});

/** latentForSeed(7, 4), fixed when the algorithm was written: a change here changes every served image. */
const GOLDEN_SEED_7 = [0.192822, -0.037331, 0.869874, 0.482177];
