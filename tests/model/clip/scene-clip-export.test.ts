/**
 * The scene CLIP folder (src/training/clip/clip-folder.ts + src/model/onnx/clip-export.ts) against a plain
 * float64 forward pass of Hugging Face CLIP written here, through the project's own ClipEmbedder (so through
 * transformers.js exactly as a hub CLIP is used), and its ONNX towers directly for the hidden states.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { UserError } from '../../../src/errors.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { decodeImageRgb, resizeAndCropLikeClip } from '../../../src/model/clip/image-input.js';
import { checkClipWeights, clipParameterShapes } from '../../../src/model/onnx/clip-export.js';
import { clipPreprocessorConfig, readClipWeights, readSceneClipConfig, writeClipFolder } from '../../../src/training/clip/clip-folder.js';
import { CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, type ClipTensor, type ClipWeights, type SceneClipConfig } from '../../../src/training/clip/scene-clip-config.js';
import { gaussian, mulberry32 } from '../../../src/util/prng.js';
import { cosine } from './helpers.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/tiny-clip');
const readJson = (name: string) => JSON.parse(readFileSync(path.join(fixture, name), 'utf8')) as Record<string, unknown>;

// The fixture's tokenizer: 734 tokens, <|startoftext|> 732, <|endoftext|> 733 (the largest id).
const config: SceneClipConfig = {
  vocabSize: 734,
  contextLength: 16,
  textWidth: 16,
  textLayers: 2,
  textHeads: 2,
  textMlp: 32,
  imageSize: 32,
  patchSize: 8,
  visionWidth: 16,
  visionLayers: 2,
  visionHeads: 2,
  visionMlp: 24,
  projectionDim: 8,
  bosTokenId: 732,
  eosTokenId: 733,
  layerNormEps: 1e-5,
  logitScaleInit: Math.log(1 / 0.07),
};

const tokenizerFiles = {
  'tokenizer.json': readJson('tokenizer.json'),
  'tokenizer_config.json': { ...readJson('tokenizer_config.json'), model_max_length: config.contextLength },
  'special_tokens_map.json': { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' },
};

/** Random weights of the right shapes, scaled so activations stay O(1) and every part matters. */
function randomWeights(seed: number, cfg: SceneClipConfig = config): ClipWeights {
  const random = mulberry32(seed);
  const weights: ClipWeights = new Map();
  for (const [name, shape] of clipParameterShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length >= 2 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const z = gaussian(random);
      if (name === 'logit_scale') data[i] = config.logitScaleInit;
      else if (/(layer_norm\d?|layernorm|layrnorm)\.weight$/.test(name)) data[i] = 1 + 0.2 * z;
      else if (name.endsWith('.bias')) data[i] = 0.2 * z;
      else if (name.includes('embedding')) data[i] = name.includes('patch') ? z / Math.sqrt(fanIn) : z;
      else data[i] = z / Math.sqrt(fanIn);
    }
    weights.set(name, { shape, data });
  }
  return weights;
}

// ---- float64 reference: Hugging Face CLIP, one sequence at a time ----

function w64(weights: ClipWeights, name: string): ClipTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`no ${name}`);
  return t;
}

/** x [n, in] @ W^T + b for W [out, in]. */
function linear(x: Float64Array, n: number, w: ClipTensor, b?: ClipTensor): Float64Array {
  const [out, inDim] = w.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i] * w.data[o * inDim + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, n: number, width: number, gamma: ClipTensor, beta: ClipTensor): Float64Array {
  const y = new Float64Array(n * width);
  for (let r = 0; r < n; r++) {
    let mean = 0;
    for (let i = 0; i < width; i++) mean += x[r * width + i];
    mean /= width;
    let variance = 0;
    for (let i = 0; i < width; i++) variance += (x[r * width + i] - mean) ** 2;
    variance /= width;
    const inv = 1 / Math.sqrt(variance + config.layerNormEps);
    for (let i = 0; i < width; i++) y[r * width + i] = (x[r * width + i] - mean) * inv * gamma.data[i] + beta.data[i];
  }
  return y;
}

