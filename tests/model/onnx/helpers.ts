/** Shared helpers of the ONNX tests: small-width preset variants and non-trivial BatchNorm statistics. */
import * as tf from '@tensorflow/tfjs';
import type { Cvae } from '../../../src/model/cvae.js';
import { getPreset, validatePreset, type Preset } from '../../../src/model/presets.js';

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function uniforms(seed: number, n: number, lo: number, hi: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/**
 * A preset with the layer structure, kernels, strides and resolution of `name` but at most `maxFilters`
 * filters per conv layer and a dense block of at most `maxDenseChannels` channels after the reshape.
 */
export function narrowPreset(name: string, maxFilters = 4, maxDenseChannels = 4): Preset {
  const p = getPreset(name);
  const [h, w, c] = p.decoder.reshape;
  const ch = Math.min(c, maxDenseChannels);
  const narrow = {
    ...p,
    name: `${name}-narrow`,
    encoder: { convs: p.encoder.convs.map((s) => ({ ...s, filters: Math.min(s.filters, maxFilters) })), dense: p.encoder.dense.map((u) => Math.min(u, 16)) },
    latentDim: Math.min(p.latentDim, 16),
    decoder: {
      ...p.decoder,
      dense: h * w * ch,
      reshape: [h, w, ch] as [number, number, number],
      convTranspose: p.decoder.convTranspose.map((s) => ({ ...s, filters: Math.min(s.filters, maxFilters) })),
    },
  };
  return validatePreset(narrow);
}

/**
 * Gives every decoder BatchNorm random moving statistics and affine parameters (gamma of both signs), so
 * that inference-mode BatchNorm is far from the identity a fresh model has.
 */
export function randomizeDecoderBatchNorm(cvae: Cvae, seed: number): void {
  let s = seed;
  for (const layer of cvae.decoder.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const n = layer.getWeights()[0].size;
    const gamma = uniforms(s++, n, 0.5, 1.5).map((v, i) => (i % 5 === 3 ? -v : v));
    const values = [gamma, uniforms(s++, n, -0.5, 0.5), uniforms(s++, n, -0.5, 0.5), uniforms(s++, n, 0.2, 2)];
    const tensors = values.map((v) => tf.tensor1d(v));
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}
