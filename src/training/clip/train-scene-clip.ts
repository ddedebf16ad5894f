/**
 * Contrastive training of the scene CLIP (symmetric InfoNCE, as CLIP) on images with captions, in
 * TensorFlow.js. Each step takes a batch of distinct images and one caption of each, drawn at random; two
 * pairs whose captions are the same text are positives of each other. Adam with a linear warm-up and a
 * cosine decay of the learning rate; seeded (the order, the captions drawn and the initial weights all come
 * from `seed`).
 *
 * Hard negatives: in a random batch of a few thousand scenes, the sky and ground alone tell most pairs apart,
 * so the towers learn colours fast and the animals slowly. After the warm-up, part of every batch
 * (`hardNegatives`) is the nearest neighbours of a random image by the model's own image embeddings
 * (refreshed every `refreshEvery` steps): images that look alike, which only the finer words can separate.
 * On a large set each refresh embeds a random `neighbourPool` of the images, not all of them.
 */
import * as tf from '@tensorflow/tfjs';
import { mixSeeds, mulberry32, permutation } from '../../util/prng.js';
import { encodeClipText, type ClipBpe } from './bpe-tokenizer.js';
import { CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, type SceneClipConfig } from './scene-clip-config.js';
import { SceneClipModel, type TokenBatch } from './scene-clip-model.js';

/** Share of each batch taken as look-alike images when none is given. */
export const DEFAULT_HARD_NEGATIVES = 0.5;

/** Most images whose embeddings are refreshed at once for the neighbour search when none is given. */
export const DEFAULT_NEIGHBOUR_POOL = 4096;

/** One training image with its captions. */
export interface CaptionedImage {
  /** `imageSize² × 3` bytes, RGB, row-major. */
  pixels: Uint8Array;
  captions: string[];
}

/** Progress of a scene CLIP training, after each step. */
export interface SceneClipProgress {
  step: number;
  steps: number;
  /** Loss of this step. */
  loss: number;
  /** Mean loss of the last 50 steps. */
  smoothedLoss: number;
  logitScale: number;
  learningRate: number;
  imagesPerSec: number;
  etaSec: number;
}

export interface SceneClipTrainOptions {
  config: SceneClipConfig;
  tokenizer: ClipBpe;
  images: readonly CaptionedImage[];
  steps: number;
  batchSize: number;
  learningRate: number;
  /** Steps of linear warm-up (default 5% of the steps). */
  warmupSteps?: number;
  seed: number;
  /** Share of each batch taken as the nearest neighbours of one image (default 0.5; 0 for random batches). */
  hardNegatives?: number;
  /** Steps between refreshes of the image embeddings used to find neighbours (default 100). */
  refreshEvery?: number;
  /**
   * Most images embedded at each refresh (default 4096): with more images, each refresh embeds a fresh random
   * subset of this size and neighbours are found within it, so a refresh costs the same on 64k scenes as on 4k.
   */
  neighbourPool?: number;
  /** Called after each refresh of the neighbour embeddings with the number of images embedded. */
  onRefresh?: (embedded: number) => void;
  /** Stops after the current step; the model trained so far is returned. */
  signal?: AbortSignal;
  onProgress?: (p: SceneClipProgress) => void;
}

export interface SceneClipTrainResult {
  model: SceneClipModel;
  /** Steps actually run (fewer than asked when stopped). */
  steps: number;
  finalLoss: number;
  seconds: number;
}

/** Token ids of texts, each `[bos, ..., eos]` cut to the context length (keeping eos), padded with eos. */
export function tokenBatch(tokenizer: ClipBpe, texts: readonly string[], contextLength: number): TokenBatch {
  const rows = texts.map((t) => {
    const ids = encodeClipText(tokenizer, t, { addSpecialTokens: true });
    return ids.length <= contextLength ? ids : [...ids.slice(0, contextLength - 1), tokenizer.eosTokenId];
  });
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(texts.length * length).fill(tokenizer.eosTokenId);
  rows.forEach((r, i) => ids.set(r, i * length));
  return { ids, batch: texts.length, length };
}

