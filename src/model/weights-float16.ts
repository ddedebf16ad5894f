/**
 * Float16 storage of layers-model weights: halves a checkpoint on disk (the shipped demo model) with no change
 * for readers. A converted `weights.bin` holds IEEE 754 half-precision values and each float32 entry of the
 * manifest in `model.json` gets `quantization: { dtype: 'float16' }`, the TensorFlow.js manifest convention:
 * `tf.loadLayersModel` (through `fileIOHandler`) dequantizes them to float32 when the model loads.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { MODEL_JSON, WEIGHTS_BIN, weightBytes } from './file-io.js';
import { writeFileDurable } from '../util/durable-write.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The half-precision bit pattern of a number, rounded to nearest even; overflow gives ±Infinity, tiny
 * values become subnormals or ±0, NaN stays NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m += 1;
    return sign | m; // may carry into the smallest normal, which is the right result
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** The number a half-precision bit pattern stands for. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Result of converting one model folder. */
export interface Float16Conversion {
  /** Weight entries stored as float16 now. */
  converted: number;
  /** Entries left as they were (int32 or already quantized). */
  kept: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Rewrites a layers-model folder (`model.json` + `weights.bin`, as `fileIOHandler` writes it) with its float32
 * weights stored as float16. Other dtypes and already quantized entries are copied unchanged. Idempotent.
 * Values beyond float16's range (±65504) would become infinite: such a weight makes it throw instead.
 * @param dir the model folder, e.g. `<checkpoint>/decoder`
 */
export async function convertModelFolderToFloat16(dir: string): Promise<Float16Conversion> {
  const jsonFile = path.join(dir, MODEL_JSON);
  const modelJson = JSON.parse(await fsp.readFile(jsonFile, 'utf8')) as tf.io.ModelJSON;
  const groups = modelJson.weightsManifest;
  if (groups.length !== 1 || groups[0].paths.length !== 1) throw new Error(`${jsonFile}: expected one weights group with one shard`);
  const group = groups[0];
  const raw = await fsp.readFile(path.join(dir, group.paths[0]));
  if (raw.byteLength !== weightBytes(group.weights)) throw new Error(`${dir}: weights file does not match its manifest`);
  const parts: Buffer[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  let converted = 0;
  let kept = 0;
  for (const spec of group.weights) {
    const bytes = weightBytes([spec]);
    const chunk = raw.subarray(offset, offset + bytes);
    offset += bytes;
    if (spec.dtype !== 'float32' || spec.quantization) {
      parts.push(chunk);
      specs.push(spec);
      kept += 1;
      continue;
    }
    const values = new Float32Array(chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength));
    const half = Buffer.alloc(values.length * 2);
    for (let i = 0; i < values.length; i++) {
      if (Number.isFinite(values[i]) && Math.abs(values[i]) > 65504) {
        throw new RangeError(`${dir}: weight ${spec.name} holds ${values[i]}, beyond float16's range`);
      }
      half.writeUInt16LE(float32ToFloat16Bits(values[i]), i * 2);
    }
    parts.push(half);
    specs.push({ ...spec, quantization: { dtype: 'float16' } });
    converted += 1;
  }
  const out = Buffer.concat(parts);
  await writeFileDurable(path.join(dir, WEIGHTS_BIN), out);
  modelJson.weightsManifest = [{ paths: [`./${WEIGHTS_BIN}`], weights: specs }];
  await writeFileDurable(jsonFile, JSON.stringify(modelJson));
  return { converted, kept, bytesBefore: raw.byteLength, bytesAfter: out.byteLength };
}
