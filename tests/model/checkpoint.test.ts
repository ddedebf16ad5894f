import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { buildCvae, type Cvae } from '../../src/model/cvae.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint, type CheckpointMeta } from '../../src/model/checkpoint.js';
import { cvaeLoss } from '../../src/model/loss.js';
import { getPreset } from '../../src/model/presets.js';
import { UserError } from '../../src/errors.js';

await initBackend();

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ckpt-test-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const preset = getPreset('tiny');

function metaFor(cvae: Cvae, epoch = 1): CheckpointMeta {
  return {
    name: 'unit',
    preset: cvae.preset.name,
    resolution: cvae.preset.resolution,
    conditioning: cvae.preset.conditioning,
    clipModel: 'tiny-clip',
    datasetFingerprint: 'abc123',
    epoch,
    step: epoch * 10,
    losses: { train: { total: 10, bce: 9, kl: 2, ssim: 0.5 }, val: { total: 11, bce: 10, kl: 2, ssim: 0.4 } },
    bestValLoss: 11,
    createdAt: new Date(0).toISOString(),
    presetConfig: cvae.preset,
  };
}

const inputs = () => ({
  x: tf.randomUniform([2, preset.resolution, preset.resolution, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
  emb: tf.randomNormal([2, preset.embeddingDim], 0, 0.05, 'float32', 2) as tf.Tensor2D,
  z: tf.randomNormal([2, preset.latentDim], 0, 1, 'float32', 3) as tf.Tensor2D,
});

function outputs(cvae: Cvae): number[][] {
  return tf.tidy(() => {
    const { x, emb, z } = inputs();
    const f = cvae.forward(x, emb, { training: false, seed: 4 });
    return [f.xHat, f.mu, f.logvar, cvae.decode(z, emb)].map((t) => Array.from(t.dataSync()));
  });
}

function trainSteps(cvae: Cvae, optimizer: tf.Optimizer, n: number, from = 0) {
  const vars = cvae.trainableWeights();
  for (let i = 0; i < n; i++) {
    tf.tidy(() => {
      const { x, emb } = inputs();
      optimizer.minimize(() => {
        const f = cvae.forward(x, emb, { training: true, seed: from + i });
        return cvaeLoss(x, f.xHat, f.mu, f.logvar).total;
      }, false, vars);
    });
  }
}

test('save then load gives the same outputs, metadata, and the TensorFlow.js layers files', async () => {
  const dir = path.join(root, 'roundtrip');
  const cvae = buildCvae(preset, { seed: 1 });
  // A few training steps so BatchNorm moving statistics differ from their initial values.
  trainSteps(cvae, tf.train.adam(0.01), 2);
  await saveCheckpoint(dir, cvae, metaFor(cvae));
  for (const f of ['meta.json', 'encoder/model.json', 'encoder/weights.bin', 'decoder/model.json', 'decoder/weights.bin']) {
    assert.ok(existsSync(path.join(dir, f)), `missing ${f}`);
  }
  const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'decoder/model.json'), 'utf8'));
  assert.equal(manifest.format, 'layers-model');
  assert.deepEqual(manifest.weightsManifest[0].paths, ['./weights.bin']);
  const before = tf.memory().numTensors;
  const { cvae: loaded, meta, optimizerRestored } = await loadCheckpoint(dir);
  assert.equal(optimizerRestored, false);
  assert.deepEqual(meta, metaFor(cvae));
  assert.deepEqual(await readCheckpointMeta(dir), meta);
  assert.equal(loaded.trainableParams(), cvae.trainableParams());
  assert.deepEqual(outputs(loaded), outputs(cvae));
  loaded.dispose();
  assert.equal(tf.memory().numTensors, before, 'a loaded model frees all its tensors');
  cvae.dispose();
});

test('optimizer state round-trips: training resumed from a checkpoint matches uninterrupted training', async () => {
  const dir = path.join(root, 'resume');
  const a = buildCvae(preset, { seed: 2 });
  const optA = tf.train.adam(0.01);
  trainSteps(a, optA, 3);
  await saveCheckpoint(dir, a, metaFor(a, 3), { optimizer: optA });
  assert.ok(existsSync(path.join(dir, 'optimizer.json')));

  const optB = tf.train.adam(0.01);
  const { cvae: b, optimizerRestored } = await loadCheckpoint(dir, { optimizer: optB });
  assert.equal(optimizerRestored, true);
  assert.equal(optB.iterations, optA.iterations);
  const stateA = await optA.getWeights();
  const stateB = await optB.getWeights();
  assert.equal(stateB.length, stateA.length);
  stateA.forEach((w, i) => assert.deepEqual(Array.from(stateB[i].tensor.dataSync()), Array.from(w.tensor.dataSync()), w.name));
  tf.dispose([stateA[0].tensor, stateB[0].tensor]);

  trainSteps(a, optA, 2, 3);
  trainSteps(b, optB, 2, 3);
  assert.deepEqual(outputs(b), outputs(a));
  a.dispose();
  b.dispose();
  optA.dispose();
  optB.dispose();
});

