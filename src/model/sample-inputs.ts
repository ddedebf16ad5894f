/**
 * Validation of sampler inputs shared by every sampling engine (TensorFlow.js and ONNX Runtime), so both
 * reject the same requests with the same messages.
 */
import { UserError } from '../errors.js';

/**
 * Checks one embedding per seed, each `dim` finite floats, and integer seeds.
 * @throws UserError describing the first problem
 */
export function checkSampleInputs(embeddings: Float32Array[], seeds: number[], dim: number): void {
  if (embeddings.length !== seeds.length) {
    throw new UserError(`Got ${embeddings.length} embeddings but ${seeds.length} seeds; give one seed per image.`);
  }
  embeddings.forEach((e, i) => {
    if (e.length !== dim) throw new UserError(`Embedding ${i + 1} has ${e.length} values; this model takes ${dim}.`);
    if (!e.every(Number.isFinite)) throw new UserError(`Embedding ${i + 1} has values that are not finite numbers.`);
  });
  seeds.forEach((s) => {
    if (!Number.isSafeInteger(s)) throw new UserError(`Seed ${s} is not an integer.`);
  });
}

/** Packs equal-length rows into one row-major Float32Array. */
export function packRows(rows: Float32Array[], width: number): Float32Array {
  const flat = new Float32Array(rows.length * width);
  rows.forEach((r, i) => flat.set(r, i * width));
  return flat;
}