/** Images `[n, size, size, 3]` normalised as the CLIP processor does: (x / 255 − mean) / std per channel. */
export function normalisedImages(pixels: readonly Uint8Array[], size: number): tf.Tensor4D {
  const plane = size * size * 3;
  const out = new Float32Array(pixels.length * plane);
  const scale = CLIP_IMAGE_STD.map((s) => 1 / (255 * s));
  const shift = CLIP_IMAGE_MEAN.map((m, c) => m / CLIP_IMAGE_STD[c]);
  pixels.forEach((p, i) => {
    if (p.length !== plane) throw new RangeError(`image ${i} has ${p.length} bytes, expected ${plane} (${size}x${size} RGB)`);
    const base = i * plane;
    for (let j = 0; j < plane; j++) {
      const c = j % 3;
      out[base + j] = p[j] * scale[c] - shift[c];
    }
  });
  return tf.tensor4d(out, [pixels.length, size, size, 3]);
}

/**
 * Contrastive targets of a batch: row i spreads 1 over the pairs whose caption is the same text as pair i's
 * (the identity when all captions differ).
 */
export function captionTargets(captions: readonly string[]): Float32Array {
  const n = captions.length;
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const same: number[] = [];
    for (let j = 0; j < n; j++) if (captions[j] === captions[i]) same.push(j);
    for (const j of same) out[i * n + j] = 1 / same.length;
  }
  return out;
}

/** Normalised image embeddings of every image (forward pass only, in batches). */
async function embedAll(model: SceneClipModel, images: readonly CaptionedImage[], size: number): Promise<Float32Array> {
  const dim = model.config.projectionDim;
  const out = new Float32Array(images.length * dim);
  for (let i = 0; i < images.length; i += 256) {
    const part = images.slice(i, i + 256);
    const emb = tf.tidy(() => {
      const e = model.encodeImage(normalisedImages(part.map((p) => p.pixels), size));
      return tf.div(e, tf.norm(e, 'euclidean', 1, true));
    });
    out.set(await emb.data(), i * dim);
    emb.dispose();
  }
  return out;
}

/** The `k` images nearest to `anchor` (itself first) by cosine of normalised embeddings, skipping `taken`. */
export function nearestImages(embeddings: Float32Array, dim: number, anchor: number, k: number, taken: ReadonlySet<number>): number[] {
  const n = embeddings.length / dim;
  const sims: [number, number][] = [];
  for (let j = 0; j < n; j++) {
    if (taken.has(j) && j !== anchor) continue;
    let s = 0;
    for (let d = 0; d < dim; d++) s += embeddings[anchor * dim + d] * embeddings[j * dim + d];
    sims.push([j === anchor ? Infinity : s, j]);
  }
  sims.sort((a, b) => b[0] - a[0]);
  return sims.slice(0, k).map(([, j]) => j);
}

/** The learning rate at a step: linear warm-up to `peak`, then cosine decay to a tenth of it. */
export function learningRateAt(step: number, steps: number, warmup: number, peak: number): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const t = (step - warmup) / Math.max(1, steps - warmup);
  return peak * (0.1 + 0.45 * (1 + Math.cos(Math.PI * Math.min(1, t))));
}

