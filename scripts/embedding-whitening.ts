/**
 * Input preconditioning for text-conditioned training: the CLIP caption embeddings of a dataset share a large
 * common component, and the directions that tell captions apart have little variance, so gradient descent on the
 * layers that read the embedding (the decoder's `condition` Dense and the encoder's first Dense) is badly
 * conditioned and slow. Training on whitened embeddings e' = A (e - m) (m the mean, A = L^-1 with
 * L L^T = Cov + ridge) fixes that, and because both layers are linear in the embedding, the whitening folds
 * exactly into their weights afterwards (K' = A^T K, b' = b - m^T K'): the saved model has the usual
 * architecture and takes raw CLIP embeddings. No change to the loss or the architecture.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch, BatchOptions, BatchSource, Split } from '../src/training/dataset.js';
import type { Cvae } from '../src/model/cvae.js';

/** Mean and whitening matrix of a set of embeddings. */
export interface Whitening {
  dim: number;
  mean: Float64Array;
  /** Row-major dim x dim, lower triangular: e' = A (e - mean). */
  a: Float64Array;
}

/**
 * Fits the whitening of `rows` embeddings of width `dim` (row-major floats).
 * @param ridge added to the covariance's diagonal, as a fraction of its mean variance (damps directions with
 *   almost no variance instead of blowing them up)
 */
export function fitWhitening(data: Float32Array, dim: number, ridge = 0.01): Whitening {
  const n = Math.floor(data.length / dim);
  if (n < 2) throw new RangeError('need at least two embeddings');
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) mean[i] += data[r * dim + i];
  for (let i = 0; i < dim; i++) mean[i] /= n;
  const cov = new Float64Array(dim * dim);
  const x = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) x[i] = data[r * dim + i] - mean[i];
    for (let i = 0; i < dim; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const row = i * dim;
      for (let j = 0; j <= i; j++) cov[row + j] += xi * x[j];
    }
  }
  let trace = 0;
  for (let i = 0; i < dim; i++) trace += cov[i * dim + i] / (n - 1);
  const lambda = (ridge * trace) / dim;
  for (let i = 0; i < dim; i++) for (let j = 0; j <= i; j++) cov[i * dim + j] = cov[i * dim + j] / (n - 1) + (i === j ? lambda : 0);
  // Cholesky: cov = L L^T (lower triangle used in place).
  const l = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j <= i; j++) {
      let s = cov[i * dim + j];
      for (let k = 0; k < j; k++) s -= l[i * dim + k] * l[j * dim + k];
      l[i * dim + j] = i === j ? Math.sqrt(s) : s / l[j * dim + j];
    }
  }
  // A = L^-1 (lower triangular), by forward substitution column by column.
  const a = new Float64Array(dim * dim);
  for (let c = 0; c < dim; c++) {
    for (let i = c; i < dim; i++) {
      let s = i === c ? 1 : 0;
      for (let k = c; k < i; k++) s -= l[i * dim + k] * a[k * dim + c];
      a[i * dim + c] = s / l[i * dim + i];
    }
  }
  return { dim, mean, a };
}

/** e' = A (e - mean) for each row of `data`. */
export function whiten(w: Whitening, data: Float32Array): Float32Array {
  const { dim, mean, a } = w;
  const n = data.length / dim;
  const out = new Float32Array(data.length);
  const x = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) x[i] = data[r * dim + i] - mean[i];
    for (let i = 0; i < dim; i++) {
      let s = 0;
      const row = i * dim;
      for (let k = 0; k <= i; k++) s += a[row + k] * x[k];
      out[r * dim + i] = s;
    }
  }
  return out;
}

/** A batch source whose embeddings are whitened. */
export function whitenedSource(source: BatchSource, w: Whitening): BatchSource {
  return {
    resolution: source.resolution,
    embeddingDim: source.embeddingDim,
    fingerprint: source.fingerprint,
    clipModel: source.clipModel,
    size: (split: Split) => source.size(split),
    async *batches(split: Split, batchSize: number, options: BatchOptions): AsyncIterable<Batch> {
      for await (const b of source.batches(split, batchSize, options)) yield { ...b, embeddings: whiten(w, b.embeddings) };
    },
  };
}

/** Reads the text embeddings of a dataset cache (all captions). */
export async function cacheTextEmbeddings(cacheDir: string): Promise<Float32Array> {
  const buf = await fsp.readFile(path.join(cacheDir, 'text-embeddings.f32'));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Folds `e' = A (e - mean)` into a Dense layer whose last `dim` input rows read the embedding. */
function foldIntoDense(layer: tf.layers.Layer, w: Whitening): void {
  const [kernel, bias] = layer.getWeights();
  const rows = kernel.shape[0];
  const units = kernel.shape[1]!;
  const { dim } = w;
  const next = tf.tidy(() => {
    const a = tf.tensor2d(Float32Array.from(w.a), [dim, dim]);
    const m = tf.tensor2d(Float32Array.from(w.mean), [1, dim]);
    const head = rows > dim ? tf.slice(kernel, [0, 0], [rows - dim, units]) : null;
    const ke = tf.slice(kernel, [rows - dim, 0], [dim, units]);
    const keNew = tf.matMul(a, ke, true, false);
    const bNew = tf.sub(bias, tf.reshape(tf.matMul(m, keNew), [units]));
    return [head ? tf.concat([head, keNew], 0) : keNew, bNew];
  });
  layer.setWeights(next);
  tf.dispose(next);
}

/** Makes a model trained on whitened embeddings take raw embeddings (exactly the same function). */
export function foldWhitening(cvae: Cvae, w: Whitening): void {
  foldIntoDense(cvae.decoder.getLayer('condition'), w);
  foldIntoDense(cvae.encoder.getLayer('enc_dense1'), w);
}
