/**
 * One training step of the CVAE: forward pass (training mode) and loss inside the gradient tape, optional
 * clipping by global norm, Adam update. Separate from the loop so that tests and benchmarks can drive it.
 */
import * as tf from '@tensorflow/tfjs';
import type { Cvae } from '../model/cvae.js';
import { cvaeLoss } from '../model/loss.js';
import type { LossTerms } from '../model/loss.js';

/**
 * One optimizer step on a batch: forward (training) + loss inside the gradient tape, optional clipping by
 * global norm, Adam update. Returns the batch's loss terms (read with one download).
 */
export async function trainStep(
  cvae: Cvae,
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  batch: { size: number; images: Uint8Array; embeddings: Float32Array },
  resolution: number,
  embeddingDim: number,
  opts: { seed?: number; clipNorm?: number | null } = {},
): Promise<LossTerms> {
  const x = imagesToTensor(batch.images, batch.size, resolution);
  const emb = tf.tensor2d(batch.embeddings, [batch.size, embeddingDim]);
  let terms: tf.Tensor1D | null = null;
  try {
    const { value, grads } = optimizer.computeGradients(() => {
      const out = cvae.forward(x, emb, { training: true, seed: opts.seed });
      const loss = cvaeLoss(x, out.xHat, out.mu, out.logvar);
      terms = tf.keep(tf.stack([loss.total, loss.bce, loss.kl, loss.ssim]) as tf.Tensor1D);
      return loss.total;
    }, vars);
    let toApply = grads;
    if (opts.clipNorm) {
      toApply = clipByGlobalNorm(grads, opts.clipNorm);
      tf.dispose(grads);
    }
    optimizer.applyGradients(toApply);
    tf.dispose(toApply);
    value.dispose();
    const t = (terms as tf.Tensor1D | null)!;
    const [total, bce, kl, ssim] = await t.data();
    return { total, bce, kl, ssim };
  } finally {
    tf.dispose([x, emb]);
    if (terms) (terms as tf.Tensor).dispose();
  }
}

/** Scales all gradients by min(1, clipNorm / globalNorm), as tf.clip_by_global_norm. Returns new tensors. */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, clipNorm: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    const squares = names.map((n) => tf.sum(tf.square(grads[n])));
    const norm = tf.sqrt(tf.addN(squares));
    const scale = tf.div(clipNorm, tf.maximum(norm, clipNorm));
    const out: tf.NamedTensorMap = {};
    for (const n of names) out[n] = tf.mul(grads[n], scale);
    return out;
  });
}


/** uint8 NHWC bytes → float32 tensor in [0, 1]. */
export function imagesToTensor(images: Uint8Array, n: number, resolution: number): tf.Tensor4D {
  const f = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) f[i] = images[i] / 255;
  return tf.tensor4d(f, [n, resolution, resolution, 3]);
}

