/**
 * The TensorFlow.js scene CLIP (src/training/clip/scene-clip-model.ts) and its contrastive training: the
 * folder it writes gives, through transformers.js (the embedder the bot uses), the embeddings of the
 * TensorFlow.js forward pass; its weights survive the trip through Hugging Face names and layouts; and
 * training on the wasm backend learns (an overfit of a few pairs).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/model/backend.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { clipTokenizerFiles, learnClipBpe } from '../../../src/training/clip/bpe-tokenizer.js';
import { readClipWeights, writeClipFolder } from '../../../src/training/clip/clip-folder.js';
import type { SceneClipConfig } from '../../../src/training/clip/scene-clip-config.js';
import { SceneClipModel } from '../../../src/training/clip/scene-clip-model.js';
import { captionTargets, learningRateAt, nearestImages, normalisedImages, tokenBatch, trainSceneClip } from '../../../src/training/clip/train-scene-clip.js';
import { encodePng, itemSeed, randomScene, renderScene, synthItem } from '../../../src/training/data/synth/index.js';
import { cosine } from '../../model/clip/helpers.js';

await initBackend();

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'scene-clip-model-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const captions = Array.from({ length: 60 }, (_, i) => synthItem(3, i).captions).flat();
const bpe = learnClipBpe(captions);

function smallConfig(over: Partial<SceneClipConfig> = {}): SceneClipConfig {
  return {
    vocabSize: bpe.vocabSize, contextLength: 40, textWidth: 32, textLayers: 2, textHeads: 2, textMlp: 64,
    imageSize: 32, patchSize: 8, visionWidth: 32, visionLayers: 2, visionHeads: 4, visionMlp: 64, projectionDim: 16,
    bosTokenId: bpe.bosTokenId, eosTokenId: bpe.eosTokenId, layerNormEps: 1e-5, logitScaleInit: Math.log(1 / 0.07), ...over,
  };
}

function rows(t: tf.Tensor2D): Float32Array[] {
  const [n, d] = t.shape;
  const data = t.dataSync() as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

/** Renders of random scenes at `size` px. */
function renders(n: number, size: number, seed = 5): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => renderScene(randomScene(itemSeed(seed, i)), size));
}

test('transformers.js embeddings of the written folder equal the TensorFlow.js forward pass (texts and images)', async () => {
  const config = smallConfig();
  const model = SceneClipModel.create(config, 7);
  const dir = path.join(root, 'parity');
  await writeClipFolder(dir, { config, weights: model.toClipWeights(), tokenizerFiles: { ...clipTokenizerFiles(bpe, config.contextLength) } });
  const texts = ['cows in snow', 'two brown horses on the sand at night', 'a green meadow with a white sheep under a cloudy sky', 'zebra'];
  const images = renders(4, config.imageSize);
  const tfText = rows(model.encodeText(tokenBatch(bpe, texts, config.contextLength)));
  const img = normalisedImages(images, config.imageSize);
  const tfImage = rows(model.encodeImage(img));
  img.dispose();
  const clip = await ClipEmbedder.load({ model: dir });
  try {
    const jsText = await clip.embedTexts(texts);
    const jsImage = await clip.embedImages(await Promise.all(images.map((p) => encodePng(p, config.imageSize))));
    texts.forEach((t, i) => assert.ok(cosine(tfText[i], jsText[i]) >= 0.9999, `text "${t}": cosine ${cosine(tfText[i], jsText[i])}`));
    images.forEach((_, i) => assert.ok(cosine(tfImage[i], jsImage[i]) >= 0.9999, `image ${i}: cosine ${cosine(tfImage[i], jsImage[i])}`));
    assert.ok(cosine(jsText[0], jsText[1]) < 0.999, 'different texts give different embeddings');
  } finally {
    await clip.dispose();
    model.dispose();
  }
});

test('weights keep their values through Hugging Face names and layouts (split heads, transposed matrices, OIHW patches)', async () => {
  const config = smallConfig();
  const model = SceneClipModel.create(config, 11);
  const dir = path.join(root, 'roundtrip');
  await writeClipFolder(dir, { config, weights: model.toClipWeights(), tokenizerFiles: { ...clipTokenizerFiles(bpe, config.contextLength) } });
  const again = SceneClipModel.fromWeights(config, await readClipWeights(dir));
  const tokens = tokenBatch(bpe, ['sheep at sunset', 'a yellow field'], config.contextLength);
  const img = normalisedImages(renders(2, config.imageSize, 9), config.imageSize);
  try {
    assert.deepEqual(again.encodeText(tokens).arraySync(), model.encodeText(tokens).arraySync());
    assert.deepEqual(again.encodeImage(img).arraySync(), model.encodeImage(img).arraySync());
    const hf = model.toClipWeights();
    assert.deepEqual(hf.get('text_model.encoder.layers.0.self_attn.q_proj.weight')?.shape, [32, 32]);
    assert.deepEqual(hf.get('vision_model.embeddings.patch_embedding.weight')?.shape, [32, 3, 8, 8]);
    assert.deepEqual(hf.get('text_projection.weight')?.shape, [16, 32]);
  } finally {
    img.dispose();
    model.dispose();
    again.dispose();
  }
});

