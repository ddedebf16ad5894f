import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemoryDataset } from '../../src/training/memory-dataset.js';
import { createSyntheticMemoryDataset } from '../../src/training/synthetic-memory.js';
import type { Batch } from '../../src/training/dataset.js';

const R = 2;
const D = 3;

/** Dataset whose example i has all image bytes = i and embedding [i, i, i]. */
function labelled(nTrain: number, nVal: number): InMemoryDataset {
  const make = (n: number, offset: number) => {
    const images = new Uint8Array(n * R * R * 3);
    const embeddings = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      images.fill(offset + i, i * R * R * 3, (i + 1) * R * R * 3);
      embeddings.fill(offset + i, i * D, (i + 1) * D);
    }
    return { images, embeddings };
  };
  return new InMemoryDataset({ resolution: R, embeddingDim: D, train: make(nTrain, 0), val: make(nVal, 100) });
}

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function ids(batches: Batch[]): number[] {
  return batches.flatMap((b) => Array.from({ length: b.size }, (_, i) => b.images[i * R * R * 3]));
}

test('batches cover the split once, keep image and embedding paired, last batch short', async () => {
  const ds = labelled(10, 3);
  assert.equal(ds.size('train'), 10);
  assert.equal(ds.size('val'), 3);
  const batches = await collect(ds.batches('train', 4, { epoch: 0, seed: 1 }));
  assert.deepEqual(batches.map((b) => b.size), [4, 4, 2]);
  for (const b of batches) {
    assert.equal(b.images.length, b.size * R * R * 3);
    assert.equal(b.embeddings.length, b.size * D);
    for (let i = 0; i < b.size; i++) {
      const id = b.images[i * R * R * 3];
      assert.ok(b.images.subarray(i * R * R * 3, (i + 1) * R * R * 3).every((v) => v === id));
      assert.deepEqual(Array.from(b.embeddings.subarray(i * D, (i + 1) * D)), [id, id, id]);
    }
  }
  assert.deepEqual([...ids(batches)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('shuffling is deterministic per (seed, epoch) and differs across epochs and seeds', async () => {
  const ds = labelled(20, 2);
  const order = async (epoch: number, seed: number) => ids(await collect(ds.batches('train', 7, { epoch, seed })));
  assert.deepEqual(await order(0, 5), await order(0, 5));
  assert.notDeepEqual(await order(0, 5), await order(1, 5));
  assert.notDeepEqual(await order(0, 5), await order(0, 6));
  assert.notDeepEqual(await order(0, 5), Array.from({ length: 20 }, (_, i) => i));
});

test('val is in order by default; shuffle option overrides', async () => {
  const ds = labelled(4, 5);
  assert.deepEqual(ids(await collect(ds.batches('val', 2, { epoch: 3, seed: 9 }))), [100, 101, 102, 103, 104]);
  assert.deepEqual(ids(await collect(ds.batches('train', 2, { epoch: 3, seed: 9, shuffle: false }))), [0, 1, 2, 3]);
});

test('inconsistent arrays are rejected', () => {
  assert.throws(
    () => new InMemoryDataset({ resolution: 2, embeddingDim: 3, train: { images: new Uint8Array(12 * 2), embeddings: new Float32Array(3) }, val: { images: new Uint8Array(0), embeddings: new Float32Array(0) } }),
    /1 embeddings|2 images/,
  );
  assert.throws(
    () => new InMemoryDataset({ resolution: 2, embeddingDim: 3, train: { images: new Uint8Array(13), embeddings: new Float32Array(3) }, val: { images: new Uint8Array(0), embeddings: new Float32Array(0) } }),
    /not a multiple/,
  );
});

test('fromExamples holds out a val split and fingerprints the content', () => {
  const examples = Array.from({ length: 10 }, (_, i) => ({ image: new Uint8Array(R * R * 3).fill(i), embedding: new Float32Array(D).fill(i) }));
  const a = InMemoryDataset.fromExamples(examples, { resolution: R, embeddingDim: D, valFraction: 0.2, seed: 1 });
  assert.equal(a.size('train'), 8);
  assert.equal(a.size('val'), 2);
  const b = InMemoryDataset.fromExamples(examples, { resolution: R, embeddingDim: D, valFraction: 0.2, seed: 1 });
  assert.equal(a.fingerprint, b.fingerprint);
  assert.match(a.fingerprint, /^memory-sha256:[0-9a-f]{16}$/);
  const changed = examples.map((e, i) => (i === 0 ? { ...e, image: new Uint8Array(R * R * 3).fill(200) } : e));
  assert.notEqual(InMemoryDataset.fromExamples(changed, { resolution: R, embeddingDim: D, valFraction: 0.2, seed: 1 }).fingerprint, a.fingerprint);
  const ex = a.example('val', 1);
  assert.equal(ex.embedding[0], ex.image[0]);
});

test('synthetic dataset: deterministic for the seed, unit embeddings, structured images', () => {
  const a = createSyntheticMemoryDataset({ count: 16, resolution: 8, embeddingDim: 32, seed: 3 });
  const b = createSyntheticMemoryDataset({ count: 16, resolution: 8, embeddingDim: 32, seed: 3 });
  const c = createSyntheticMemoryDataset({ count: 16, resolution: 8, embeddingDim: 32, seed: 4 });
  assert.equal(a.fingerprint, 'synthetic-random:16:3');
  assert.equal(a.size('train') + a.size('val'), 16);
  assert.equal(a.size('val'), 2);
  assert.deepEqual(a.example('train', 0), b.example('train', 0));
  assert.notDeepEqual(a.example('train', 0).image, c.example('train', 0).image);
  for (let i = 0; i < a.size('train'); i++) {
    const { image, embedding } = a.example('train', i);
    const norm = Math.hypot(...embedding);
    assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
    // more than one colour per picture, not noise: few distinct colours
    const colours = new Set<string>();
    for (let p = 0; p < 64; p++) colours.add(`${image[p * 3]},${image[p * 3 + 1]},${image[p * 3 + 2]}`);
    assert.ok(colours.size > 1 && colours.size < 40, `distinct colours ${colours.size}`);
  }
});
