/**
 * Parity of the ONNX decoder export with the TensorFlow.js decoder (inference mode) for every preset's
 * architecture: small-width variants of the seed presets (same layers, kernels, strides and resolution) plus
 * the real `demo` and `tiny`, with random BatchNorm statistics so that folding them is really exercised.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import ort from 'onnxruntime-node';
import { initBackend } from '../../../src/model/backend.js';
import { buildCvae, type Cvae } from '../../../src/model/cvae.js';
import { getPreset, presetNames, type Preset } from '../../../src/model/presets.js';
import { exportDecoderOnnx, type DecoderExportOptions } from '../../../src/model/onnx/export.js';
import { readOnnxMetadata } from '../../../src/model/onnx/proto.js';
import { narrowPreset, randomizeDecoderBatchNorm, uniforms } from './helpers.js';

before(async () => {
  await initBackend();
});

const N = 3;

function inputs(p: Preset, seed: number) {
  return { z: uniforms(seed, N * p.latentDim, -2.5, 2.5), emb: uniforms(seed + 1, N * p.embeddingDim, -0.15, 0.15) };
}

async function runOnnx(bytes: Uint8Array, p: Preset, z: Float32Array, emb: Float32Array) {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: 1 });
  const out = await session.run({
    z: new ort.Tensor('float32', z, [N, p.latentDim]),
    embedding: new ort.Tensor('float32', emb, [N, p.embeddingDim]),
  });
  return out.image;
}

function reference(cvae: Cvae, p: Preset, z: Float32Array, emb: Float32Array): Float32Array {
  return tf.tidy(() => cvae.decode(tf.tensor2d(z, [N, p.latentDim]), tf.tensor2d(emb, [N, p.embeddingDim])).dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The reference must not be saturated (else a sigmoid would hide differences). */
function assertInformative(ref: Float32Array): void {
  let mid = 0;
  for (const v of ref) if (v > 0.02 && v < 0.98) mid++;
  assert.ok(mid / ref.length > 0.5, `only ${mid} of ${ref.length} reference values are away from 0 and 1`);
}

async function checkParity(p: Preset, opts: DecoderExportOptions = {}): Promise<void> {
  const cvae = buildCvae(p, { seed: 5 });
  try {
    randomizeDecoderBatchNorm(cvae, 17);
    const { z, emb } = inputs(p, 3);
    const ref = reference(cvae, p, z, emb);
    assertInformative(ref);
    const out = await runOnnx(exportDecoderOnnx(cvae, { output: 'float', ...opts }), p, z, emb);
    assert.deepEqual(out.dims, [N, p.resolution, p.resolution, 3]);
    assert.equal(out.type, 'float32');
    const diff = maxAbsDiff(out.data as Float32Array, ref);
    assert.ok(diff <= 1e-4, `${p.name} (${JSON.stringify(opts)}): max abs difference ${diff}`);
  } finally {
    cvae.dispose();
  }
}

const seedPresets = presetNames().filter((n) => n !== 'demo' && n !== 'tiny');

test('every seed preset is covered', () => {
  assert.deepEqual(seedPresets.sort(), ['128-image', '128-image-nodropout', '128-text', '128-text-nodropout', '64-image', '64-text']);
});

for (const name of seedPresets) {
  test(`ONNX decoder matches TensorFlow.js within 1e-4: narrow ${name}`, async () => {
    await checkParity(narrowPreset(name));
  });
}

test('ONNX decoder matches TensorFlow.js within 1e-4: tiny and demo', async () => {
  for (const name of ['tiny', 'demo']) await checkParity(getPreset(name));
});

const ALTERNATIVES: DecoderExportOptions[] = [
  { convTranspose: 'native', batchNorm: 'fold' },
  { convTranspose: 'native', batchNorm: 'explicit' },
  { convTranspose: 'subpixel', batchNorm: 'fold' },
  { convTranspose: 'subpixel', batchNorm: 'mixed' },
  { convTranspose: 'phases', batchNorm: 'explicit' },
  { convTranspose: 'phases', batchNorm: 'fold' },
];

test('every alternative lowering (ConvTranspose, sub-pixel, phases; BatchNorm folded, explicit, mixed) matches too', async () => {
  for (const opts of ALTERNATIVES) {
    await checkParity(narrowPreset('128-image'), opts);
    await checkParity(getPreset('tiny'), opts);
  }
});

test('uint8 output is the rounded, clipped float output in NHWC, and metadata is stored', async () => {
  const p = getPreset('tiny');
  const cvae = buildCvae(p, { seed: 9 });
  try {
    randomizeDecoderBatchNorm(cvae, 3);
    const { z, emb } = inputs(p, 8);
    const ref = reference(cvae, p, z, emb);
    const bytes = exportDecoderOnnx(cvae, { metadata: { weightsSha256: 'abc' } });
    const out = await runOnnx(bytes, p, z, emb);
    assert.equal(out.type, 'uint8');
    assert.deepEqual(out.dims, [N, 16, 16, 3]);
    const data = out.data as Uint8Array;
    let off = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(data[i] - Math.round(ref[i] * 255));
      assert.ok(d <= 1, `pixel value ${i}: ${data[i]} vs ${ref[i] * 255}`);
      if (d) off++;
    }
    assert.ok(off <= ref.length * 0.01, `${off} values off by one`);
    const meta = readOnnxMetadata(bytes);
    assert.equal(meta.weightsSha256, 'abc');
    assert.equal(meta.output, 'uint8');
    assert.equal(meta.resolution, '16');
  } finally {
    cvae.dispose();
  }
});
