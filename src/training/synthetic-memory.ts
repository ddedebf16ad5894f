/**
 * A synthetic in-memory dataset for quick tries and tests (`train --synthetic N`): random but structured
 * pictures (a sky gradient over a ground colour with a horizon, one to three coloured blobs) paired with
 * unit "embeddings" that are a fixed random projection of each picture's parameters (so the condition carries
 * information about the picture) — no CLIP involved. Deterministic for (count, resolution, seed).
 * Labelled in checkpoint metadata by its fingerprint `synthetic-random:N:seed`.
 */
import { InMemoryDataset, type Example } from './memory-dataset.js';
import { gaussian, mixSeeds, mulberry32 } from '../util/prng.js';

export interface SyntheticMemoryOptions {
  count: number;
  resolution: number;
  embeddingDim?: number;
  seed?: number;
  /** Share of the examples held out for validation (default 0.125, at least one when count >= 2). */
  valFraction?: number;
}

/** The CLIP model id recorded for synthetic data (there is none). */
export const SYNTHETIC_CLIP_MODEL = 'none (synthetic random embeddings)';

/** Number of picture parameters fed into the embedding projection. */
const PARAMS = 16;

/** Builds the synthetic dataset; see the module comment. */
export function createSyntheticMemoryDataset(opts: SyntheticMemoryOptions): InMemoryDataset {
  const { count, resolution } = opts;
  const embeddingDim = opts.embeddingDim ?? 512;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(count) || count < 2) throw new RangeError(`synthetic dataset needs at least 2 examples, got ${count}`);
  const projRandom = mulberry32(mixSeeds(seed, 0x9e37));
  const projection = new Float32Array(embeddingDim * PARAMS);
  for (let i = 0; i < projection.length; i++) projection[i] = gaussian(projRandom);
  const examples: Example[] = [];
  for (let k = 0; k < count; k++) {
    const random = mulberry32(mixSeeds(seed, k, 0x51));
    const { image, params } = drawPicture(resolution, random);
    const embedding = new Float32Array(embeddingDim);
    let norm = 0;
    for (let d = 0; d < embeddingDim; d++) {
      let v = 0.25 * gaussian(random);
      for (let p = 0; p < PARAMS; p++) v += projection[d * PARAMS + p] * params[p];
      embedding[d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < embeddingDim; d++) embedding[d] /= norm;
    examples.push({ image, embedding });
  }
  return InMemoryDataset.fromExamples(examples, {
    resolution,
    embeddingDim,
    valFraction: opts.valFraction ?? 0.125,
    seed,
    fingerprint: `synthetic-random:${count}:${seed}`,
    clipModel: SYNTHETIC_CLIP_MODEL,
  });
}

/** Draws one picture; returns it with its parameters centred around 0 (for the embedding projection). */
function drawPicture(size: number, random: () => number): { image: Uint8Array; params: Float32Array } {
  const params = new Float32Array(PARAMS);
  const sky = [random(), random(), 0.5 + 0.5 * random()];
  const ground = [0.2 * random(), 0.3 + 0.6 * random(), 0.3 * random()];
  const horizon = 0.35 + 0.35 * random();
  const blobCount = 1 + Math.floor(random() * 3);
  const blobs = Array.from({ length: blobCount }, () => ({
    cx: random(),
    cy: 0.2 + 0.7 * random(),
    r: 0.08 + 0.17 * random(),
    color: [random(), random(), random()],
  }));
  params.set([sky[0], sky[1], sky[2], ground[0], ground[1], ground[2], horizon, blobCount / 3].map((v) => v - 0.5), 0);
  const b = blobs[0];
  params.set([b.cx, b.cy, b.r * 3, b.color[0], b.color[1], b.color[2]].map((v) => v - 0.5), 8);
  params[14] = blobs.length > 1 ? blobs[1].cx - 0.5 : 0;
  params[15] = blobs.length > 1 ? blobs[1].color[0] - 0.5 : 0;
  const image = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const fy = (y + 0.5) / size;
    for (let x = 0; x < size; x++) {
      const fx = (x + 0.5) / size;
      let c: number[];
      if (fy < horizon) {
        const t = fy / horizon;
        c = [sky[0] * (1 - 0.5 * t) + 0.4 * t, sky[1] * (1 - 0.5 * t) + 0.4 * t, sky[2]];
      } else {
        c = ground;
      }
      for (const blob of blobs) {
        const dx = fx - blob.cx;
        const dy = fy - blob.cy;
        if (dx * dx + dy * dy < blob.r * blob.r) c = blob.color;
      }
      const o = (y * size + x) * 3;
      image[o] = Math.round(255 * clamp01(c[0]));
      image[o + 1] = Math.round(255 * clamp01(c[1]));
      image[o + 2] = Math.round(255 * clamp01(c[2]));
    }
  }
  return { image, params };
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