/** One pre-LN CLIP encoder layer; `visible(q, k)` says whether query q may attend to key k. */
function encoderLayer(weights: ClipWeights, p: string, x: Float64Array, n: number, width: number, heads: number, visible: (q: number, k: number) => boolean): Float64Array {
  const w = (s: string) => w64(weights, `${p}.${s}`);
  const h = layerNorm(x, n, width, w('layer_norm1.weight'), w('layer_norm1.bias'));
  const q = linear(h, n, w('self_attn.q_proj.weight'), w('self_attn.q_proj.bias'));
  const k = linear(h, n, w('self_attn.k_proj.weight'), w('self_attn.k_proj.bias'));
  const v = linear(h, n, w('self_attn.v_proj.weight'), w('self_attn.v_proj.bias'));
  const d = width / heads;
  const ctx = new Float64Array(n * width);
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < n; i++) {
      const scores: number[] = [];
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[i * width + head * d + c] * k[j * width + head * d + c];
        scores.push(visible(i, j) ? s / Math.sqrt(d) : -Infinity);
      }
      const max = Math.max(...scores);
      const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - max)));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < n; j++) {
        for (let c = 0; c < d; c++) ctx[i * width + head * d + c] += (e[j] / sum) * v[j * width + head * d + c];
      }
    }
  }
  const attn = linear(ctx, n, w('self_attn.out_proj.weight'), w('self_attn.out_proj.bias'));
  const x1 = x.map((val, i) => val + attn[i]);
  const h2 = layerNorm(x1, n, width, w('layer_norm2.weight'), w('layer_norm2.bias'));
  const f1 = linear(h2, n, w('mlp.fc1.weight'), w('mlp.fc1.bias')).map((z) => z / (1 + Math.exp(-1.702 * z)));
  const f2 = linear(f1, n, w('mlp.fc2.weight'), w('mlp.fc2.bias'));
  return x1.map((val, i) => val + f2[i]);
}

/** Text tower on one (possibly padded) row: last_hidden_state [n, width] and text_embeds. */
function referenceText(weights: ClipWeights, ids: number[], mask: number[] = ids.map(() => 1)) {
  const n = ids.length;
  const width = config.textWidth;
  const tok = w64(weights, 'text_model.embeddings.token_embedding.weight');
  const pos = w64(weights, 'text_model.embeddings.position_embedding.weight');
  let x: Float64Array = new Float64Array(n * width);
  for (let t = 0; t < n; t++) for (let i = 0; i < width; i++) x[t * width + i] = tok.data[ids[t] * width + i] + pos.data[t * width + i];
  for (let l = 0; l < config.textLayers; l++) {
    x = encoderLayer(weights, `text_model.encoder.layers.${l}`, x, n, width, config.textHeads, (qi, kj) => kj <= qi && mask[kj] === 1);
  }
  const hidden = layerNorm(x, n, width, w64(weights, 'text_model.final_layer_norm.weight'), w64(weights, 'text_model.final_layer_norm.bias'));
  const end = ids.indexOf(config.eosTokenId);
  const embeds = linear(hidden.slice(end * width, (end + 1) * width), 1, w64(weights, 'text_projection.weight'));
  return { hidden, embeds };
}

/** CLIP-normalised CHW pixels of an RGB image already at imageSize. */
function pixelValues(rgb: ArrayLike<number>): Float64Array {
  const s = config.imageSize;
  const out = new Float64Array(3 * s * s);
  for (let c = 0; c < 3; c++) for (let i = 0; i < s * s; i++) out[c * s * s + i] = (rgb[i * 3 + c] / 255 - CLIP_IMAGE_MEAN[c]) / CLIP_IMAGE_STD[c];
  return out;
}

