/**
 * Variations ("same seed neighbourhood"): the latent noise stays exactly that of the original seeds, and the
 * CLIP embedding is nudged by a small seed-derived Gaussian perturbation (then re-normalised). The decoder
 * therefore draws the same sample under a slightly different condition, so images stay close to the originals;
 * a variation is reproducible from (prompt, seeds, variationSeed).
 */
import { mulberry32 } from '../../util/prng.js';

/** Norm of the perturbation relative to the (unit) embedding. */
export const VARIATION_STRENGTH = 0.35;

/** The embedding perturbed by seed-derived noise of norm `strength`, L2-normalised again. Pure. */
export function perturbEmbedding(embedding: Float32Array, variationSeed: number, strength = VARIATION_STRENGTH): Float32Array {
  const random = mulberry32(variationSeed);
  const noise = new Float32Array(embedding.length);
  let nn = 0;
  for (let i = 0; i < noise.length; i += 2) {
    // Box–Muller: two standard normals per draw.
    const u = Math.max(random(), 1e-12);
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    noise[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < noise.length) noise[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  for (const x of noise) nn += x * x;
  const scale = strength / Math.sqrt(nn || 1);
  const out = new Float32Array(embedding.length);
  let on = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = embedding[i] + noise[i] * scale;
    on += out[i] * out[i];
  }
  const inv = 1 / Math.sqrt(on || 1);
  for (let i = 0; i < out.length; i++) out[i] *= inv;
  return out;
}
