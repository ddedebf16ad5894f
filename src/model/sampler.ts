/**
 * The reference sampler: decodes CLIP embeddings into images with a checkpoint's decoder. Each image has
 * its own seed, which fixes its latent vector z ~ N(0, I): the same seed and embedding give the same image,
 * whatever else is in the batch. All images of a call go through the decoder in one batch.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import { loadCheckpoint, type CheckpointMeta } from './checkpoint.js';
import type { Cvae } from './cvae.js';

const log = childLogger('sampler');

/** The latent vector of a seed: standard normal, `latentDim` wide. */
export function latentForSeed(seed: number, latentDim: number): tf.Tensor1D {
  return tf.randomNormal([latentDim], 0, 1, 'float32', seed);
}

/** Samples images from a loaded model. */
export class Sampler {
  /**
   * @param cvae the model (the sampler takes ownership: `dispose()` frees it)
   * @param meta the checkpoint's metadata
   */
  constructor(
    private readonly cvae: Cvae,
    readonly meta: CheckpointMeta,
  ) {}

  /** Loads a checkpoint folder for sampling. */
  static async fromCheckpoint(dir: string): Promise<Sampler> {
    const { cvae, meta } = await loadCheckpoint(dir);
    log.info({ dir, name: meta.name, preset: meta.preset, resolution: meta.resolution }, 'sampler ready');
    return new Sampler(cvae, meta);
  }

  /** Image side in pixels. */
  get resolution(): number {
    return this.cvae.resolution;
  }

  /** Width of the embeddings the model takes. */
  get embeddingDim(): number {
    return this.cvae.preset.embeddingDim;
  }

  /**
   * Decodes one image per (embedding, seed) pair, in one decoder batch.
   * @param embeddings CLIP embeddings, `embeddingDim` floats each
   * @param seeds one integer seed per embedding
   * @returns images as uint8 RGB, `resolution * resolution * 3` bytes each, row-major HWC
   * @throws UserError when the counts or widths do not fit
   */
  async sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]> {
    if (embeddings.length !== seeds.length) {
      throw new UserError(`Got ${embeddings.length} embeddings but ${seeds.length} seeds; give one seed per image.`);
    }
    if (embeddings.length === 0) return [];
    const dim = this.embeddingDim;
    embeddings.forEach((e, i) => {
      if (e.length !== dim) throw new UserError(`Embedding ${i + 1} has ${e.length} values; this model takes ${dim}.`);
      if (!e.every(Number.isFinite)) throw new UserError(`Embedding ${i + 1} has values that are not finite numbers.`);
    });
    seeds.forEach((s) => {
      if (!Number.isSafeInteger(s)) throw new UserError(`Seed ${s} is not an integer.`);
    });
    const n = embeddings.length;
    const pixels = tf.tidy(() => {
      const flat = new Float32Array(n * dim);
      embeddings.forEach((e, i) => flat.set(e, i * dim));
      const emb = tf.tensor2d(flat, [n, dim]);
      const z = tf.stack(seeds.map((s) => latentForSeed(s, this.cvae.latentDim))) as tf.Tensor2D;
      const images = this.cvae.decode(z, emb);
      return tf.cast(tf.clipByValue(tf.round(tf.mul(images, 255)), 0, 255), 'int32');
    });
    let data: Int32Array;
    try {
      data = (await pixels.data()) as Int32Array;
    } finally {
      pixels.dispose();
    }
    const size = this.resolution * this.resolution * 3;
    return Array.from({ length: n }, (_, i) => Uint8Array.from(data.subarray(i * size, (i + 1) * size)));
  }

  /** Frees the model. */
  dispose(): void {
    this.cvae.dispose();
  }
}
