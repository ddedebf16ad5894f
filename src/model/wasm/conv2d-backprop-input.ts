/**
 * Conv2DBackpropInput (the input gradient of Conv2D, and the forward pass of Conv2DTranspose) for the wasm
 * backend, on XNNPACK's convolution instead of the stock kernel's scalar loops. A stride-1 layer is one
 * convolution of dy with the flipped, transposed filter; a strided one is split into stride² sub-pixel phases
 * (see phases.ts), each a stride-1 convolution with part of the filter, interleaved into dx.
 * Also the DepthwiseConv2dNativeBackpropInput kernel, the same scheme on the depthwise convolution.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { channelsLastConvInfo, callKernel, free, fromValues, heap, pair, WASM, type ExplicitPadding } from './kernel-utils.js';
import { planPhases, type Phase } from './phases.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap };

/** Geometry shared by the regular and the depthwise case. */
interface Geometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  /** dx channels. */
  inChannels: number;
  outHeight: number;
  outWidth: number;
  /** dy channels. */
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/** Builds the filter of one phase (row phase, column phase) from the full filter. */
type PhaseFilter = (ph: Phase, pw: Phase) => { values: Float32Array; shape: number[] };

/**
 * Walks the taps of one phase filter, flipped: tap (i, j) of the th x tw phase filter takes the full filter's
 * tap (rh + sh (th − 1 − i), rw + sw (tw − 1 − j)). `copy(tap, source)` gets both as flat spatial indices
 * (i · tw + j, and row · filterWidth + column).
 */
function forEachPhaseTap(ph: Phase, pw: Phase, g: Geometry, copy: (tap: number, source: number) => void): void {
  const th = ph.taps;
  const tw = pw.taps;
  for (let i = 0; i < th; i++) {
    const a = ph.r + g.strideHeight * (th - 1 - i);
    for (let j = 0; j < tw; j++) copy(i * tw + j, a * g.filterWidth + pw.r + g.strideWidth * (tw - 1 - j));
  }
}

/**
 * dx from dy by phases.
 * @param convKernel 'Conv2D' or 'DepthwiseConv2dNative'
 * @param convChannels channels of each phase convolution's output
 * @param reduce dy channels summed into one dx channel (depthwise channel multiplier; 1 for Conv2D)
 */
function backpropInputByPhases(
  backend: BackendWasm,
  dy: tf.TensorInfo,
  g: Geometry,
  convKernel: 'Conv2D' | 'DepthwiseConv2dNative',
  convChannels: number,
  reduce: number,
  phaseFilter: PhaseFilter,
): tf.TensorInfo {
  const rows = planPhases(g.inHeight, g.outHeight, g.filterHeight, g.strideHeight, g.padTop);
  const cols = planPhases(g.inWidth, g.outWidth, g.filterWidth, g.strideWidth, g.padLeft);
  const single = rows.length === 1 && cols.length === 1 && reduce === 1;
  const usable = (ph: Phase, pw: Phase) =>
    ph.taps > 0 &&
    pw.taps > 0 &&
    g.outHeight - ph.cropBefore - ph.cropAfter > 0 &&
    g.outWidth - pw.cropBefore - pw.cropAfter > 0;
  // Every dx position belongs to exactly one phase; phases that no filter tap reaches stay zero.
  const someZero = rows.some((ph) => cols.some((pw) => !usable(ph, pw)));
  const makeDx = () => {
    const out = backend.makeOutput([g.batch, g.inHeight, g.inWidth, g.inChannels], 'float32');
    if (someZero) heap(backend, out).fill(0);
    return out;
  };
  let dx: tf.TensorInfo | null = null;
  for (const ph of rows) {
    for (const pw of cols) {
      if (!usable(ph, pw)) continue;
      const src = cropHW(backend, dy, ph, pw);
      const f = phaseFilter(ph, pw);
      let filter: tf.TensorInfo | null = null;
      let conv: tf.TensorInfo;
      try {
        filter = fromValues(backend, f.values, f.shape);
        const pad: ExplicitPadding = [
          [0, 0],
          [ph.padBefore, ph.padAfter],
          [pw.padBefore, pw.padAfter],
          [0, 0],
        ];
        conv = callKernel(
          convKernel,
          backend,
          { x: src, filter },
          { strides: [1, 1], dilations: [1, 1], pad, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap,
        ); // [N, ph.count, pw.count, convChannels]
      } catch (err) {
        if (dx) free(backend, dx);
        throw err;
      } finally {
        if (filter) free(backend, filter);
        if (src !== dy) free(backend, src);
      }
      if (single) return conv; // stride 1: the convolution is dx
      try {
        dx ??= makeDx();
        scatterPhase(heap(backend, conv), heap(backend, dx), g, ph, pw, convChannels, reduce);
      } finally {
        free(backend, conv);
      }
    }
  }
  return dx ?? makeDx();
}

/** dy without the rows/columns a phase crops (the same info when it crops nothing). */
function cropHW(backend: BackendWasm, dy: tf.TensorInfo, ph: Phase, pw: Phase): tf.TensorInfo {
  if (ph.cropBefore === 0 && ph.cropAfter === 0 && pw.cropBefore === 0 && pw.cropAfter === 0) return dy;
  const [n, h, w, c] = dy.shape;
  const oh = h - ph.cropBefore - ph.cropAfter;
  const ow = w - pw.cropBefore - pw.cropAfter;
  const out = backend.makeOutput([n, oh, ow, c], 'float32');
  const s = heap(backend, dy);
  const d = heap(backend, out);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const from = ((b * h + i + ph.cropBefore) * w + pw.cropBefore) * c;
      d.set(s.subarray(from, from + ow * c), (b * oh + i) * ow * c);
    }
  }
  return out;
}

