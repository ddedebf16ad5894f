/**
 * DepthwiseConv2dNativeBackpropFilter for the wasm backend (missing from the stock one):
 * dW[a, b, c, m] = Σ_{n,i,j} x[n, i·sh − pt + a·dh, j·sw − pl + b·dw, c] · dy[n, i, j, c·M + m].
 * Plain loops over the wasm heap: the work is the same as one depthwise forward pass, small next to the
 * dense convolutions (and the SSIM window, the only depthwise filter in this project, is a constant).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { channelsLastConvInfo, heap, WASM } from './kernel-utils.js';

function depthwiseConv2dNativeBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: BackendWasm;
  attrs: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { inputs, backend } = args;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = channelsLastConvInfo(x.shape, attrs.filterShape, attrs, true);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const M = info.outChannels / C;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = backend.makeOutput([kh, kw, C, M], 'float32');
  const xs = heap(backend, x);
  const ds = heap(backend, dy);
  const acc = new Float64Array(kh * kw * C * M);
  const CM = C * M;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < Ho; i++) {
      for (let a = 0; a < kh; a++) {
        const h = i * sh - pt + a * dh;
        if (h < 0 || h >= H) continue;
        for (let j = 0; j < Wo; j++) {
          const dyBase = ((n * Ho + i) * Wo + j) * CM;
          for (let b = 0; b < kw; b++) {
            const w = j * sw - pl + b * dw;
            if (w < 0 || w >= W) continue;
            const xBase = ((n * H + h) * W + w) * C;
            const fBase = (a * kw + b) * CM;
            for (let c = 0; c < C; c++) {
              const xv = xs[xBase + c];
              for (let m = 0; m < M; m++) acc[fBase + c * M + m] += xv * ds[dyBase + c * M + m];
            }
          }
        }
      }
    }
  }
  heap(backend, out).set(acc);
  return out;
}

/** Kernel config: DepthwiseConv2dNativeBackpropFilter on 'wasm'. */
export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: WASM,
  kernelFunc: depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc,
};
