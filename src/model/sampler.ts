/**
 * The reference sampler: decodes CLIP embeddings into images with a checkpoint's decoder. Each image has
 * its own seed, which fixes its latent vector z ~ N(0, I): the same seed and embedding give the same image,
 * whatever else is in the batch. All images of a call go through the decoder in one batch.
 */
import * as tf from '@tensorflow/tfjs';
import { childLogger } from '../log.js';
import { loadCheckpoint, type CheckpointMeta } from './checkpoint.js';
import type { Cvae } from './cvae.js';
import { latentForSeed as latentValuesForSeed } from './latent.js';
import { checkSampleInputs, packRows } from './sample-inputs.js';

const log = childLogger('sampler');

/**
 * The latent vector of a seed as a tensor: standard normal, `latentDim` wide, computed in plain JavaScript
 * (latent.ts) so that every engine decodes the same z for the same seed.
 */
export function latentForSeed(seed: number, latentDim: number): tf.Tensor1D {
  return tf.tensor1d(latentValuesForSeed(seed, latentDim));
}

/** Samples images from a loaded model. */
export class Sampler {
  /** The engine that runs the decoder. */
  readonly engine = 'tfjs' as const;

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
    checkSampleInputs(embeddings, seeds, this.embeddingDim);
    if (embeddings.length === 0) return [];
    const dim = this.embeddingDim;
    const n = embeddings.length;
    const pixels = tf.tidy(() => {
      const emb = tf.tensor2d(packRows(embeddings, dim), [n, dim]);
      const latentDim = this.cvae.latentDim;
      const z = tf.tensor2d(packRows(seeds.map((s) => latentValuesForSeed(s, latentDim)), latentDim), [n, latentDim]);
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