test('saves keep files they do not own, and replace the ones they do', async () => {
  const dir = path.join(root, 'extras');
  const cvae = buildCvae(preset, { seed: 3 });
  const opt = tf.train.adam(0.01);
  trainSteps(cvae, opt, 1);
  await saveCheckpoint(dir, cvae, metaFor(cvae, 1), { optimizer: opt });
  await fsp.writeFile(path.join(dir, 'samples-epoch-1.png'), 'png bytes');
  await fsp.mkdir(path.join(dir, 'onnx'));
  await fsp.writeFile(path.join(dir, 'onnx', 'decoder.onnx'), 'onnx bytes');
  await saveCheckpoint(dir, cvae, metaFor(cvae, 2));
  assert.equal(await fsp.readFile(path.join(dir, 'samples-epoch-1.png'), 'utf8'), 'png bytes');
  assert.equal(await fsp.readFile(path.join(dir, 'onnx', 'decoder.onnx'), 'utf8'), 'onnx bytes');
  assert.equal((await readCheckpointMeta(dir)).epoch, 2);
  assert.ok(!existsSync(path.join(dir, 'optimizer.json')), 'a save without optimizer drops the stale optimizer state');
  assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('.extras')), [], 'no temporary folders left');
  cvae.dispose();
  opt.dispose();
});

test('a save killed before its swap leaves the previous checkpoint loadable, and the next save cleans up', async () => {
  const dir = path.join(root, 'killed');
  const cvae = buildCvae(preset, { seed: 4 });
  await saveCheckpoint(dir, cvae, metaFor(cvae, 1));
  const expected = outputs(cvae);
  // What a process killed while writing leaves behind: a partial temp folder next to the checkpoint.
  const tmp = path.join(root, '.killed.tmp-999-1');
  await fsp.mkdir(path.join(tmp, 'encoder'), { recursive: true });
  await fsp.writeFile(path.join(tmp, 'encoder', 'weights.bin'), Buffer.alloc(10));
  const { cvae: loaded, meta } = await loadCheckpoint(dir);
  assert.equal(meta.epoch, 1);
  assert.deepEqual(outputs(loaded), expected);
  loaded.dispose();
  await saveCheckpoint(dir, cvae, metaFor(cvae, 2));
  assert.ok(!existsSync(tmp), 'the leftover temp folder is removed by the next save');
  assert.equal((await readCheckpointMeta(dir)).epoch, 2);
  cvae.dispose();
});

test('a save killed between its two renames: readers use the copy left aside, the next save restores it', async () => {
  const dir = path.join(root, 'swap');
  const cvae = buildCvae(preset, { seed: 5 });
  await saveCheckpoint(dir, cvae, metaFor(cvae, 1));
  await fsp.writeFile(path.join(dir, 'curve.png'), 'curve');
  const aside = path.join(root, '.swap.old-1-1');
  await fsp.rename(dir, aside);
  assert.equal((await readCheckpointMeta(dir)).epoch, 1);
  const { cvae: loaded } = await loadCheckpoint(dir);
  loaded.dispose();
  await saveCheckpoint(dir, cvae, metaFor(cvae, 2));
  assert.equal((await readCheckpointMeta(dir)).epoch, 2);
  assert.equal(await fsp.readFile(path.join(dir, 'curve.png'), 'utf8'), 'curve');
  assert.ok(!existsSync(aside));
  cvae.dispose();
});

test('a truncated weights file, a missing folder and broken metadata give clear UserErrors', async () => {
  const dir = path.join(root, 'truncated');
  const cvae = buildCvae(preset, { seed: 6 });
  await saveCheckpoint(dir, cvae, metaFor(cvae));
  cvae.dispose();
  const bin = path.join(dir, 'decoder', 'weights.bin');
  const full = await fsp.readFile(bin);
  await fsp.writeFile(bin, full.subarray(0, full.length - 100));
  const before = tf.memory().numTensors;
  await assert.rejects(loadCheckpoint(dir), (err: unknown) => err instanceof UserError && /truncated/.test(err.message) && err.message.includes(dir));
  assert.equal(tf.memory().numTensors, before, 'a failed load frees what it built');
  await assert.rejects(loadCheckpoint(path.join(root, 'nope')), (err: unknown) => err instanceof UserError && /no meta\.json/.test(err.message));
  await fsp.writeFile(path.join(dir, 'meta.json'), '{"name": 1}');
  await assert.rejects(readCheckpointMeta(dir), (err: unknown) => err instanceof UserError && /not valid checkpoint metadata/.test(err.message));
});
