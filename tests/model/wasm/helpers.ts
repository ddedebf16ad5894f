/** Shared helpers of the fast-backend tests: seeded data, running a function on a given backend, comparing. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initWasmBackend } from '../../../src/model/wasm/setup.js';

/** Deterministic values in [-1, 1) (mulberry32). */
export function seeded(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** A seeded tensor of the given shape on the current backend. */
export function seededTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seeded(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** Makes `name` ('cpu' = stock pure JS, 'wasm' = wasm with this project's kernels) the current backend. */
export async function useBackend(name: 'cpu' | 'wasm'): Promise<void> {
  if (name === 'wasm') await initWasmBackend();
  else await tf.setBackend('cpu');
  assert.equal(tf.getBackend(), name);
}

/** Runs `f` on a backend and returns its outputs as plain arrays (tensors freed). */
export async function runOn(name: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(name);
  const outs = tf.tidy(f);
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

/** ||a − b|| / ||b||, with ||b|| floored so that all-zero references compare by absolute norm. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'same length');
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    ref += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(ref), 1e-12);
}

/** Asserts that every output matches its reference within `tol` relative (norm-wise) and has no NaN. */
export function assertClose(actual: Float32Array[], expected: Float32Array[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    assert.ok(a.every(Number.isFinite), `${what}[${i}] is finite`);
    const err = relativeError(a, expected[i]);
    assert.ok(err <= tol, `${what}[${i}]: relative error ${err.toExponential(2)} > ${tol}`);
  });
}