/** Writes one phase's convolution output into its positions of dx, summing `reduce` channels into one. */
function scatterPhase(
  src: Float32Array,
  dst: Float32Array,
  g: Geometry,
  ph: Phase,
  pw: Phase,
  convChannels: number,
  reduce: number,
): void {
  const C = g.inChannels;
  const sh = g.strideHeight;
  const sw = g.strideWidth;
  let s = 0;
  for (let n = 0; n < g.batch; n++) {
    for (let k = 0; k < ph.count; k++) {
      const p = sh * (ph.uMin + k) + ph.r - g.padTop;
      const rowBase = (n * g.inHeight + p) * g.inWidth;
      for (let l = 0; l < pw.count; l++) {
        const q = sw * (pw.uMin + l) + pw.r - g.padLeft;
        const d = (rowBase + q) * C;
        if (reduce === 1) {
          for (let c = 0; c < C; c++) dst[d + c] = src[s + c];
        } else {
          for (let c = 0; c < C; c++) {
            let acc = 0;
            for (let m = 0; m < reduce; m++) acc += src[s + c * reduce + m];
            dst[d + c] = acc;
          }
        }
        s += convChannels;
      }
    }
  }
}

function conv2DBackpropInput(args: Args): tf.TensorInfo {
  const { inputs, backend } = args;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (attrs.dataFormat === 'NCHW') throw new Error("wasm Conv2DBackpropInput supports dataFormat 'NHWC' only");
  const info = channelsLastConvInfo(attrs.inputShape, filter.shape, { ...attrs, dilations: 1 }, false);
  const g: Geometry = { ...info, padTop: info.padInfo.top, padLeft: info.padInfo.left, batch: info.batchSize };
  const [, , Ci, Co] = filter.shape;
  const w = heap(backend, filter).slice(); // copy: the heap may grow before the phase filters are built
  // Phase filter [th, tw, Co, Ci]: F[i, j, co, ci] = W[rh + sh (th − 1 − i), rw + sw (tw − 1 − j), ci, co].
  const phaseFilter: PhaseFilter = (ph, pw) => {
    const values = new Float32Array(ph.taps * pw.taps * Co * Ci);
    forEachPhaseTap(ph, pw, g, (tap, source) => {
      const fBase = source * Ci * Co;
      const oBase = tap * Co * Ci;
      for (let ci = 0; ci < Ci; ci++) {
        for (let co = 0; co < Co; co++) values[oBase + co * Ci + ci] = w[fBase + ci * Co + co];
      }
    });
    return { values, shape: [ph.taps, pw.taps, Co, Ci] };
  };
  return backpropInputByPhases(backend, dy, g, 'Conv2D', Ci, 1, phaseFilter);
}

function depthwiseConv2dNativeBackpropInput(args: Args): tf.TensorInfo {
  const { inputs, backend } = args;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const [dh, dw] = pair(attrs.dilations as number | [number, number]);
  if (dh !== 1 || dw !== 1) {
    throw new Error('wasm DepthwiseConv2dNativeBackpropInput supports dilation 1 only (as tfjs gradients do)');
  }
  const info = channelsLastConvInfo(attrs.inputShape, filter.shape, { ...attrs, dilations: 1 }, true);
  const g: Geometry = { ...info, padTop: info.padInfo.top, padLeft: info.padInfo.left, batch: info.batchSize };
  const [, , C, M] = filter.shape;
  const w = heap(backend, filter).slice();
  // Phase filter [th, tw, C·M, 1]: F[i, j, c·M + m] = W[rh + sh (th − 1 − i), rw + sw (tw − 1 − j), c, m].
  const phaseFilter: PhaseFilter = (ph, pw) => {
    const values = new Float32Array(ph.taps * pw.taps * C * M);
    forEachPhaseTap(ph, pw, g, (tap, source) => values.set(w.subarray(source * C * M, (source + 1) * C * M), tap * C * M));
    return { values, shape: [ph.taps, pw.taps, C * M, 1] };
  };
  return backpropInputByPhases(backend, dy, g, 'DepthwiseConv2dNative', C * M, M, phaseFilter);
}

/** Kernel config: Conv2DBackpropInput on 'wasm' (replaces the stock scalar kernel). */
export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: WASM,
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};

/** Kernel config: DepthwiseConv2dNativeBackpropInput on 'wasm' (missing from the stock backend). */
export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: WASM,
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};
