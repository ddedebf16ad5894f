import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { buildCvae } from '../../src/model/cvae.js';
import { getPreset } from '../../src/model/presets.js';
import { clipByGlobalNorm, imagesToTensor, trainStep } from '../../src/training/train-step.js';

/** A fixed batch of near-binary pictures (checkerboards and discs), so a perfect reconstruction has BCE ~ 0. */
function fixedBatch(size: number, resolution: number, dim: number) {
  const images = new Uint8Array(size * resolution * resolution * 3);
  for (let b = 0; b < size; b++) {
    for (let y = 0; y < resolution; y++) {
      for (let x = 0; x < resolution; x++) {
        const on = ((x >> 2) + (y >> 2) + b) % 2 === 0 || (x - 8) ** 2 + (y - 8) ** 2 < 4 * ((b % 4) + 1);
        for (let c = 0; c < 3; c++) images[((b * resolution + y) * resolution + x) * 3 + c] = on !== (c === b % 3) ? 255 : 0;
      }
    }
  }
  const embeddings = new Float32Array(size * dim);
  for (let i = 0; i < embeddings.length; i++) embeddings[i] = Math.sin(i * 0.37 + 1) / Math.sqrt(dim);
  return { size, images, embeddings };
}

test('tiny model overfits a fixed batch (loss at least halves) without leaking tensors', async () => {
  await initBackend();
  const preset = getPreset('tiny');
  const cvae = buildCvae(preset, { seed: 7 });
  const optimizer = tf.train.adam(0.01);
  const vars = cvae.trainableWeights();
  const batch = fixedBatch(4, preset.resolution, preset.embeddingDim);
  try {
    // The first step creates Adam's moment variables; count tensors after it.
    const first = await trainStep(cvae, optimizer, vars, batch, preset.resolution, preset.embeddingDim, { seed: 1 });
    assert.ok(Number.isFinite(first.total) && first.total > 0);
    assert.ok(Math.abs(first.total - (first.bce + 0.5 * first.kl + 0.1 * (1 - first.ssim))) < 1e-3 * first.total);
    const tensors = tf.memory().numTensors;
    let last = first;
    for (let i = 2; i <= 101; i++) {
      last = await trainStep(cvae, optimizer, vars, batch, preset.resolution, preset.embeddingDim, { seed: i, clipNorm: i % 2 ? 50 : null });
    }
    assert.equal(tf.memory().numTensors, tensors, 'tensor count changed over 100 training steps');
    assert.ok(last.total < first.total / 2, `loss fell from ${first.total} to ${last.total}, less than half`);
    assert.ok(last.ssim > first.ssim, 'SSIM should rise as the batch is learned');
  } finally {
    optimizer.dispose();
    cvae.dispose();
  }
});

test('clipByGlobalNorm scales all gradients by clip / global norm only when above it', () => {
  const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }; // global norm 5
  const clipped = clipByGlobalNorm(grads, 1);
  assert.deepEqual(Array.from(clipped.a.dataSync()).map((v) => +v.toFixed(6)), [0.6, 0]);
  assert.deepEqual(Array.from(clipped.b.dataSync()).map((v) => +v.toFixed(6)), [0, 0.8]);
  const kept = clipByGlobalNorm(grads, 10);
  assert.deepEqual(Array.from(kept.b.dataSync()), [0, 4]);
  tf.dispose([grads.a, grads.b, clipped, kept]);
});

test('imagesToTensor scales uint8 to [0, 1]', () => {
  const t = imagesToTensor(Uint8Array.from([0, 255, 51]), 1, 1);
  assert.deepEqual(t.shape, [1, 1, 1, 3]);
  assert.deepEqual(Array.from(t.dataSync()).map((v) => +v.toFixed(4)), [0, 1, 0.2]);
  t.dispose();
});
