/**
 * File-system IO for TensorFlow.js: a `tf.io.IOHandler` that saves and loads layers models as
 * `model.json` + `weights.bin` in a folder (the pure-JS backend has no `file://` handler), written durably
 * with src/util/durable-write.ts.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { syncDir, writeFileDurable } from '../util/durable-write.js';

/** Name of the topology + manifest file in a model folder. */
export const MODEL_JSON = 'model.json';
/** Name of the single weights shard in a model folder. */
export const WEIGHTS_BIN = 'weights.bin';

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
/** Stored width of quantized weights (TensorFlow.js dequantizes them on load; see weights-float16.ts). */
const QUANTIZED_BYTES_PER_ELEMENT: Record<string, number> = { float16: 2, uint16: 2, uint8: 1 };

/** Number of bytes the weights of a manifest take (quantized entries at their stored width). */
export function weightBytes(specs: tf.io.WeightsManifestEntry[]): number {
  return specs.reduce((total, s) => {
    const bytes = s.quantization ? QUANTIZED_BYTES_PER_ELEMENT[s.quantization.dtype] : BYTES_PER_ELEMENT[s.dtype];
    if (!bytes) throw new Error(`weight ${s.name} has unsupported dtype ${s.quantization ? `${s.quantization.dtype} (quantized)` : s.dtype}`);
    return total + s.shape.reduce((a, b) => a * b, 1) * bytes;
  }, 0);
}

/** The bytes of an ArrayBuffer-like weight blob as a Node buffer view (no copy). */
export function weightDataBytes(data: tf.io.WeightData): Uint8Array {
  const joined = Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  return new Uint8Array(joined);
}

/** Reads a whole file into a fresh ArrayBuffer. */
async function readArrayBuffer(file: string): Promise<ArrayBuffer> {
  const buf = await fsp.readFile(file);
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/**
 * An IO handler that saves a layers model into `dir` (`model.json` + `weights.bin`, fsynced) and loads it back.
 * Loading checks that the weights file has exactly the bytes the manifest describes and throws a UserError
 * naming the file when it does not (a truncated or damaged checkpoint).
 * @param dir folder of the model (created on save)
 */
export function fileIOHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileIOHandler saves layers models (JSON topology) only');
      }
      await fsp.mkdir(dir, { recursive: true });
      const specs = artifacts.weightSpecs ?? [];
      const bytes = artifacts.weightData ? weightDataBytes(artifacts.weightData) : new Uint8Array(0);
      await writeFileDurable(path.join(dir, WEIGHTS_BIN), bytes);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: specs }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      await writeFileDurable(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
      await syncDir(dir);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(modelJson.modelTopology).length,
          weightSpecsBytes: JSON.stringify(specs).length,
          weightDataBytes: bytes.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonFile = path.join(dir, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await fsp.readFile(jsonFile, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new UserError(
          `Cannot read the model file ${jsonFile} (${(err as Error).message}). The checkpoint is missing or damaged: use another checkpoint or train again.`,
          { cause: err },
        );
      }
      if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
        throw new UserError(`${jsonFile} is not a TensorFlow.js layers model (no topology or weights manifest).`);
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const shards: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = path.join(dir, p);
            try {
              shards.push(await readArrayBuffer(file));
            } catch (err) {
              throw new UserError(
                `Cannot read the weights file ${file} (${(err as Error).message}). The checkpoint is incomplete: use another checkpoint or train again.`,
                { cause: err },
              );
            }
          }
        }
        const data = tf.io.CompositeArrayBuffer.join(shards);
        const expected = weightBytes(specs);
        if (data.byteLength !== expected) {
          throw new UserError(
            `The weights in ${dir} are ${data.byteLength} bytes but ${MODEL_JSON} describes ${expected}: the checkpoint is truncated or damaged. Use another checkpoint or train again.`,
          );
        }
        return [specs, data];
      });
    },
  };
}
