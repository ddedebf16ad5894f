import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { buildCvae } from '../../src/model/cvae.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { getPreset } from '../../src/model/presets.js';
import { Sampler } from '../../src/model/sampler.js';
import { UserError } from '../../src/errors.js';

await initBackend();

let root: string;
let sampler: Sampler;
const preset = getPreset('tiny');

function embedding(seed: number): Float32Array {
  return tf.tidy(() => {
    const e = tf.randomNormal([preset.embeddingDim], 0, 1, 'float32', seed);
    return tf.div(e, tf.norm(e)).dataSync() as Float32Array;
  });
}

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'sampler-'));
  const cvae = buildCvae(preset, { seed: 1 });
  await saveCheckpoint(path.join(root, 'ckpt'), cvae, {
    name: 'ckpt', preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning,
    clipModel: 'tiny-clip', datasetFingerprint: 'fp', epoch: 1, step: 1, losses: {},
    createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
  sampler = await Sampler.fromCheckpoint(path.join(root, 'ckpt'));
});
after(() => {
  sampler.dispose();
  rmSync(root, { recursive: true, force: true });
});

test('sampling gives one uint8 RGB image per pair, with the checkpoint metadata', async () => {
  assert.equal(sampler.resolution, 16);
  assert.equal(sampler.meta.name, 'ckpt');
  const images = await sampler.sample([embedding(1), embedding(2), embedding(3)], [7, 8, 9]);
  assert.equal(images.length, 3);
  for (const img of images) {
    assert.ok(img instanceof Uint8Array);
    assert.equal(img.length, 16 * 16 * 3);
    assert.ok(new Set(img).size > 10, 'an image is more than a flat colour');
  }
  assert.deepEqual(await sampler.sample([], []), []);
});

test('the same seed and embedding give the same image, in any batch; other seeds or embeddings differ', async () => {
  const e1 = embedding(1);
  const e2 = embedding(2);
  const [a] = await sampler.sample([e1], [7]);
  const [b, c, d] = await sampler.sample([e2, e1, e1], [7, 7, 8]);
  assert.deepEqual(c, a, 'same seed + embedding, other batch position');
  assert.notDeepEqual(d, a, 'another seed gives another image');
  assert.notDeepEqual(b, a, 'another embedding gives another image');
  const [again] = await sampler.sample([e1], [7]);
  assert.deepEqual(again, a);
});

test('mismatched counts, widths, non-finite values and non-integer seeds are UserErrors', async () => {
  const isUser = (err: unknown) => err instanceof UserError;
  await assert.rejects(sampler.sample([embedding(1)], [1, 2]), isUser);
  await assert.rejects(sampler.sample([new Float32Array(10)], [1]), isUser);
  const bad = embedding(1);
  bad[3] = Number.NaN;
  await assert.rejects(sampler.sample([bad], [1]), isUser);
  await assert.rejects(sampler.sample([embedding(1)], [1.5]), isUser);
});

test('100 sample calls leak no tensors', async () => {
  const e = [embedding(1), embedding(2)];
  await sampler.sample(e, [1, 2]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 100; i++) await sampler.sample(e, [i, i + 1]);
  assert.equal(tf.memory().numTensors, before);
});
