/**
 * Pure arithmetic for turning TensorFlow layers into ONNX operators: BatchNorm as a per-channel affine map,
 * TensorFlow 'same' padding for Conv2D and Conv2DTranspose, kernel layout changes (NHWC/TF to NCHW/ONNX),
 * folding a per-input-channel affine map into the next layer, and the NHWC -> NCHW column order of a Dense
 * layer whose output is reshaped into an image.
 */
import type { BatchNormWeights, ConvWeights } from './decoder-weights.js';

/** Inference-mode BatchNorm as y = scale * x + shift (computed in float64). */
export interface Affine {
  scale: Float64Array;
  shift: Float64Array;
}

/** BatchNorm(x) = gamma (x - mean) / sqrt(variance + epsilon) + beta, as scale * x + shift. */
export function batchNormAffine(bn: BatchNormWeights): Affine {
  const n = bn.gamma.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = bn.gamma[c] / Math.sqrt(bn.movingVariance[c] + bn.epsilon);
    shift[c] = bn.beta[c] - bn.movingMean[c] * scale[c];
  }
  return { scale, shift };
}

/** Explicit padding of a Conv2D with TensorFlow's 'same': output = ceil(input / stride). */
export function sameConvPads(kernel: number, stride: number, inSize: number): { before: number; after: number; outSize: number } {
  const outSize = Math.ceil(inSize / stride);
  const total = Math.max((outSize - 1) * stride + kernel - inSize, 0);
  const before = Math.floor(total / 2);
  return { before, after: total - before, outSize };
}

/**
 * ONNX ConvTranspose pads and output_padding that reproduce TensorFlow's Conv2DTranspose with 'same'
 * padding (output = input * stride). TensorFlow pads the forward convolution it transposes by
 * max(kernel - stride, 0) in total, floor(total / 2) before; when the kernel is smaller than the stride the
 * missing rows at the end are output padding.
 */
export function sameConvTransposePads(kernel: number, stride: number): { before: number; after: number; outputPadding: number } {
  const total = Math.max(kernel - stride, 0);
  const before = Math.floor(total / 2);
  return { before, after: total - before, outputPadding: Math.max(stride - kernel, 0) };
}

/**
 * A convolution kernel in ONNX layout, each input channel scaled by `inScale` (when given).
 * Conv2D [kh, kw, in, out] -> Conv W [out, in, kh, kw]; Conv2DTranspose [kh, kw, out, in] -> ConvTranspose W [in, out, kh, kw].
 */
export function onnxKernel(conv: ConvWeights, transpose: boolean, inScale?: Float64Array): Float32Array {
  const { kernelSize: k, inChannels: cin, outChannels: cout, kernel } = conv;
  const out = new Float32Array(kernel.length);
  for (let kh = 0; kh < k; kh++) {
    for (let kw = 0; kw < k; kw++) {
      for (let a = 0; a < (transpose ? cout : cin); a++) {
        for (let b = 0; b < (transpose ? cin : cout); b++) {
          const src = ((kh * k + kw) * (transpose ? cout : cin) + a) * (transpose ? cin : cout) + b;
          const ci = transpose ? b : a;
          const co = transpose ? a : b;
          const dst = transpose ? ((ci * cout + co) * k + kh) * k + kw : ((co * cin + ci) * k + kh) * k + kw;
          out[dst] = inScale ? kernel[src] * inScale[ci] : kernel[src];
        }
      }
    }
  }
  return out;
}

/**
 * The output of a 'same'-padded Conv2D / Conv2DTranspose (bias included) for an input whose every pixel is
 * the vector `inValue`: an [out, outSize, outSize] map. Zero padding makes it differ near the borders (and,
 * for a strided transpose, between output phases), which is why a per-channel shift before a convolution
 * folds into a bias *map* rather than a bias vector.
 */
export function constantInputResponse(conv: ConvWeights, transpose: boolean, inValue: Float64Array, inSize: number): Float32Array {
  const { kernelSize: k, stride: s, inChannels: cin, outChannels: cout, kernel, bias } = conv;
  // v[kh][kw][co] = sum_ci W[kh, kw, ci -> co] * inValue[ci]
  const v = new Float64Array(k * k * cout);
  for (let t = 0; t < k * k; t++) {
    for (let ci = 0; ci < cin; ci++) {
      const x = inValue[ci];
      if (x === 0) continue;
      for (let co = 0; co < cout; co++) {
        const src = transpose ? (t * cout + co) * cin + ci : (t * cin + ci) * cout + co;
        v[t * cout + co] += kernel[src] * x;
      }
    }
  }
  let outSize: number;
  let taps: (o: number) => number[];
  if (transpose) {
    outSize = inSize * s;
    const { before } = sameConvTransposePads(k, s);
    // Output o receives input i through tap t when o = i * s + t - before, 0 <= i < inSize.
    taps = (o) => {
      const list: number[] = [];
      for (let t = 0; t < k; t++) {
        const num = o + before - t;
        if (num >= 0 && num % s === 0 && num / s < inSize) list.push(t);
      }
      return list;
    };
  } else {
    const pads = sameConvPads(k, s, inSize);
    outSize = pads.outSize;
    // Output o reads input i = o * s + t - before through tap t.
    taps = (o) => {
      const list: number[] = [];
      for (let t = 0; t < k; t++) {
        const i = o * s + t - pads.before;
        if (i >= 0 && i < inSize) list.push(t);
      }
      return list;
    };
  }
  const tapsOf = Array.from({ length: outSize }, (_, o) => taps(o));
  const map = new Float32Array(cout * outSize * outSize);
  const acc = new Float64Array(cout);
  for (let oh = 0; oh < outSize; oh++) {
    for (let ow = 0; ow < outSize; ow++) {
      for (let co = 0; co < cout; co++) acc[co] = bias[co];
      for (const th of tapsOf[oh]) {
        for (const tw of tapsOf[ow]) {
          const base = (th * k + tw) * cout;
          for (let co = 0; co < cout; co++) acc[co] += v[base + co];
        }
      }
      for (let co = 0; co < cout; co++) map[(co * outSize + oh) * outSize + ow] = acc[co];
    }
  }
  return map;
}

/**
 * The permutation that turns a Dense output reshaped NHWC ([h, w, c]) into one reshaped NCHW: entry
 * j of the result is the NHWC column that becomes NCHW column j.
 */
export function nhwcToNchwColumns(h: number, w: number, c: number): Uint32Array {
  const perm = new Uint32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) perm[(ch * h + y) * w + x] = (y * w + x) * c + ch;
    }
  }
  return perm;
}

/** Picks the columns of a row-major [rows, cols] matrix in the order `perm`. */
export function permuteColumns(matrix: Float32Array, rows: number, perm: Uint32Array): Float32Array {
  const cols = perm.length;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let j = 0; j < cols; j++) out[src + j] = matrix[src + perm[j]];
  }
  return out;
}

/** Picks the entries of a vector in the order `perm`. */
export function permuteVector(v: ArrayLike<number>, perm: Uint32Array): Float32Array {
  return Float32Array.from(perm, (p) => v[p]);
}