test('the text tower pools at the first end token: padding after it changes nothing', () => {
  const config = smallConfig();
  const model = SceneClipModel.create(config, 3);
  try {
    const short = tokenBatch(bpe, ['cows in snow'], config.contextLength);
    const padded = { ...short, ids: new Int32Array([...short.ids, bpe.eosTokenId, bpe.eosTokenId]), length: short.length + 2 };
    const a = model.encodeText(short).dataSync();
    const b = model.encodeText(padded).dataSync();
    assert.ok(cosine(a, b) > 0.99999, `cosine ${cosine(a, b)}`);
    const other = model.encodeText(tokenBatch(bpe, ['cows in sand'], config.contextLength)).dataSync();
    assert.ok(cosine(a, other) < 0.9999, 'a different word moves the embedding');
  } finally {
    model.dispose();
  }
});

test('contrastive training on the wasm backend learns to pair images with their captions', async () => {
  const config = smallConfig({ textLayers: 1, visionLayers: 1 });
  const items = Array.from({ length: 12 }, (_, i) => synthItem(21, i));
  const images = items.map((it) => ({ pixels: renderScene(it.scene, config.imageSize), captions: [it.captions[0]] }));
  const losses: number[] = [];
  const { model, steps } = await trainSceneClip({
    config, tokenizer: bpe, images, steps: 60, batchSize: 12, learningRate: 3e-3, seed: 1, hardNegatives: 0,
    onProgress: (p) => losses.push(p.loss),
  });
  try {
    assert.equal(steps, 60);
    assert.ok(losses[losses.length - 1] < 0.3 * losses[0], `loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`);
    const txt = rows(model.encodeText(tokenBatch(bpe, images.map((i) => i.captions[0]), config.contextLength)));
    const imgT = normalisedImages(images.map((i) => i.pixels), config.imageSize);
    const img = rows(model.encodeImage(imgT));
    imgT.dispose();
    let right = 0;
    txt.forEach((t, i) => {
      const best = img.map((e, j) => [cosine(t, e), j] as const).sort((a, b) => b[0] - a[0])[0][1];
      if (best === i || images[best].captions[0] === images[i].captions[0]) right++;
    });
    assert.ok(right >= 10, `${right}/12 captions retrieve their own image`);
  } finally {
    model.dispose();
  }
});

test('captionTargets makes pairs with the same caption positives of each other', () => {
  assert.deepEqual(Array.from(captionTargets(['a', 'b', 'a'])), [0.5, 0, 0.5, 0, 1, 0, 0.5, 0, 0.5]);
  assert.deepEqual(Array.from(captionTargets(['x', 'y'])), [1, 0, 0, 1]);
});

test('nearestImages returns the anchor first, then the most similar images not yet taken', () => {
  const e = new Float32Array([1, 0, 0.9, Math.sqrt(1 - 0.81), 0, 1, 0.99, Math.sqrt(1 - 0.9801)]);
  assert.deepEqual(nearestImages(e, 2, 0, 3, new Set()), [0, 3, 1]);
  assert.deepEqual(nearestImages(e, 2, 0, 3, new Set([3])), [0, 1, 2]);
});

test('the learning rate warms up linearly, then decays by a cosine to a tenth', () => {
  assert.equal(learningRateAt(0, 100, 10, 1), 0.1);
  assert.equal(learningRateAt(9, 100, 10, 1), 1);
  assert.ok(Math.abs(learningRateAt(10, 100, 10, 1) - 1) < 1e-12);
  assert.ok(Math.abs(learningRateAt(100, 100, 10, 1) - 0.1) < 1e-12);
  assert.ok(learningRateAt(50, 100, 10, 1) < learningRateAt(30, 100, 10, 1));
});

test('with more images than the neighbour pool, each refresh embeds only a pool of them, and training still learns', async () => {
  const config = smallConfig({ textLayers: 1, visionLayers: 1 });
  const items = Array.from({ length: 24 }, (_, i) => synthItem(22, i));
  const images = items.map((it) => ({ pixels: renderScene(it.scene, config.imageSize), captions: it.captions }));
  const losses: number[] = [];
  const refreshes: number[] = [];
  const { model, steps } = await trainSceneClip({
    config, tokenizer: bpe, images, steps: 30, batchSize: 8, learningRate: 3e-3, seed: 2, hardNegatives: 0.5, refreshEvery: 10,
    neighbourPool: 12, onRefresh: (n) => refreshes.push(n), onProgress: (p) => losses.push(p.loss),
  });
  model.dispose();
  assert.equal(steps, 30);
  // Warm-up is 2 steps: refreshes at steps 2, 12 and 22, each of 12 images, not 24.
  assert.deepEqual(refreshes, [12, 12, 12]);
  assert.ok(losses.every(Number.isFinite));
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)), `loss ${mean(losses.slice(0, 5)).toFixed(3)} → ${mean(losses.slice(-5)).toFixed(3)}`);
});
