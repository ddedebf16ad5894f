/**
 * Picks the engine that samples a checkpoint: ONNX Runtime over the checkpoint's `decoder.onnx` export
 * (made on the spot when missing or stale) when it works, TensorFlow.js otherwise.
 * `SAMPLER_ENGINE=auto|onnx|tfjs` (default auto) chooses; `onnx` fails instead of falling back.
 */
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import type { CheckpointMeta } from './checkpoint.js';
import { ensureDecoderOnnx } from './onnx/checkpoint-export.js';
import { OnnxSampler } from './onnx/onnx-sampler.js';
import { Sampler } from './sampler.js';

const log = childLogger('sampler-factory');

/** Which engine samples: `auto` prefers ONNX Runtime and falls back to TensorFlow.js. */
export type SamplerEngine = 'auto' | 'onnx' | 'tfjs';
/** Every engine name, as SAMPLER_ENGINE and `sample --engine` take them. */
export const SAMPLER_ENGINES: readonly SamplerEngine[] = ['auto', 'onnx', 'tfjs'];

/** What every sampler offers, whichever engine runs it. */
export interface ImageSampler {
  readonly engine: 'onnx' | 'tfjs';
  readonly meta: CheckpointMeta;
  readonly resolution: number;
  /** One uint8 RGB HWC image per (embedding, seed); the same pair gives the same image on either engine. */
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
  dispose(): void;
}

/** Options of `createSampler`. */
export interface CreateSamplerOptions {
  /** Default `SAMPLER_ENGINE`, else `auto`. */
  engine?: SamplerEngine;
  /** ONNX Runtime intra-op threads (default `ONNX_THREADS`, else the number of cores). */
  threads?: number;
}

/**
 * The engine named by `SAMPLER_ENGINE` (default `auto`).
 * @throws UserError for an unknown name
 */
export function samplerEngineFromEnv(env: NodeJS.ProcessEnv = process.env): SamplerEngine {
  const raw = (env.SAMPLER_ENGINE ?? '').trim().toLowerCase() || 'auto';
  if (!(SAMPLER_ENGINES as readonly string[]).includes(raw)) {
    throw new UserError(`SAMPLER_ENGINE must be one of ${SAMPLER_ENGINES.join(', ')}, got "${env.SAMPLER_ENGINE}".`);
  }
  return raw as SamplerEngine;
}

/**
 * Opens a checkpoint folder for sampling on the chosen engine.
 * @throws UserError when the checkpoint cannot be read; with `engine: 'onnx'`, any ONNX failure
 */
export async function createSampler(dir: string, opts: CreateSamplerOptions = {}): Promise<ImageSampler> {
  const engine = opts.engine ?? samplerEngineFromEnv();
  if (engine === 'tfjs') return Sampler.fromCheckpoint(dir);
  if (engine === 'onnx') return OnnxSampler.fromCheckpoint(dir, { threads: opts.threads });
  try {
    return await OnnxSampler.fromCheckpoint(dir, { threads: opts.threads });
  } catch (err) {
    if (err instanceof UserError) throw err; // the checkpoint itself is unusable: TensorFlow.js cannot help
    log.warn({ dir, err: (err as Error).message }, 'ONNX Runtime sampling unavailable; falling back to TensorFlow.js');
    return Sampler.fromCheckpoint(dir);
  }
}

/**
 * Registry hook: when a checkpoint is registered or activated, make (or refresh) its ONNX export so the
 * first request after a `/model use` does not pay for it. Never throws: a failed export is logged, and
 * sampling then exports again or falls back to TensorFlow.js. Nothing to do when `SAMPLER_ENGINE=tfjs`.
 */
export async function prepareCheckpointForServing(dir: string): Promise<void> {
  try {
    if (samplerEngineFromEnv() === 'tfjs') return;
    await ensureDecoderOnnx(dir);
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'could not export the checkpoint decoder to ONNX');
  }
}
