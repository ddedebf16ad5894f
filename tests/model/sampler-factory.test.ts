/**
 * createSampler over a real tiny checkpoint with the capabilities stubbed: the engine the choice names is the
 * one that loads, a CUDA session that cannot open here falls back to ONNX Runtime on the CPU (and says so),
 * and the choice in force is recorded for /healthz and /metrics. Then the real probe of this CPU host.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { initBackend } from '../../src/model/backend.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { buildCvae } from '../../src/model/cvae.js';
import { currentDecoderEngine, resetDecoderEngine, type DecoderCapabilities } from '../../src/model/decoder-engine.js';
import { OnnxSampler } from '../../src/model/onnx/onnx-sampler.js';
import { getPreset } from '../../src/model/presets.js';
import { createSampler } from '../../src/model/sampler-factory.js';

const preset = getPreset('tiny');
let root: string;
let dir: string;

before(async () => {
  delete process.env.SAMPLER_ENGINE;
  await initBackend();
  root = mkdtempSync(path.join(os.tmpdir(), 'sampler-factory-'));
  dir = path.join(root, 'tiny');
  const cvae = buildCvae(preset, { seed: 3 });
  await saveCheckpoint(dir, cvae, {
    name: 'tiny', preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: 'tiny-clip',
    datasetFingerprint: 'fp', epoch: 1, step: 1, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
});

after(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => resetDecoderEngine());

const caps = (c: DecoderCapabilities) => async () => c;
const NO_TFJS_GPU = { available: false as const, reason: 'stub: no tfjs GPU' };

test('a CUDA provider that cannot open the decoder here falls back to ONNX Runtime on the CPU, and the record says why', async () => {
  const sampler = await createSampler(dir, { engine: 'auto', threads: 1, capabilities: caps({ tfjsGpu: NO_TFJS_GPU, onnxCuda: { available: true, detail: 'stub: CUDA claimed' } }) });
  try {
    assert.equal(sampler.engine, 'onnx');
    assert.ok(sampler instanceof OnnxSampler);
    assert.equal(sampler.executionProvider, 'cpu', 'the session that works runs on the CPU provider');
    const images = await sampler.sample([new Float32Array(preset.embeddingDim).fill(0.1)], [7]);
    assert.equal(images[0].length, preset.resolution * preset.resolution * 3);
    const rec = currentDecoderEngine();
    assert.deepEqual([rec?.engine, rec?.device, rec?.executionProvider, rec?.requested], ['onnx', 'cpu', 'cpu', 'auto']);
    assert.match(rec!.reason, /^ONNX Runtime on CUDA could not open the decoder \(.+\); ONNX Runtime on the CPU instead$/);
  } finally {
    sampler.dispose();
  }
});

test('TensorFlow.js with a GPU wins auto, and is what loads', async () => {
  const sampler = await createSampler(dir, { engine: 'auto', capabilities: caps({ tfjsGpu: { available: true, detail: 'stub: tfjs GPU' }, onnxCuda: { available: true, detail: 'stub' } }) });
  try {
    assert.equal(sampler.engine, 'tfjs');
    assert.deepEqual([currentDecoderEngine()?.engine, currentDecoderEngine()?.device], ['tfjs', 'gpu']);
  } finally {
    sampler.dispose();
  }
});

test('explicit engines keep working: tfjs loads TensorFlow.js, onnx loads ONNX Runtime', async () => {
  const noGpu = caps({ tfjsGpu: NO_TFJS_GPU, onnxCuda: { available: false, reason: 'stub: no CUDA' } });
  const t = await createSampler(dir, { engine: 'tfjs', capabilities: noGpu });
  assert.equal(t.engine, 'tfjs');
  assert.deepEqual([currentDecoderEngine()?.engine, currentDecoderEngine()?.device, currentDecoderEngine()?.requested], ['tfjs', 'cpu', 'tfjs']);
  t.dispose();
  const o = await createSampler(dir, { engine: 'onnx', threads: 1, capabilities: noGpu });
  assert.equal(o.engine, 'onnx');
  assert.deepEqual([currentDecoderEngine()?.engine, currentDecoderEngine()?.device, currentDecoderEngine()?.requested], ['onnx', 'cpu', 'onnx']);
  o.dispose();
});

test('on this CPU host, auto (the real probe) decodes with ONNX Runtime on the CPU', async () => {
  const sampler = await createSampler(dir, { threads: 1 });
  try {
    assert.equal(sampler.engine, 'onnx');
    const rec = currentDecoderEngine();
    assert.deepEqual([rec?.engine, rec?.device, rec?.executionProvider, rec?.requested], ['onnx', 'cpu', 'cpu', 'auto']);
    assert.match(rec!.reason, /^no GPU found: TensorFlow\.js: .+; ONNX Runtime CUDA: .+/);
  } finally {
    sampler.dispose();
  }
});
