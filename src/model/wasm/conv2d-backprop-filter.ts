/**
 * Conv2DBackpropFilter for the wasm backend (which has none): the filter gradient of a convolution, computed
 * as one XNNPACK convolution of transposed tensors.
 *
 * dW[a, b, ci, co] = Σ_{n,i,j} x[n, i·sh − pt + a, j·sw − pl + b, ci] · dy[n, i, j, co]
 *
 * is a convolution whose "batch" is ci, whose input channels are n and whose filter is dy itself:
 * input x' = transpose(x, [3, 1, 2, 0]) [Ci, H, W, N], filter dy' = transpose(dy, [1, 2, 0, 3]) [Ho, Wo, N, Co],
 * stride 1, dilation = the forward stride, padding = the forward padding; the result [Ci, kh, kw, Co] is
 * reordered to [kh, kw, Ci, Co]. The wasm Conv2D kernel (XNNPACK, SIMD) does all the multiply-adds.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { channelsLastConvInfo, callKernel, free, heap, transpose, WASM, type ExplicitPadding } from './kernel-utils.js';

function conv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: BackendWasm;
  attrs: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { inputs, backend } = args;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat === 'NCHW') {
    throw new Error("wasm Conv2DBackpropFilter supports dataFormat 'NHWC' only");
  }
  const info = channelsLastConvInfo(x.shape, attrs.filterShape, { ...attrs, dilations: 1 }, false);
  const { inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // The forward pass may leave the last rows/columns unused: then the convolution below yields more than kh
  // (kw) positions and the extra ones are dropped.
  const pb = Math.max(0, kh + (Ho - 1) * sh - H - pt);
  const pr = Math.max(0, kw + (Wo - 1) * sw - W - pl);

  const xT = transpose(backend, x, [3, 1, 2, 0]); // [Ci, H, W, N]
  let dyT: tf.TensorInfo | null = null;
  let conv: tf.TensorInfo;
  try {
    dyT = transpose(backend, dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
    const pad: ExplicitPadding = [
      [0, 0],
      [pt, pb],
      [pl, pr],
      [0, 0],
    ];
    conv = callKernel(
      'Conv2D',
      backend,
      { x: xT, filter: dyT },
      { strides: [1, 1], dilations: [sh, sw], pad, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap,
    ); // [Ci, outH, outW, Co]
  } finally {
    free(backend, xT);
    if (dyT) free(backend, dyT);
  }

  const [, outH, outW] = conv.shape;
  let out: tf.TensorInfo;
  try {
    out = backend.makeOutput([kh, kw, Ci, Co], 'float32');
  } catch (err) {
    free(backend, conv);
    throw err;
  }
  const src = heap(backend, conv);
  const dst = heap(backend, out);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let ci = 0; ci < Ci; ci++) {
        const from = ((ci * outH + a) * outW + b) * Co;
        dst.set(src.subarray(from, from + Co), ((a * kw + b) * Ci + ci) * Co);
      }
    }
  }
  free(backend, conv);
  return out;
}

/** Kernel config: Conv2DBackpropFilter on 'wasm'. */
export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: WASM,
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
