/**
 * Small helpers for kernels written in TypeScript on top of the wasm backend's own (C++/XNNPACK) kernels:
 * calling a registered kernel directly (no engine bookkeeping, no tape), freeing intermediates, and
 * reading or writing a tensor's bytes in the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Backend name of `@tensorflow/tfjs-backend-wasm`. */
export const WASM = 'wasm';

/** Explicit padding [[0,0],[top,bottom],[left,right],[0,0]] as the conv kernels take it. */
export type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * Runs a kernel registered for the wasm backend on tensor infos. The result belongs to the caller:
 * return it from a kernel or free it with `free`.
 */
export function callKernel(
  name: string,
  backend: BackendWasm,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (!kernel) throw new Error(`kernel ${name} is not registered for the wasm backend`);
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel ${name} returned several outputs`);
  return out;
}

/** Frees intermediate tensor infos made by `callKernel` or `backend.makeOutput`. */
export function free(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * A float32 view of a tensor's data in the wasm heap. Views die when the heap grows: take them after the
 * last allocation (makeOutput or a kernel call) and do not keep them across one.
 */
export function heap(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** A new float32 wasm tensor holding `values`. */
export function fromValues(backend: BackendWasm, values: Float32Array, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  heap(backend, out).set(values);
  return out;
}

/** Transposes with the wasm Transpose kernel. */
export function transpose(backend: BackendWasm, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return callKernel('Transpose', backend, { x }, { perm });
}

/** Normalises a stride or dilation attribute to [height, width]. */
export function pair(v: number | [number, number] | number[] | undefined, fallback = 1): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

/** The attributes of the convolution kernels that fix their geometry. */
interface ConvGeometryAttrs {
  strides: number | [number, number];
  pad: Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

/**
 * `computeConv2DInfo` for the NHWC kernels here: input and filter shapes, strides, padding and rounding from
 * the attributes; dilations from them too (1 when absent); `depthwise` for the depthwise kernels.
 */
export function channelsLastConvInfo(
  inShape: number[],
  filterShape: number[],
  attrs: ConvGeometryAttrs,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    pair(attrs.dilations),
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
}
