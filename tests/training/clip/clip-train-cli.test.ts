/**
 * `clip train` from a dataset folder to a model folder the bot's embedder loads, and its refusals: a dataset
 * with no captioned image is an error that writes nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../../src/errors.js';
import { initBackend } from '../../../src/model/backend.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { runSceneClipTraining } from '../../../src/training/clip/scene-clip-run.js';
import { generateSyntheticDataset } from '../../../src/training/data/synth/index.js';

await initBackend();

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'clip-train-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const tiny = { width: 16, layers: 1, heads: 2, mlp: 32, projectionDim: 8, imageSize: 32, patchSize: 16 };

test('trains on a synthetic dataset and writes a folder the embedder loads, with its recipe', async () => {
  const dataset = path.join(root, 'synth');
  await generateSyntheticDataset({ count: 12, resolution: 32, seed: 4, outDir: dataset });
  const out = path.join(root, 'clip');
  const r = await runSceneClipTraining({ dataset, out, steps: 3, batchSize: 6, learningRate: 1e-3, seed: 1, sizes: tiny, skipEval: true });
  assert.equal(r.images, 12);
  assert.equal(r.steps, 3);
  for (const f of ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/text_model.onnx', 'onnx/vision_model.onnx', 'model.safetensors', 'recipe.json']) {
    assert.ok(existsSync(path.join(out, f)), f);
  }
  const recipe = JSON.parse(await fsp.readFile(path.join(out, 'recipe.json'), 'utf8')) as { steps: number; images: number };
  assert.deepEqual([recipe.steps, recipe.images], [3, 12]);
  const clip = await ClipEmbedder.load({ model: out });
  try {
    assert.equal(clip.dim, 8);
    const [a, b] = await clip.embedTexts(['cows in snow', 'horses on the beach']);
    assert.equal(a.length, 8);
    assert.notDeepEqual(a, b);
  } finally {
    await clip.dispose();
  }
});

test('a dataset without captioned images is refused and nothing is written', async () => {
  const dataset = path.join(root, 'empty');
  await fsp.mkdir(path.join(dataset, 'annotations'), { recursive: true });
  await fsp.mkdir(path.join(dataset, 'images'), { recursive: true });
  await fsp.writeFile(path.join(dataset, 'annotations', 'captions.json'), JSON.stringify({ images: [{ id: 1, file_name: 'a.png' }], annotations: [] }));
  const out = path.join(root, 'never');
  await assert.rejects(
    runSceneClipTraining({ dataset, out, steps: 1, batchSize: 2, learningRate: 1e-3, seed: 1, sizes: tiny, skipEval: true }),
    (err: unknown) => err instanceof UserError && /no captioned images/.test(err.message),
  );
  assert.equal(existsSync(out), false);
  await assert.rejects(
    runSceneClipTraining({ dataset: path.join(root, 'missing'), out, steps: 1, batchSize: 2, learningRate: 1e-3, seed: 1, sizes: tiny, skipEval: true }),
    (err: unknown) => err instanceof UserError && /does not exist/.test(err.message),
  );
  assert.equal(existsSync(out), false);
});