/** Vision tower on one image (CHW pixel values): last_hidden_state [patches + 1, width] and image_embeds. */
function referenceVision(weights: ClipWeights, pixels: ArrayLike<number>) {
  const s = config.imageSize;
  const p = config.patchSize;
  const g = s / p;
  const width = config.visionWidth;
  const n = g * g + 1;
  const conv = w64(weights, 'vision_model.embeddings.patch_embedding.weight');
  const cls = w64(weights, 'vision_model.embeddings.class_embedding');
  const pos = w64(weights, 'vision_model.embeddings.position_embedding.weight');
  let x: Float64Array = new Float64Array(n * width);
  for (let i = 0; i < width; i++) x[i] = cls.data[i];
  for (let py = 0; py < g; py++) {
    for (let px = 0; px < g; px++) {
      const t = 1 + py * g + px;
      for (let o = 0; o < width; o++) {
        let sum = 0;
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) sum += conv.data[((o * 3 + c) * p + ky) * p + kx] * pixels[c * s * s + (py * p + ky) * s + px * p + kx];
          }
        }
        x[t * width + o] = sum;
      }
    }
  }
  for (let i = 0; i < n * width; i++) x[i] += pos.data[i];
  x = layerNorm(x, n, width, w64(weights, 'vision_model.pre_layrnorm.weight'), w64(weights, 'vision_model.pre_layrnorm.bias'));
  for (let l = 0; l < config.visionLayers; l++) {
    x = encoderLayer(weights, `vision_model.encoder.layers.${l}`, x, n, width, config.visionHeads, () => true);
  }
  const pooled = layerNorm(x.slice(0, width), 1, width, w64(weights, 'vision_model.post_layernorm.weight'), w64(weights, 'vision_model.post_layernorm.bias'));
  return { hidden: x, embeds: linear(pooled, 1, w64(weights, 'visual_projection.weight')) };
}

