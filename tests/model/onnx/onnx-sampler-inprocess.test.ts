/** The ONNX sampler with its session on the calling thread (`worker: false`, or ONNX_WORKER=0). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../src/model/backend.js';
import { buildCvae } from '../../../src/model/cvae.js';
import { saveCheckpoint } from '../../../src/model/checkpoint.js';
import { getPreset } from '../../../src/model/presets.js';
import { Sampler } from '../../../src/model/sampler.js';
import { OnnxSampler } from '../../../src/model/onnx/onnx-sampler.js';
import { randomizeDecoderBatchNorm, uniforms } from './helpers.js';

const preset = getPreset('tiny');
let root: string;

before(async () => {
  await initBackend();
  root = mkdtempSync(path.join(os.tmpdir(), 'onnx-inprocess-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('an in-process ONNX sampler gives the TensorFlow.js images', async () => {
  const dir = path.join(root, 'ckpt');
  const cvae = buildCvae(preset, { seed: 11 });
  randomizeDecoderBatchNorm(cvae, 11);
  await saveCheckpoint(dir, cvae, {
    name: 'ckpt', preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: 'tiny-clip',
    datasetFingerprint: 'fp', epoch: 1, step: 1, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
  const onnx = await OnnxSampler.fromCheckpoint(dir, { threads: 1, worker: false });
  assert.equal(onnx.inWorker, false);
  const ref = await Sampler.fromCheckpoint(dir);
  const embs = [uniforms(1, 512, -0.1, 0.1), uniforms(2, 512, -0.1, 0.1)];
  const [a, b] = await onnx.sample(embs, [3, 4]);
  const [ra, rb] = await ref.sample(embs, [3, 4]);
  assert.ok(a.every((v, i) => Math.abs(v - ra[i]) <= 1) && b.every((v, i) => Math.abs(v - rb[i]) <= 1));
  assert.notDeepEqual(a, b);
  onnx.dispose();
  ref.dispose();
});
