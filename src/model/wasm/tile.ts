/**
 * Tile for the wasm backend with block copies (the stock kernel copies element by element with index
 * arithmetic, ~100x slower; BatchNorm's gradient tiles its [C] statistics to the activation's shape).
 * Copies each innermost row of the input to its place, then replicates whole blocks with copyWithin, innermost
 * axis first.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WASM } from './kernel-utils.js';

/**
 * Tiles `src` (shape `shape`) `reps` times per axis into `dst` (shape shape[i]·reps[i]). Pure; exported for
 * tests.
 */
export function tileInto(src: tf.TypedArray, shape: readonly number[], reps: readonly number[], dst: tf.TypedArray): void {
  const rank = shape.length;
  if (rank === 0) {
    dst.set(src.subarray(0, 1), 0);
    return;
  }
  const out = shape.map((s, i) => s * reps[i]);
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * out[i + 1];
  const row = shape[rank - 1];
  // 1. Each input row to its place in the first tile, repeated along the last axis.
  const prefix = shape.slice(0, rank - 1);
  forEachIndex(prefix, (idx, flat) => {
    let off = 0;
    for (let i = 0; i < idx.length; i++) off += idx[i] * strides[i];
    dst.set(src.subarray(flat * row, (flat + 1) * row), off);
    for (let t = 1; t < reps[rank - 1]; t++) dst.copyWithin(off + t * row, off, off + row);
  });
  // 2. Replicate along the other axes, innermost first, within the blocks filled so far.
  for (let k = rank - 2; k >= 0; k--) {
    if (reps[k] === 1) continue;
    const block = shape[k] * strides[k];
    forEachIndex(shape.slice(0, k), (idx) => {
      let base = 0;
      for (let i = 0; i < idx.length; i++) base += idx[i] * strides[i];
      for (let t = 1; t < reps[k]; t++) dst.copyWithin(base + t * block, base, base + block);
    });
  }
}

/** Calls f for every index of `shape` in row-major order, with its flat position. */
function forEachIndex(shape: readonly number[], f: (idx: number[], flat: number) => void): void {
  const total = shape.reduce((a, b) => a * b, 1);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    f(idx, flat);
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
}

/**
 * Makes the Tile kernel config, falling back to `stock` (the package's kernel) for strings.
 * @param stock the package's kernel config (its setup runs with this one)
 */
export function makeTileConfig(stock: tf.KernelConfig): tf.KernelConfig {
  const tile = (args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }) => {
    const { inputs, backend } = args;
    const x = inputs.x as tf.TensorInfo;
    const reps = (args.attrs as unknown as tf.TileAttrs).reps;
    if (x.dtype === 'string' || reps.length !== x.shape.length) return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    const out = backend.makeOutput(
      x.shape.map((s, i) => s * reps[i]),
      x.dtype,
    );
    // Views are taken after makeOutput: a growing heap detaches older ones.
    if (out.shape.every((s) => s > 0)) {
      tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
    }
    return out;
  };
  return { kernelName: 'Tile', backendName: WASM, kernelFunc: tile as unknown as tf.KernelFunc, setupFunc: stock.setupFunc };
}
