/**
 * Opens a checkpoint for sampling on the engine that decoder-engine.ts picks from what the host offers
 * (decoder-probe.ts): with `SAMPLER_ENGINE=auto` (default) a GPU first (TensorFlow.js on
 * `@tensorflow/tfjs-node-gpu`, else ONNX Runtime's CUDA provider), else ONNX Runtime on the CPU over the
 * checkpoint's `decoder.onnx` export (made on the spot when missing or stale), else TensorFlow.js.
 * `onnx` is ONNX Runtime only (CUDA where it works) and fails instead of falling back to TensorFlow.js;
 * `tfjs` is TensorFlow.js only. The choice is logged once per load and kept for /healthz and /metrics.
 */
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import type { CheckpointMeta } from './checkpoint.js';
import { chooseDecoderEngine, fallbackDecoderEngine, recordDecoderEngine, type DecoderCapabilities, type SamplerEngine } from './decoder-engine.js';
import { detectDecoderCapabilities } from './decoder-probe.js';
import { ensureDecoderOnnx } from './onnx/checkpoint-export.js';
import { OnnxSampler } from './onnx/onnx-sampler.js';
import { Sampler } from './sampler.js';

const log = childLogger('sampler-factory');

export type { SamplerEngine } from './decoder-engine.js';
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
  /** What the host offers (default: probed once per process, decoder-probe.ts; tests stub it). */
  capabilities?: (requested: SamplerEngine) => Promise<DecoderCapabilities>;
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
 * Opens a checkpoint folder for sampling on the engine chosen for this host (see the module comment); when
 * the chosen one cannot open it, the next one that `fallbackDecoderEngine` allows.
 * @throws UserError when the checkpoint cannot be read; with `engine: 'onnx'`, any ONNX failure
 */
export async function createSampler(dir: string, opts: CreateSamplerOptions = {}): Promise<ImageSampler> {
  const requested = opts.engine ?? samplerEngineFromEnv();
  const caps = await (opts.capabilities ?? detectDecoderCapabilities)(requested);
  let choice = chooseDecoderEngine(requested, caps);
  for (;;) {
    try {
      const sampler: ImageSampler = choice.engine === 'tfjs'
        ? await Sampler.fromCheckpoint(dir)
        : await OnnxSampler.fromCheckpoint(dir, { threads: opts.threads, executionProvider: choice.executionProvider ?? 'cpu' });
      recordDecoderEngine(choice);
      log.info({ checkpoint: dir, requested, engine: choice.engine, device: choice.device, executionProvider: choice.executionProvider, reason: choice.reason },
        `decoder engine: ${choice.engine} on ${choice.device}`);
      return sampler;
    } catch (err) {
      if (err instanceof UserError) throw err; // the checkpoint itself is unusable: another engine cannot help
      const message = (err as Error).message.split('\n')[0];
      const next = fallbackDecoderEngine(choice, caps, message);
      if (!next) throw err;
      log.warn({ dir, engine: choice.engine, device: choice.device, err: message, next: `${next.engine} on ${next.device}` },
        'the chosen decoder engine could not open the checkpoint; trying the next one');
      choice = next;
    }
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
