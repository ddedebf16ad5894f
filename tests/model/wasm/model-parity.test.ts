/**
 * End to end: the CVAE (tiny preset) on the wasm backend with this project's training kernels gives the same
 * forward outputs, loss and gradients w.r.t. every trainable weight as on the stock pure-JS 'cpu' backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildCvae } from '../../../src/model/cvae.js';
import { cvaeLoss } from '../../../src/model/loss.js';
import { getPreset } from '../../../src/model/presets.js';
import { assertClose, relativeError, seeded, useBackend } from './helpers.js';

const preset = getPreset('tiny');
const BATCH = 3;
const R = preset.resolution;

/** Builds the model with a fixed seed on the current backend and computes outputs, loss and gradients. */
function forwardAndGradients(): { outputs: Float32Array[]; names: string[]; grads: Float32Array[]; weights: Float32Array[] } {
  const cvae = buildCvae(preset, { seed: 5 });
  try {
    const x = tf.tensor4d(seeded(BATCH * R * R * 3, 1).map((v) => (v + 1) / 2), [BATCH, R, R, 3]);
    const emb = tf.tensor2d(seeded(BATCH * preset.embeddingDim, 2), [BATCH, preset.embeddingDim]);
    const vars = cvae.trainableWeights();
    const weights = vars.map((v) => v.dataSync() as Float32Array);
    const inference = tf.tidy(() => {
      const out = cvae.forward(x, emb, { training: false, seed: 9 });
      const z = tf.tensor2d(seeded(BATCH * preset.latentDim, 3), [BATCH, preset.latentDim]);
      return [out.xHat, out.mu, out.logvar, cvae.decode(z, emb)].map((t) => t.dataSync() as Float32Array);
    });
    let terms: Float32Array | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const out = cvae.forward(x, emb, { training: true, seed: 9 });
      const loss = cvaeLoss(x, out.xHat, out.mu, out.logvar);
      terms = tf.stack([loss.total, loss.bce, loss.kl, loss.ssim]).dataSync() as Float32Array;
      return loss.total;
    }, vars);
    const g = vars.map((v) => grads[v.name].dataSync() as Float32Array);
    // Variable names get a numeric suffix when a model is built twice in one process.
    const names = vars.map((v) => v.name.replace(/_\d+$/, ''));
    tf.dispose([x, emb, value, ...Object.values(grads)]);
    return { outputs: [...inference, terms!], names, grads: g, weights };
  } finally {
    cvae.dispose();
  }
}

test('tiny CVAE: forward outputs, loss terms and every weight gradient match between cpu and wasm', async () => {
  await useBackend('cpu');
  const cpu = forwardAndGradients();
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = forwardAndGradients();
  assert.equal(tf.memory().numTensors, before, 'no tensors leak on wasm');

  assert.deepEqual(wasm.names, cpu.names);
  // Same seeded initial weights on both backends, so differences come from the kernels alone.
  assertClose(wasm.weights, cpu.weights, 0, 'initial weights');
  assertClose(wasm.outputs, cpu.outputs, 1e-4, '[xHat, mu, logvar, decoded, loss terms]');
  assert.equal(wasm.grads.length, cpu.grads.length);
  const conv = cpu.names.filter((n) => /conv|dec_out/.test(n) && /kernel/.test(n));
  assert.ok(conv.length >= 5, `convolution kernels among the weights: ${conv.join(', ')}`);
  wasm.grads.forEach((g, i) => {
    const err = relativeError(g, cpu.grads[i]);
    assert.ok(err <= 1e-4, `gradient of ${cpu.names[i]}: relative error ${err.toExponential(2)}`);
  });
});