/** Largest |a - b| relative to the largest |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

async function png(width: number, height: number, seed: number, kind: 'noise' | 'scene'): Promise<Buffer> {
  const random = mulberry32(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (kind === 'noise') {
        for (let c = 0; c < 3; c++) data[i + c] = Math.floor(random() * 256);
      } else {
        // A sky over a ground, as the scenes are.
        const sky = y < height / 2;
        data[i] = sky ? 90 : 40;
        data[i + 1] = sky ? 150 : 170 - y;
        data[i + 2] = sky ? 230 - 2 * y : 60;
      }
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

let root: string;
let dir: string;
let weights: ClipWeights;
let embedder: ClipEmbedder;

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'scene-clip-'));
  dir = path.join(root, 'scene-clip');
  weights = randomWeights(20261205);
  await writeClipFolder(dir, { config, weights, tokenizerFiles });
  embedder = await ClipEmbedder.load({ model: dir, quantized: false, textCacheSize: 0 });
});
after(async () => {
  await embedder?.dispose();
  rmSync(root, { recursive: true, force: true });
});

test('the folder has the transformers.js layout, a Hugging Face config and the fixture graph interface', async () => {
  const files = (await fsp.readdir(dir, { recursive: true })).map(String).sort();
  assert.deepEqual(files, [
    'config.json', 'model.safetensors', 'onnx', 'onnx/text_model.onnx', 'onnx/vision_model.onnx', 'preprocessor_config.json',
    'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json',
  ]);
  const hf = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(hf.model_type, 'clip');
  assert.equal(hf.text_config.hidden_act, 'quick_gelu');
  assert.equal(hf.text_config.max_position_embeddings, 16);
  assert.equal(hf.vision_config.patch_size, 8);
  assert.deepEqual(await readSceneClipConfig(dir), config);
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'preprocessor_config.json'), 'utf8')), JSON.parse(JSON.stringify(clipPreprocessorConfig(config))));
  assert.equal(embedder.dim, config.projectionDim);
  assert.equal(embedder.maxTokens, config.contextLength);
  for (const tower of ['text_model', 'vision_model']) {
    const ours = await ort.InferenceSession.create(path.join(dir, 'onnx', `${tower}.onnx`));
    const theirs = await ort.InferenceSession.create(path.join(fixture, 'onnx', `${tower}.onnx`));
    assert.deepEqual(ours.inputNames, theirs.inputNames, tower);
    assert.deepEqual(ours.outputNames, theirs.outputNames, tower);
  }
});

test('the weights file reads back bit for bit and is checked against the config', async () => {
  const back = await readClipWeights(dir);
  assert.deepEqual([...back.keys()], [...clipParameterShapes(config).keys()]);
  for (const [name, t] of weights) {
    assert.deepEqual(back.get(name)!.shape, t.shape, name);
    assert.deepEqual(back.get(name)!.data, t.data, name);
  }
  const broken = new Map(weights);
  broken.delete('text_model.encoder.layers.1.mlp.fc2.bias');
  broken.set('vision_model.post_layernorm.weight', { shape: [3], data: new Float32Array(3) });
  assert.throws(() => checkClipWeights(config, broken), /layers\.1\.mlp\.fc2\.bias is missing.*post_layernorm\.weight has shape \[3\]/);
  const other = path.join(root, 'broken');
  await assert.rejects(writeClipFolder(other, { config, weights: broken, tokenizerFiles }), /fc2\.bias is missing/);
  await assert.rejects(fsp.stat(other), { code: 'ENOENT' });
  await assert.rejects(writeClipFolder(other, { config: { ...config, textMlp: 40 }, weights, tokenizerFiles }), /layers\.0\.mlp\.fc1\.weight has shape \[32, 16\], expected \[40, 16\]/);
  const wrongEnd = { ...config, vocabSize: 740, eosTokenId: 739 };
  await assert.rejects(writeClipFolder(other, { config: wrongEnd, weights: randomWeights(1, wrongEnd), tokenizerFiles }), /eos_token <\|endoftext\|> is id 733, but the config's eosTokenId is 739/);
  await assert.rejects(fsp.stat(other), { code: 'ENOENT' });
});

test('text embeddings match the float64 reference for texts of different lengths in one padded batch', async () => {
  const texts = [
    'a sheep',
    'white sheep on a green hill under a blue sky',
    '',
    'cows in snow near a red barn with a tall tree and a small pond under grey clouds at dusk', // longer than 16 tokens: cut
    'a cow',
  ];
  const ids = texts.map((t) => embedder.tokenize(t));
  assert.ok(ids[3].length === config.contextLength && ids[3].at(-1) === config.eosTokenId, 'the long text is cut to 16 with its end token');
  assert.ok(new Set(ids.map((s) => s.length)).size >= 4, 'lengths differ');
  const got = await embedder.embedTexts(texts);
  assert.equal(embedder.stats().textModelRuns, 1, 'one padded batch');
  let worst = 1;
  ids.forEach((seq, i) => {
    const c = cosine(got[i], referenceText(weights, seq).embeds);
    worst = Math.min(worst, c);
    assert.ok(c >= 0.9999, `text ${i}: cosine ${c}`);
  });
  // A graph that ignored its input, or pooled the wrong token, would make these equal.
  assert.ok(cosine(got[0], got[4]) < 0.999, `"a sheep" and "a cow" differ (cosine ${cosine(got[0], got[4])})`);
  assert.ok(cosine(got[0], got[1]) < 0.999);
  // Alone, a text embeds as in the batch (padding changes nothing).
  const [alone] = await embedder.embedTokenIds([ids[0]]);
  assert.ok(cosine(alone, got[0]) > 0.999999);
  console.log(`text parity: worst cosine ${worst}`);
});

test('the text tower outputs Hugging Face hidden states, padding positions included', async () => {
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'text_model.onnx'));
  const rows = [[732, 320, 733], [732, 612, 567, 641, 320, 594, 733]];
  const length = 7;
  const ids = new BigInt64Array(rows.length * length).fill(733n);
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((r, b) => r.forEach((id, t) => ((ids[b * length + t] = BigInt(id)), (mask[b * length + t] = 1n))));
  const out = await session.run({
    input_ids: new ort.Tensor('int64', ids, [rows.length, length]),
    attention_mask: new ort.Tensor('int64', mask, [rows.length, length]),
  });
  assert.deepEqual(out.last_hidden_state.dims, [2, length, config.textWidth]);
  assert.deepEqual(out.text_embeds.dims, [2, config.projectionDim]);
  const hidden = out.last_hidden_state.data as Float32Array;
  const embeds = out.text_embeds.data as Float32Array;
  let worst = 0;
  rows.forEach((r, b) => {
    const padded = [...r, ...new Array(length - r.length).fill(733)];
    const ref = referenceText(weights, padded, padded.map((_, t) => (t < r.length ? 1 : 0)));
    const w = config.textWidth;
    const rowHidden = hidden.subarray(b * length * w, (b + 1) * length * w);
    worst = Math.max(worst, relativeError(rowHidden, ref.hidden), relativeError(embeds.subarray(b * config.projectionDim, (b + 1) * config.projectionDim), ref.embeds));
  });
  assert.ok(worst < 1e-4, `relative error ${worst}`);
  console.log(`text hidden states + raw embeds: max relative error ${worst.toExponential(2)}`);
});

test('image embeddings match the float64 reference', async () => {
  const s = config.imageSize;
  const images = [await png(s, s, 1, 'noise'), await png(s, s, 2, 'scene'), await png(s, s, 3, 'noise'), await png(48, 40, 4, 'scene')];
  const got = await embedder.embedImages(images);
  assert.equal(got.length, images.length);
  const resizeConfig = clipPreprocessorConfig(config);
  let worst = 1;
  for (let i = 0; i < images.length; i++) {
    // The 48x40 image goes through the embedder's reference resize and crop; the others are already 32x32.
    const rgb = resizeAndCropLikeClip(await decodeImageRgb(images[i]), resizeConfig);
    assert.equal(rgb.width, s);
    const c = cosine(got[i], referenceVision(weights, pixelValues(rgb.data)).embeds);
    worst = Math.min(worst, c);
    assert.ok(c >= 0.9999, `image ${i}: cosine ${c}`);
  }
  assert.ok(cosine(got[0], got[1]) < 0.999, `different images differ (cosine ${cosine(got[0], got[1])})`);

  // The hidden states and raw embeddings, straight from the ONNX tower.
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'vision_model.onnx'));
  const pix = [pixelValues((await decodeImageRgb(images[0])).data), pixelValues((await decodeImageRgb(images[1])).data)];
  const input = new Float32Array(2 * 3 * s * s);
  pix.forEach((p, b) => input.set(p, b * 3 * s * s));
  const out = await session.run({ pixel_values: new ort.Tensor('float32', input, [2, 3, s, s]) });
  const n = (s / config.patchSize) ** 2 + 1;
  assert.deepEqual(out.last_hidden_state.dims, [2, n, config.visionWidth]);
  let rel = 0;
  pix.forEach((p, b) => {
    const ref = referenceVision(weights, p);
    rel = Math.max(
      rel,
      relativeError((out.last_hidden_state.data as Float32Array).subarray(b * n * config.visionWidth, (b + 1) * n * config.visionWidth), ref.hidden),
      relativeError((out.image_embeds.data as Float32Array).subarray(b * config.projectionDim, (b + 1) * config.projectionDim), ref.embeds),
    );
  });
  assert.ok(rel < 1e-4, `relative error ${rel}`);
  console.log(`image parity: worst cosine ${worst}; hidden states + raw embeds max relative error ${rel.toExponential(2)}`);
});

test('rewriting a folder replaces it whole', async () => {
  const other = path.join(root, 'rewrite');
  await writeClipFolder(other, { config, weights, tokenizerFiles });
  await fsp.writeFile(path.join(other, 'stale.txt'), 'old');
  const newer = randomWeights(7);
  await writeClipFolder(other, { config, weights: newer, tokenizerFiles });
  assert.deepEqual((await readClipWeights(other)).get('logit_scale')!.data, newer.get('logit_scale')!.data);
  assert.deepEqual((await readClipWeights(other)).get('visual_projection.weight')!.data, newer.get('visual_projection.weight')!.data);
  await assert.rejects(fsp.stat(path.join(other, 'stale.txt')), { code: 'ENOENT' });
  assert.deepEqual((await fsp.readdir(root)).filter((f) => f.startsWith('.')), [], 'no staging or old folder left');
});

test('an incomplete folder gives an error naming the missing file', async () => {
  const noVision = path.join(root, 'no-vision');
  await fsp.cp(dir, noVision, { recursive: true });
  await fsp.rm(path.join(noVision, 'onnx', 'vision_model.onnx'));
  const e = await ClipEmbedder.load({ model: noVision, quantized: false });
  try {
    assert.equal((await e.embedTexts(['a sheep'])).length, 1, 'text still works');
    await assert.rejects(e.embedImages([await png(32, 32, 1, 'noise')]), (err: unknown) => err instanceof UserError && /missing onnx\/vision_model\.onnx/.test(err.message));
  } finally {
    await e.dispose();
  }
  const noTokenizer = path.join(root, 'no-tokenizer');
  await fsp.cp(dir, noTokenizer, { recursive: true });
  await fsp.rm(path.join(noTokenizer, 'tokenizer.json'));
  await assert.rejects(ClipEmbedder.load({ model: noTokenizer }), (err: unknown) => err instanceof UserError && /missing tokenizer\.json/.test(err.message));
  await fsp.rm(path.join(noTokenizer, 'model.safetensors'));
  await assert.rejects(readClipWeights(noTokenizer), (err: unknown) => err instanceof UserError && /model\.safetensors/.test(err.message));
});
