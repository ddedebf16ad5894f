/**
 * Serving on ONNX Runtime end to end on a tiny checkpoint: the export next to the checkpoint (made once,
 * regenerated when the weights change), OnnxSampler against the TensorFlow.js Sampler, engine selection,
 * fallback, and the registry hook.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../src/model/backend.js';
import { buildCvae } from '../../../src/model/cvae.js';
import { saveCheckpoint, type CheckpointMeta } from '../../../src/model/checkpoint.js';
import { getPreset } from '../../../src/model/presets.js';
import { Sampler } from '../../../src/model/sampler.js';
import { CheckpointRegistry } from '../../../src/model/registry.js';
import { createSampler, samplerEngineFromEnv } from '../../../src/model/sampler-factory.js';
import { OnnxSampler, onnxThreads } from '../../../src/model/onnx/onnx-sampler.js';
import { DECODER_ONNX, DECODER_ONNX_INFO, ensureDecoderOnnx, onnxExportState, readOnnxExportInfo } from '../../../src/model/onnx/checkpoint-export.js';
import { UserError } from '../../../src/errors.js';
import { randomizeDecoderBatchNorm, uniforms } from './helpers.js';

const preset = getPreset('tiny');
let root: string;

function meta(name: string): CheckpointMeta {
  return {
    name, preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: 'tiny-clip',
    datasetFingerprint: 'fp', epoch: 1, step: 1, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
  };
}

async function makeCheckpoint(name: string, seed: number): Promise<string> {
  const dir = path.join(root, name);
  const cvae = buildCvae(preset, { seed });
  randomizeDecoderBatchNorm(cvae, seed);
  await saveCheckpoint(dir, cvae, meta(name));
  cvae.dispose();
  return dir;
}

function embedding(seed: number): Float32Array {
  const e = uniforms(seed, preset.embeddingDim, -1, 1);
  const norm = Math.hypot(...e);
  return e.map((v) => v / norm);
}

before(async () => {
  await initBackend();
  root = mkdtempSync(path.join(os.tmpdir(), 'onnx-sampler-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('the ONNX sampler gives the TensorFlow.js sampler\'s images for the same seeds and embeddings', async () => {
  const dir = await makeCheckpoint('a', 1);
  const onnx = await OnnxSampler.fromCheckpoint(dir, { threads: 1 });
  const ref = await Sampler.fromCheckpoint(dir);
  try {
    assert.equal(onnx.engine, 'onnx');
    assert.equal(onnx.inWorker, true, 'decoding runs off the main thread by default');
    assert.equal(onnx.resolution, 16);
    assert.equal(onnx.meta.name, 'a');
    const embs = [embedding(1), embedding(2), embedding(3)];
    const seeds = [7, 8, -9];
    const got = await onnx.sample(embs, seeds);
    const want = await ref.sample(embs, seeds);
    assert.equal(got.length, 3);
    let off = 0;
    got.forEach((img, i) => {
      assert.ok(img instanceof Uint8Array);
      assert.equal(img.length, 16 * 16 * 3);
      assert.ok(new Set(img).size > 10, 'an image is more than a flat colour');
      img.forEach((v, j) => {
        const d = Math.abs(v - want[i][j]);
        assert.ok(d <= 1, `image ${i} byte ${j}: ${v} vs ${want[i][j]}`);
        if (d) off++;
      });
    });
    assert.ok(off <= 8, `${off} bytes differ by one (float rounding at .5 boundaries only)`);
    // Same seed + embedding: same image in any batch; other seeds differ.
    const [single] = await onnx.sample([embs[1]], [8]);
    assert.deepEqual(single, got[1]);
    const [other] = await onnx.sample([embs[1]], [9]);
    assert.notDeepEqual(other, got[1]);
    assert.deepEqual(await onnx.sample([], []), []);
  } finally {
    onnx.dispose();
    ref.dispose();
  }
});

test('bad requests are the same UserErrors as on TensorFlow.js', async () => {
  const dir = path.join(root, 'a');
  const s = await OnnxSampler.fromCheckpoint(dir, { threads: 1 });
  const isUser = (err: unknown) => err instanceof UserError;
  await assert.rejects(s.sample([embedding(1)], [1, 2]), isUser);
  await assert.rejects(s.sample([new Float32Array(10)], [1]), isUser);
  const bad = embedding(1);
  bad[3] = Number.NaN;
  await assert.rejects(s.sample([bad], [1]), isUser);
  await assert.rejects(s.sample([embedding(1)], [1.5]), isUser);
  s.dispose();
  await assert.rejects(s.sample([embedding(1)], [1]), /disposed/);
});

test('the export is made once, kept next to the checkpoint, and regenerated when the weights change', async () => {
  const dir = await makeCheckpoint('b', 2);
  assert.equal(await onnxExportState(dir), 'missing');
  const first = await ensureDecoderOnnx(dir);
  assert.equal(first.regenerated, true);
  assert.equal(first.path, path.join(dir, DECODER_ONNX));
  assert.equal(await onnxExportState(dir), 'fresh');
  const info = await readOnnxExportInfo(dir);
  assert.equal(info?.output, 'uint8');
  assert.equal((await ensureDecoderOnnx(dir)).regenerated, false);
  const [before1] = await (await OnnxSampler.fromCheckpoint(dir, { threads: 1 })).sample([embedding(4)], [4]);

  // A new save of other weights carries the old export over (foreign files survive saves): it is stale now.
  const cvae = buildCvae(preset, { seed: 3 });
  randomizeDecoderBatchNorm(cvae, 3);
  await saveCheckpoint(dir, cvae, meta('b'));
  cvae.dispose();
  assert.ok(existsSync(path.join(dir, DECODER_ONNX)), 'the save kept the export file');
  assert.equal(await onnxExportState(dir), 'stale');
  const s = await OnnxSampler.fromCheckpoint(dir, { threads: 1 });
  assert.equal(await onnxExportState(dir), 'fresh');
  assert.notEqual((await readOnnxExportInfo(dir))?.weightsSha256, info?.weightsSha256);
  const [after1] = await s.sample([embedding(4)], [4]);
  assert.notDeepEqual(after1, before1, 'the new weights are served');
  const [ref] = await (await Sampler.fromCheckpoint(dir)).sample([embedding(4)], [4]);
  assert.ok(after1.every((v, j) => Math.abs(v - ref[j]) <= 1));
});

test('createSampler picks the engine; auto falls back to TensorFlow.js when the export cannot run', async () => {
  const dir = await makeCheckpoint('c', 4);
  const tfjs = await createSampler(dir, { engine: 'tfjs' });
  assert.equal(tfjs.engine, 'tfjs');
  assert.ok(!existsSync(path.join(dir, DECODER_ONNX)), 'the tfjs engine exports nothing');
  const auto = await createSampler(dir, { engine: 'auto', threads: 1 });
  assert.equal(auto.engine, 'onnx');
  const onnx = await createSampler(dir, { engine: 'onnx', threads: 1 });
  assert.equal(onnx.engine, 'onnx');
  const [a] = await auto.sample([embedding(5)], [5]);
  const [t] = await tfjs.sample([embedding(5)], [5]);
  assert.ok(a.every((v, j) => Math.abs(v - t[j]) <= 1));
  [tfjs, auto, onnx].forEach((s) => s.dispose());

  // Damage the export but keep its sidecar consistent in size: ONNX Runtime cannot load it.
  const file = path.join(dir, DECODER_ONNX);
  await fsp.writeFile(file, Buffer.alloc(statSync(file).size, 7));
  const sidecar = JSON.parse(await fsp.readFile(path.join(dir, DECODER_ONNX_INFO), 'utf8'));
  assert.equal(sidecar.bytes, statSync(file).size);
  await assert.rejects(createSampler(dir, { engine: 'onnx', threads: 1 }));
  const fallback = await createSampler(dir, { engine: 'auto', threads: 1 });
  assert.equal(fallback.engine, 'tfjs');
  fallback.dispose();

  // A missing checkpoint is the user's problem on every engine.
  await assert.rejects(createSampler(path.join(root, 'nope'), { engine: 'auto' }), UserError);
});

test('SAMPLER_ENGINE and ONNX_THREADS are validated', () => {
  assert.equal(samplerEngineFromEnv({}), 'auto');
  assert.equal(samplerEngineFromEnv({ SAMPLER_ENGINE: 'ONNX' }), 'onnx');
  assert.equal(samplerEngineFromEnv({ SAMPLER_ENGINE: 'tfjs' }), 'tfjs');
  assert.throws(() => samplerEngineFromEnv({ SAMPLER_ENGINE: 'torch' }), UserError);
  assert.equal(onnxThreads(undefined, {}), os.availableParallelism());
  assert.equal(onnxThreads(undefined, { ONNX_THREADS: '3' }), 3);
  assert.equal(onnxThreads(2, { ONNX_THREADS: '3' }), 2);
  assert.throws(() => onnxThreads(undefined, { ONNX_THREADS: 'many' }), UserError);
  assert.throws(() => onnxThreads(0, {}), UserError);
});

test('registering or activating a checkpoint exports its decoder; a checkpoint without weights is still registered', async () => {
  const regRoot = path.join(root, 'registry');
  const registry = new CheckpointRegistry(regRoot);
  const dir = await makeCheckpoint('d', 6);
  await registry.register('d', dir);
  assert.equal(await onnxExportState(dir), 'fresh');
  const e = await makeCheckpoint('e', 7);
  // Not registered and not under the root: an unknown name, refused with the known ones; nothing is activated.
  await assert.rejects(registry.activate('e'), (err: unknown) => err instanceof UserError && /Known models: d\b/.test(err.message));
  assert.equal(await registry.active(), null);
  await registry.register('e2', e);
  await fsp.rm(path.join(e, DECODER_ONNX));
  await fsp.rm(path.join(e, DECODER_ONNX_INFO));
  await registry.activate('e2');
  assert.equal(await onnxExportState(e), 'fresh', 'activation re-exports a missing export');
  const bare = path.join(root, 'bare');
  await fsp.mkdir(bare, { recursive: true });
  await fsp.writeFile(path.join(bare, 'meta.json'), JSON.stringify(meta('bare')));
  await registry.register('bare', bare);
  assert.deepEqual((await registry.list()).map((x) => x.name).sort(), ['bare', 'd', 'e2']);
});
