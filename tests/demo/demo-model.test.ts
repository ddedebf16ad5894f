import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { buildCvae } from '../../src/model/cvae.js';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint, type CheckpointMeta } from '../../src/model/checkpoint.js';
import { portableClipModelName, resolveRecordedClipModel, sameClipModel } from '../../src/model/clip/clip-name.js';
import { getPreset } from '../../src/model/presets.js';
import { Sampler } from '../../src/model/sampler.js';
import { convertModelFolderToFloat16, float16BitsToFloat32, float32ToFloat16Bits } from '../../src/model/weights-float16.js';
import { repoRoot } from '../../src/paths.js';
import { heldOutPrompts } from '../../src/training/data/synth/index.js';
import { synthCaptions } from '../../src/training/judge/quality-cli.js';

await initBackend();

const DEMO_DIR = path.join(repoRoot, 'models', 'demo');
const TINY_CLIP = 'tests/fixtures/tiny-clip';
const SCENE_CLIP = 'models/scene-clip';

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'demo-test-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function metaFor(preset = getPreset('tiny')): CheckpointMeta {
  return {
    name: 'unit', preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: TINY_CLIP,
    datasetFingerprint: 'x', epoch: 1, step: 1, losses: {}, createdAt: new Date(0).toISOString(), presetConfig: preset,
  };
}

test('float16 bits: exact for representable values, round to nearest even, range edges', () => {
  for (const v of [0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 1 + 2 ** -10]) {
    assert.equal(float16BitsToFloat32(float32ToFloat16Bits(v)), v, String(v));
  }
  assert.equal(float32ToFloat16Bits(-0), 0x8000);
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00, 'a tie rounds to the even mantissa (down)');
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to the even mantissa (up)');
  assert.equal(float32ToFloat16Bits(1e6), 0x7c00, 'overflow is +Infinity');
  assert.equal(float32ToFloat16Bits(2 ** -26), 0, 'below half the smallest subnormal is zero');
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
  // Relative error of normal numbers is at most 2^-11.
  let worst = 0;
  for (let i = 0; i < 10000; i++) {
    const v = (Math.random() - 0.5) * 10 ** (Math.random() * 8 - 4);
    const back = float16BitsToFloat32(float32ToFloat16Bits(Math.fround(v)));
    if (Math.abs(v) >= 2 ** -14) worst = Math.max(worst, Math.abs(back - Math.fround(v)) / Math.abs(Math.fround(v)));
  }
  assert.ok(worst <= 2 ** -11 + 1e-12, `worst relative error ${worst}`);
});

test('a checkpoint converted to float16 loads transparently with every weight within float16 precision', async () => {
  const preset = getPreset('tiny');
  const cvae = buildCvae(preset, { seed: 3 });
  const dir = path.join(root, 'fp16');
  await saveCheckpoint(dir, cvae, metaFor(preset));
  const before = cvae.trainableWeights().map((w) => w.dataSync().slice());
  const bytes = async () => (await fsp.stat(path.join(dir, 'decoder', 'weights.bin'))).size;
  const f32Bytes = await bytes();
  const enc = await convertModelFolderToFloat16(path.join(dir, 'encoder'));
  const dec = await convertModelFolderToFloat16(path.join(dir, 'decoder'));
  assert.ok(enc.converted > 0 && dec.converted > 0);
  assert.equal(await bytes(), f32Bytes / 2, 'float16 halves the weights file');
  const again = await convertModelFolderToFloat16(path.join(dir, 'decoder'));
  assert.equal(again.converted, 0, 'converting twice changes nothing');
  const { cvae: loaded } = await loadCheckpoint(dir);
  try {
    const after = loaded.trainableWeights().map((w) => w.dataSync());
    assert.equal(after.length, before.length);
    before.forEach((b, k) => {
      b.forEach((v, i) => {
        const tol = Math.max(Math.abs(v) * 2 ** -11, 2 ** -25);
        assert.ok(Math.abs(after[k][i] - v) <= tol, `weight ${k}[${i}]: ${after[k][i]} vs ${v}`);
      });
    });
    // Non-trainable state (BatchNorm moving statistics) round-trips too.
    const z = tf.zeros([2, preset.latentDim]) as tf.Tensor2D;
    const e = tf.ones([2, preset.embeddingDim]) as tf.Tensor2D;
    const a = cvae.decode(z, e);
    const b = loaded.decode(z, e);
    assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 5e-3);
    tf.dispose([z, e, a, b]);
  } finally {
    loaded.dispose();
    cvae.dispose();
  }
});

test('CLIP names: the fixture is recorded repo-relative and compares equal to its absolute folder', () => {
  const abs = path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');
  assert.equal(portableClipModelName(abs), TINY_CLIP);
  assert.equal(portableClipModelName('Xenova/clip-vit-base-patch32'), 'Xenova/clip-vit-base-patch32');
  assert.equal(portableClipModelName('/elsewhere/clip'), '/elsewhere/clip');
  assert.equal(resolveRecordedClipModel(TINY_CLIP), abs);
  assert.ok(sameClipModel(TINY_CLIP, abs));
  assert.ok(sameClipModel('Xenova/clip-vit-base-patch32', 'Xenova/clip-vit-base-patch32'));
  assert.ok(!sameClipModel(TINY_CLIP, 'Xenova/clip-vit-base-patch32'));
  assert.ok(!sameClipModel(abs, '/elsewhere/tiny-clip'));
});

test('synthCaptions rebuilds the training captions of a synthetic set', () => {
  const caps = synthCaptions(1, 20);
  assert.ok(caps.size >= 60);
  assert.ok(heldOutPrompts(7, 24, { exclude: caps }).every((p) => !caps.has(p.prompt)));
});

test('the shipped demo checkpoint loads: demo preset, 64 px, the scene CLIP, float16 weights, no optimizer state', async () => {
  const meta = await readCheckpointMeta(DEMO_DIR);
  assert.equal(meta.preset, 'demo');
  assert.equal(meta.resolution, 64);
  assert.equal(meta.clipModel, SCENE_CLIP, 'recorded repo-relative so a fresh clone finds it');
  assert.ok(existsSync(path.join(repoRoot, SCENE_CLIP, 'config.json')), 'the scene CLIP ships beside it');
  const manifest = JSON.parse(await fsp.readFile(path.join(DEMO_DIR, 'decoder', 'model.json'), 'utf8')) as tf.io.ModelJSON;
  assert.ok(manifest.weightsManifest[0].weights.every((w) => w.dtype !== 'float32' || w.quantization?.dtype === 'float16'));
  assert.ok(!existsSync(path.join(DEMO_DIR, 'optimizer.bin')), 'no optimizer state shipped');
  const sampler = await Sampler.fromCheckpoint(DEMO_DIR);
  try {
    const dim = meta.presetConfig.embeddingDim;
    const [img] = await sampler.sample([new Float32Array(dim).fill(1 / Math.sqrt(dim))], [1]);
    assert.equal(img.length, 64 * 64 * 3);
  } finally {
    sampler.dispose();
  }
});

test('the demo is refused with any CLIP but the scene CLIP it was trained with', () => {
  assert.ok(sameClipModel(SCENE_CLIP, path.join(repoRoot, SCENE_CLIP)));
  assert.ok(!sameClipModel(SCENE_CLIP, TINY_CLIP));
  assert.ok(!sameClipModel(SCENE_CLIP, 'Xenova/clip-vit-base-patch32'));
});
