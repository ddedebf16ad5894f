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

/** ONNX Conv / ConvTranspose attributes of a TensorFlow 'same' layer on a `size` x `size` input, and its output size. */
export function sameConvAttributes(conv: ConvWeights, transpose: boolean, size: number): { attrs: Record<string, { ints: number[] }>; outSize: number } {
  const k = conv.kernelSize;
  const attrs: Record<string, { ints: number[] }> = { kernel_shape: { ints: [k, k] }, strides: { ints: [conv.stride, conv.stride] } };
  if (transpose) {
    const p = sameConvTransposePads(k, conv.stride);
    attrs.pads = { ints: [p.before, p.before, p.after, p.after] };
    if (p.outputPadding) attrs.output_padding = { ints: [p.outputPadding, p.outputPadding] };
    return { attrs, outSize: size * conv.stride };
  }
  const p = sameConvPads(k, conv.stride, size);
  attrs.pads = { ints: [p.before, p.before, p.after, p.after] };
  return { attrs, outSize: p.outSize };
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

/** A Conv2DTranspose rewritten as a stride-1 Conv over the input grid whose output channels hold the stride^2 output phases. */
export interface SubPixelConv {
  /** ONNX Conv W [stride^2 * out, in, kernel, kernel]; channel (py * stride + px) * out + c is phase (py, px) of channel c (DepthToSpace DCR order). */
  weights: Float32Array;
  /** [stride^2 * out]. */
  bias: Float32Array;
  kernel: number;
  padBefore: number;
  padAfter: number;
}

/**
 * Rewrites a TensorFlow 'same' Conv2DTranspose as a Conv + DepthToSpace (sub-pixel convolution), exactly.
 * Output row o = stride * q + r (phase r) receives input row i = q + d through tap t when
 * o = i * stride + t - padBefore, i.e. d = (r + padBefore - t) / stride; the Conv's kernel spans the union of
 * the offsets d over all phases (taps a phase does not use are zero). For stride 1 this is the ordinary Conv
 * with the flipped kernel. Each input channel's weights are multiplied by `inScale` when given.
 */
export function subPixelConv(conv: ConvWeights, inScale?: Float64Array): SubPixelConv {
  const { kernelSize: k, stride: s, inChannels: cin, outChannels: cout, kernel } = conv;
  const { before } = sameConvTransposePads(k, s);
  const offset = (r: number, t: number) => (r + before - t) / s;
  let dMin = Infinity;
  let dMax = -Infinity;
  for (let r = 0; r < s; r++) {
    for (let t = 0; t < k; t++) {
      const d = offset(r, t);
      if (Number.isInteger(d)) {
        dMin = Math.min(dMin, d);
        dMax = Math.max(dMax, d);
      }
    }
  }
  if (dMin > 0 || dMax < 0) throw new Error(`cannot rewrite a kernel ${k} stride ${s} transpose as a same-size conv`);
  const kc = dMax - dMin + 1;
  const phases = s * s;
  const weights = new Float32Array(phases * cout * cin * kc * kc);
  for (let py = 0; py < s; py++) {
    for (let px = 0; px < s; px++) {
      for (let th = 0; th < k; th++) {
        const dh = offset(py, th);
        if (!Number.isInteger(dh)) continue;
        for (let tw = 0; tw < k; tw++) {
          const dw = offset(px, tw);
          if (!Number.isInteger(dw)) continue;
          const jh = dh - dMin;
          const jw = dw - dMin;
          for (let co = 0; co < cout; co++) {
            const oc = (py * s + px) * cout + co;
            for (let ci = 0; ci < cin; ci++) {
              const src = ((th * k + tw) * cout + co) * cin + ci; // TF transpose kernel [kh, kw, out, in]
              const v = kernel[src];
              weights[((oc * cin + ci) * kc + jh) * kc + jw] = inScale ? v * inScale[ci] : v;
            }
          }
        }
      }
    }
  }
  const bias = new Float32Array(phases * cout);
  for (let p = 0; p < phases; p++) bias.set(conv.bias, p * cout);
  return { weights, bias, kernel: kc, padBefore: -dMin, padAfter: dMax };
}

/** One output phase (py, px) of a strided Conv2DTranspose as its own Conv over the input grid, with only the taps it uses. */
export interface PhaseConv {
  /** ONNX Conv W [out, in, kh, kw]. */
  weights: Float32Array;
  kernel: [number, number];
  /** ONNX pads [top, left, bottom, right]. */
  pads: [number, number, number, number];
}

/**
 * Splits a TensorFlow 'same' Conv2DTranspose into stride^2 Convs, one per output phase, in DepthToSpace DCR
 * order ((py * stride + px)), each with exactly the taps its phase uses (so no multiplications by zero taps):
 * phase r of a dimension uses taps t = r + padBefore - stride * d for input offsets d, read by a Conv whose pads
 * are -min(d) before and max(d) after. Returns null when some phase has no taps or needs negative padding.
 */
export function phaseConvs(conv: ConvWeights, inScale?: Float64Array): PhaseConv[] | null {
  const { kernelSize: k, stride: s, inChannels: cin, outChannels: cout, kernel } = conv;
  const { before } = sameConvTransposePads(k, s);
  /** Taps of phase r in ascending offset order, and the offset range. */
  const axis = (r: number) => {
    const taps: { t: number; d: number }[] = [];
    for (let t = 0; t < k; t++) {
      const d = (r + before - t) / s;
      if (Number.isInteger(d)) taps.push({ t, d });
    }
    taps.sort((a, b) => a.d - b.d);
    return taps;
  };
  const axes = Array.from({ length: s }, (_, r) => axis(r));
  if (axes.some((a) => a.length === 0 || a[0].d > 0 || a[a.length - 1].d < 0)) return null;
  const out: PhaseConv[] = [];
  for (let py = 0; py < s; py++) {
    for (let px = 0; px < s; px++) {
      const ys = axes[py];
      const xs = axes[px];
      const weights = new Float32Array(cout * cin * ys.length * xs.length);
      ys.forEach(({ t: th }, jh) => {
        xs.forEach(({ t: tw }, jw) => {
          for (let co = 0; co < cout; co++) {
            for (let ci = 0; ci < cin; ci++) {
              const v = kernel[((th * k + tw) * cout + co) * cin + ci];
              weights[((co * cin + ci) * ys.length + jh) * xs.length + jw] = inScale ? v * inScale[ci] : v;
            }
          }
        });
      });
      out.push({
        weights,
        kernel: [ys.length, xs.length],
        pads: [-ys[0].d, -xs[0].d, ys[ys.length - 1].d, xs[xs.length - 1].d],
      });
    }
  }
  return out;
}

/**
 * A stride-1 'same' Conv2D applied to an image that is held as its stride^2 phases (the channels a
 * DepthToSpace DCR would interleave: (ry * stride + rx) * in + c), rewritten as one Conv over the phase grid
 * that outputs the phases of the result in the same layout. Output row o = stride * q + ro reads input row
 * h = o + t - padBefore, which is phase (ro + t - padBefore) mod stride of grid row q + floor((ro + t - padBefore) / stride).
 * Zero padding carries over exactly. Returns the Conv weights [s^2 out, s^2 in, kc, kc] and pads.
 */
export function phaseSpaceConv(conv: ConvWeights, phaseStride: number, inScale?: Float64Array): SubPixelConv {
  const { kernelSize: k, inChannels: cin, outChannels: cout, kernel } = conv;
  if (conv.stride !== 1) throw new Error('only stride-1 convolutions can run in phase space');
  const s = phaseStride;
  const before = Math.floor((k - 1) / 2); // TF 'same', stride 1
  const eMin = Math.floor(-before / s);
  const eMax = Math.floor((s - 1 + k - 1 - before) / s);
  const kc = eMax - eMin + 1;
  const phases = s * s;
  const weights = new Float32Array(phases * cout * phases * cin * kc * kc);
  for (let oy = 0; oy < s; oy++) {
    for (let ox = 0; ox < s; ox++) {
      for (let th = 0; th < k; th++) {
        const vy = oy + th - before;
        const ey = Math.floor(vy / s) - eMin;
        const ry = vy - s * Math.floor(vy / s);
        for (let tw = 0; tw < k; tw++) {
          const vx = ox + tw - before;
          const ex = Math.floor(vx / s) - eMin;
          const rx = vx - s * Math.floor(vx / s);
          for (let co = 0; co < cout; co++) {
            const oc = (oy * s + ox) * cout + co;
            for (let ci = 0; ci < cin; ci++) {
              const ic = (ry * s + rx) * cin + ci;
              const v = kernel[((th * k + tw) * cin + ci) * cout + co]; // TF conv kernel [kh, kw, in, out]
              weights[((oc * phases * cin + ic) * kc + ey) * kc + ex] += inScale ? v * inScale[ci] : v;
            }
          }
        }
      }
    }
  }
  const bias = new Float32Array(phases * cout);
  for (let p = 0; p < phases; p++) bias.set(conv.bias, p * cout);
  return { weights, bias, kernel: kc, padBefore: -eMin, padAfter: eMax };
}