/** Trains a fresh scene CLIP. */
export async function trainSceneClip(opts: SceneClipTrainOptions): Promise<SceneClipTrainResult> {
  const { config, images, steps, seed } = opts;
  if (images.length < 2) throw new RangeError(`contrastive training needs at least 2 captioned images, got ${images.length}`);
  const batchSize = Math.min(opts.batchSize, images.length);
  const warmup = opts.warmupSteps ?? Math.max(1, Math.round(steps * 0.05));
  const model = SceneClipModel.create(config, mixSeeds(seed, 1));
  const optimizer = tf.train.adam(opts.learningRate);
  const random = mulberry32(mixSeeds(seed, 2));
  let order = permutation(images.length, random);
  let cursor = 0;
  const hardCount = Math.floor(batchSize * (opts.hardNegatives ?? DEFAULT_HARD_NEGATIVES));
  const refreshEvery = opts.refreshEvery ?? 100;
  let embeddings: Float32Array | null = null;
  const poolSize = Math.max(hardCount, opts.neighbourPool ?? DEFAULT_NEIGHBOUR_POOL);
  const poolRandom = mulberry32(mixSeeds(seed, 3));
  // Global index of each embedded image; null while every image is embedded.
  let pool: number[] | null = null;
  const recent: number[] = [];
  const t0 = performance.now();
  let done = 0;
  let lastLoss = NaN;
  try {
    for (let step = 0; step < steps; step++) {
      if (opts.signal?.aborted) break;
      if (hardCount > 0 && step >= warmup && (embeddings === null || (step - warmup) % refreshEvery === 0)) {
        if (images.length > poolSize) {
          const subset = Array.from(permutation(images.length, poolRandom).subarray(0, poolSize));
          pool = subset;
          embeddings = await embedAll(model, subset.map((i) => images[i]), config.imageSize);
        } else {
          embeddings = await embedAll(model, images, config.imageSize);
        }
        opts.onRefresh?.(embeddings.length / config.projectionDim);
      }
      const chosen: number[] = [];
      const taken = new Set<number>();
      const nextRandom = (): number => {
        if (cursor >= images.length) {
          order = permutation(images.length, random);
          cursor = 0;
        }
        return order[cursor++];
      };
      if (embeddings) {
        const anchor = pool ? Math.floor(poolRandom() * pool.length) : nextRandom();
        for (const local of nearestImages(embeddings, config.projectionDim, anchor, hardCount, new Set())) {
          const j = pool ? pool[local] : local;
          chosen.push(j);
          taken.add(j);
        }
      }
      while (chosen.length < batchSize) {
        const j = nextRandom();
        if (taken.has(j)) continue;
        chosen.push(j);
        taken.add(j);
      }
      const picked = chosen.map((i) => images[i]);
      const captions = picked.map((img) => img.captions[Math.floor(random() * img.captions.length)]);
      const lr = learningRateAt(step, steps, warmup, opts.learningRate);
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const tokens = tokenBatch(opts.tokenizer, captions, config.contextLength);
      const batch = normalisedImages(picked.map((p) => p.pixels), config.imageSize);
      const targets = tf.tensor2d(captionTargets(captions), [batchSize, batchSize]);
      let lossTensor: tf.Scalar | null = null;
      try {
        lossTensor = optimizer.minimize(() => model.contrastiveLoss(batch, tokens, targets), true, model.trainableVariables);
        lastLoss = (await lossTensor!.data())[0];
      } finally {
        batch.dispose();
        targets.dispose();
        lossTensor?.dispose();
      }
      if (!Number.isFinite(lastLoss)) throw new Error(`the scene CLIP loss became ${lastLoss} at step ${step + 1}; try a lower --lr`);
      done = step + 1;
      recent.push(lastLoss);
      if (recent.length > 50) recent.shift();
      const elapsed = (performance.now() - t0) / 1000;
      opts.onProgress?.({
        step: done,
        steps,
        loss: lastLoss,
        smoothedLoss: recent.reduce((a, b) => a + b, 0) / recent.length,
        logitScale: model.logitScale(),
        learningRate: lr,
        imagesPerSec: (done * batchSize) / elapsed,
        etaSec: (elapsed / done) * (steps - done),
      });
    }
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    optimizer.dispose();
  }
  return { model, steps: done, finalLoss: lastLoss, seconds: (performance.now() - t0) / 1000 };
}
