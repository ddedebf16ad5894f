/**
 * The scene CLIP that ships in models/scene-clip: it loads through the bot's embedder like a hub CLIP,
 * transformers.js gives the embeddings of the TensorFlow.js model it was trained as, and text-to-image
 * retrieval on renders of unseen scenes is what its eval.json reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../../src/model/backend.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { repoRoot } from '../../../src/paths.js';
import { learnClipBpe } from '../../../src/training/clip/bpe-tokenizer.js';
import { readClipWeights, readSceneClipConfig } from '../../../src/training/clip/clip-folder.js';
import { evaluateSceneClipFolder } from '../../../src/training/clip/scene-clip-run.js';
import { SceneClipModel } from '../../../src/training/clip/scene-clip-model.js';
import { normalisedImages, tokenBatch } from '../../../src/training/clip/train-scene-clip.js';
import { encodePng, heldOutPrompts, itemSeed, randomScene, renderScene, synthItem } from '../../../src/training/data/synth/index.js';
import { cosine } from './helpers.js';

await initBackend();

const DIR = path.join(repoRoot, 'models', 'scene-clip');

test('transformers.js embeddings of the shipped scene CLIP equal its TensorFlow.js forward pass', async () => {
  const config = await readSceneClipConfig(DIR);
  const model = SceneClipModel.fromWeights(config, await readClipWeights(DIR));
  // The recipe's tokenizer is learnt from the training captions; rebuilding it from the synthetic set's
  // captions must give the ids the shipped tokenizer.json gives (checked through the embedder below).
  const recipe = JSON.parse(readFileSync(path.join(DIR, 'recipe.json'), 'utf8')) as { images: number; synth?: { seed: number } };
  const bpe = learnClipBpe(Array.from({ length: recipe.images }, (_, i) => synthItem(recipe.synth?.seed ?? 1, i).captions).flat());
  const texts = heldOutPrompts(3, 8).map((p) => p.prompt).concat(['cows in snow', 'a zebra on the moon']);
  const renders = Array.from({ length: 6 }, (_, i) => renderScene(randomScene(itemSeed(77, i)), config.imageSize));
  const clip = await ClipEmbedder.load({ model: DIR });
  try {
    const tfText = model.encodeText(tokenBatch(bpe, texts, config.contextLength)).arraySync();
    const jsText = await clip.embedTexts(texts);
    texts.forEach((t, i) => assert.ok(cosine(tfText[i], jsText[i]) >= 0.9999, `"${t}": cosine ${cosine(tfText[i], jsText[i])}`));
    const img = normalisedImages(renders, config.imageSize);
    const tfImage = model.encodeImage(img).arraySync();
    img.dispose();
    const jsImage = await clip.embedImages(await Promise.all(renders.map((r) => encodePng(r, config.imageSize))));
    renders.forEach((_, i) => assert.ok(cosine(tfImage[i], jsImage[i]) >= 0.9999, `render ${i}: cosine ${cosine(tfImage[i], jsImage[i])}`));
  } finally {
    await clip.dispose();
    model.dispose();
  }
});

test('the shipped scene CLIP retrieves the right sky and ground for held-out prompts, as its eval.json says', async () => {
  const reported = JSON.parse(readFileSync(path.join(DIR, 'eval.json'), 'utf8')) as { skyGround: number; species: number };
  const config = await readSceneClipConfig(DIR);
  const r = await evaluateSceneClipFolder(DIR, config.imageSize);
  assert.ok(r.skyGround >= 0.95, `sky and ground right for ${(100 * r.skyGround).toFixed(1)}% of held-out prompts`);
  assert.ok(Math.abs(r.skyGround - reported.skyGround) <= 0.03, `${r.skyGround} vs reported ${reported.skyGround}`);
  assert.ok(Math.abs(r.species - reported.species) <= 0.05, `species ${r.species} vs reported ${reported.species}`);
});
