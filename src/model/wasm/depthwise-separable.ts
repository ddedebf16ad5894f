/**
 * DepthwiseConv2dNative for the wasm backend with a fast path for large separable filters (the SSIM loss's
 * 11x11 Gaussian window): when every channel's kh x kw filter is an outer product u·vᵀ (to float precision),
 * the convolution runs as a vertical then a horizontal 1-D pass, kh + kw multiply-adds per output instead of
 * kh·kw. XNNPACK's depthwise kernel is slow for 11x11 windows on 3 channels. Other filters go to the stock
 * kernel. Channel multiplier 1 only (the other cases go to the stock kernel too).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { channelsLastConvInfo, heap, WASM } from './kernel-utils.js';

/** Windows with fewer taps than this use the stock kernel (XNNPACK is fast for 3x3 and 5x5). */
const MIN_TAPS = 36;
/** Largest |w − u·vᵀ| accepted, relative to max |w|. */
const RANK1_TOLERANCE = 1e-6;

/**
 * Factors a depthwise filter [kh, kw, C, 1] into per-channel vertical and horizontal taps, or returns null
 * when some channel's window is not (numerically) rank one. Pure; exported for tests.
 * @returns u [kh·C] (u[a·C + c]) and v [kw·C] (v[b·C + c]) with w[a, b, c] ≈ u[a, c]·v[b, c]
 */
export function separateFilter(w: Float32Array, kh: number, kw: number, C: number): { u: Float64Array; v: Float64Array } | null {
  const u = new Float64Array(kh * C);
  const v = new Float64Array(kw * C);
  const at = (a: number, b: number, c: number) => w[(a * kw + b) * C + c];
  for (let c = 0; c < C; c++) {
    // Pivot: the largest entry.
    let pa = 0;
    let pb = 0;
    let max = 0;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const m = Math.abs(at(a, b, c));
        if (m > max) {
          max = m;
          pa = a;
          pb = b;
        }
      }
    }
    if (max === 0) continue; // all-zero channel: u = v = 0
    const pivot = at(pa, pb, c);
    for (let a = 0; a < kh; a++) u[a * C + c] = at(a, pb, c);
    for (let b = 0; b < kw; b++) v[b * C + c] = at(pa, b, c) / pivot;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        if (Math.abs(at(a, b, c) - u[a * C + c] * v[b * C + c]) > RANK1_TOLERANCE * max) return null;
      }
    }
  }
  return { u, v };
}

/**
 * Makes the DepthwiseConv2dNative kernel config.
 * @param stock the package's kernel config (its setup runs with this one)
 */
export function makeDepthwiseConfig(stock: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }) => {
    const { inputs, backend } = args;
    const x = inputs.x as tf.TensorInfo;
    const filter = inputs.filter as tf.TensorInfo;
    const [kh, kw, C, M] = filter.shape;
    if (M !== 1 || kh * kw < MIN_TAPS || x.dtype !== 'float32') return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    const factors = separateFilter(heap(backend, filter), kh, kw, C);
    if (!factors) return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
    const info = channelsLastConvInfo(x.shape, filter.shape, attrs, true);
    const out = backend.makeOutput(info.outShape, 'float32');
    separableDepthwise(heap(backend, x), heap(backend, out), info, factors.u, factors.v);
    return out;
  };
  return { kernelName: 'DepthwiseConv2dNative', backendName: WASM, kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: stock.setupFunc };
}

/**
 * The two 1-D passes, one output row at a time; zero padding as in the 2-D convolution. Each tap is a
 * multiply-add over a contiguous run of the row (all columns and channels at once), which V8 runs fast.
 */
function separableDepthwise(
  x: Float32Array,
  out: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  u: Float64Array,
  v: Float64Array,
): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const rowLen = W * C;
  const outLen = Wo * C;
  // Per-tap weights spread over a whole row: uRows[a][w·C + c] = u[a, c]; vRows[b][j·C + c] = v[b, c].
  const uRows = Array.from({ length: kh }, (_, a) => Float64Array.from({ length: rowLen }, (_, k) => u[a * C + (k % C)]));
  const vRows = Array.from({ length: kw }, (_, b) => Float64Array.from({ length: outLen }, (_, k) => v[b * C + (k % C)]));
  const tRow = new Float64Array(rowLen);
  const oRow = new Float64Array(outLen);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < Ho; i++) {
      // Vertical: t[w, c] = Σ_a u[a, c] · x[n, i·sh − pt + a·dh, w, c].
      tRow.fill(0);
      for (let a = 0; a < kh; a++) {
        const h = i * sh - pt + a * dh;
        if (h < 0 || h >= H) continue;
        const ua = uRows[a];
        const xo = (n * H + h) * rowLen;
        for (let k = 0; k < rowLen; k++) tRow[k] += ua[k] * x[xo + k];
      }
      // Horizontal: o[j, c] = Σ_b v[b, c] · t[j·sw − pl + b·dw, c].
      oRow.fill(0);
      for (let b = 0; b < kw; b++) {
        const vb = vRows[b];
        const shift = b * dw - pl; // input column = j·sw + shift
        const jFrom = Math.max(0, Math.ceil(-shift / sw));
        const jTo = Math.min(Wo, Math.floor((W - 1 - shift) / sw) + 1);
        if (sw === 1) {
          const off = shift * C;
          for (let k = jFrom * C; k < jTo * C; k++) oRow[k] += vb[k] * tRow[k + off];
        } else {
          for (let j = jFrom; j < jTo; j++) {
            const t0 = (j * sw + shift) * C;
            for (let c = 0; c < C; c++) oRow[j * C + c] += vb[j * C + c] * tRow[t0 + c];
          }
        }
      }
      out.set(oRow, (n * Ho + i) * outLen);
    }
  }
}
