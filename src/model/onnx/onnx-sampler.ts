/**
 * The serving sampler on ONNX Runtime: the same contract as the TensorFlow.js `Sampler` (per-image seeds,
 * one decoder batch, uint8 RGB HWC images) over the checkpoint's `decoder.onnx` export, which returns the
 * uint8 NHWC bytes directly. The session is created once per sampler and reused, in a worker thread by
 * default (onnxruntime-node runs sessions synchronously on the calling thread; the bot's event loop must not
 * stall for a decode). The latent of a seed comes from latent.ts, so both engines decode the same z and give
 * the same image (up to float rounding).
 */
import os from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import { readCheckpointMeta, type CheckpointMeta } from '../checkpoint.js';
import { latentForSeed } from '../latent.js';
import { checkSampleInputs, packRows } from '../sample-inputs.js';
import { ensureDecoderOnnx } from './checkpoint-export.js';
import { InProcessDecoderSession, WorkerDecoderSession, type DecoderSession } from './decoder-session.js';
import { DECODER_INPUTS, DECODER_OUTPUT } from './export.js';

const log = childLogger('onnx-sampler');

/** Options of `OnnxSampler`. */
export interface OnnxSamplerOptions {
  /** Intra-op threads of the session (default `ONNX_THREADS`, else the number of cores). */
  threads?: number;
  /**
   * Run the session in the shared worker thread so decoding never blocks the event loop (default true;
   * `ONNX_WORKER=0` runs it on the calling thread instead).
   */
  worker?: boolean;
  /** ONNX Runtime's execution provider: `cpu` (default) or `cuda` (decoder-engine.ts decides which). */
  executionProvider?: 'cpu' | 'cuda';
}

/** The intra-op thread count: the option, else `ONNX_THREADS`, else the number of cores. */
export function onnxThreads(option?: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = option ?? (env.ONNX_THREADS ? Number(env.ONNX_THREADS) : undefined);
  if (raw === undefined) return os.availableParallelism();
  if (!Number.isInteger(raw) || raw < 1 || raw > 1024) {
    throw new UserError(`ONNX_THREADS must be a whole number of threads from 1 up, got "${env.ONNX_THREADS ?? option}".`);
  }
  return raw;
}

let ortModule: Promise<typeof Ort> | null = null;

/** Loads onnxruntime-node once (a native addon: loading can fail on unsupported platforms). */
export function loadOnnxRuntime(): Promise<typeof Ort> {
  if (!ortModule) {
    const loading = import('onnxruntime-node').then((m) => (m.default ?? m) as unknown as typeof Ort);
    loading.catch(() => { ortModule = null; });
    ortModule = loading;
  }
  return ortModule;
}

/**
 * Session options the decoder runs with: full graph optimisation, sequential execution, `threads` intra-op
 * threads, and the CUDA execution provider when asked (ONNX Runtime then runs what CUDA cannot on the CPU).
 */
export function decoderSessionOptions(threads: number, executionProvider: 'cpu' | 'cuda' = 'cpu'): Ort.InferenceSession.SessionOptions {
  const options: Ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: threads, interOpNumThreads: 1 };
  if (executionProvider === 'cuda') options.executionProviders = ['cuda'];
  return options;
}

/** Samples images with ONNX Runtime from a decoder export. */
export class OnnxSampler {
  /** The engine that runs the decoder. */
  readonly engine = 'onnx' as const;

  private constructor(
    private session: DecoderSession | null,
    readonly meta: CheckpointMeta,
    readonly threads: number,
    /** Whether the session runs in a worker thread. */
    readonly inWorker: boolean,
    /** The execution provider the session runs on. */
    readonly executionProvider: 'cpu' | 'cuda' = 'cpu',
  ) {}

  /**
   * Opens a checkpoint for sampling on ONNX Runtime, exporting its decoder first when the folder has no
   * up-to-date `decoder.onnx`.
   */
  static async fromCheckpoint(dir: string, opts: OnnxSamplerOptions = {}): Promise<OnnxSampler> {
    const threads = onnxThreads(opts.threads);
    const meta = await readCheckpointMeta(dir);
    const { path: file, regenerated } = await ensureDecoderOnnx(dir);
    return OnnxSampler.fromFile(file, meta, { ...opts, threads, regenerated });
  }

  /** Opens a decoder export (uint8 output) made for the checkpoint described by `meta`. */
  static async fromFile(
    file: string | Uint8Array,
    meta: CheckpointMeta,
    opts: OnnxSamplerOptions & { ort?: typeof Ort; regenerated?: boolean } = {},
  ): Promise<OnnxSampler> {
    const threads = onnxThreads(opts.threads);
    const inWorker = opts.worker ?? process.env.ONNX_WORKER !== '0';
    const started = Date.now();
    const executionProvider = opts.executionProvider ?? 'cpu';
    const options = decoderSessionOptions(threads, executionProvider);
    const session = inWorker
      ? await WorkerDecoderSession.open(file, options)
      : await InProcessDecoderSession.open(opts.ort ?? (await loadOnnxRuntime()), file, options);
    const names = [...session.inputNames].sort().join(',');
    if (names !== [DECODER_INPUTS.embedding, DECODER_INPUTS.z].join(',') || !session.outputNames.includes(DECODER_OUTPUT)) {
      await session.close();
      throw new Error(`the ONNX decoder has inputs ${names} and outputs ${session.outputNames.join(',')}; it was not made by this exporter`);
    }
    log.info(
      { name: meta.name, preset: meta.preset, resolution: meta.resolution, threads, inWorker, executionProvider, regenerated: opts.regenerated ?? false, ms: Date.now() - started },
      'onnx sampler ready',
    );
    return new OnnxSampler(session, meta, threads, inWorker, executionProvider);
  }

  /** Image side in pixels. */
  get resolution(): number {
    return this.meta.presetConfig.resolution;
  }

  /** Width of the embeddings the model takes. */
  get embeddingDim(): number {
    return this.meta.presetConfig.embeddingDim;
  }

  /** Size of z. */
  get latentDim(): number {
    return this.meta.presetConfig.latentDim;
  }

  /**
   * Decodes one image per (embedding, seed) pair, in one session run.
   * @param embeddings CLIP embeddings, `embeddingDim` floats each
   * @param seeds one integer seed per embedding
   * @returns images as uint8 RGB, `resolution * resolution * 3` bytes each, row-major HWC
   * @throws UserError when the counts or widths do not fit
   */
  async sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]> {
    checkSampleInputs(embeddings, seeds, this.embeddingDim);
    const n = embeddings.length;
    if (n === 0) return [];
    if (!this.session) throw new Error('the ONNX sampler was disposed');
    const L = this.latentDim;
    const z = packRows(seeds.map((s) => latentForSeed(s, L)), L);
    const emb = packRows(embeddings, this.embeddingDim);
    const out = await this.session.run(
      { [DECODER_INPUTS.z]: { data: z, dims: [n, L] }, [DECODER_INPUTS.embedding]: { data: emb, dims: [n, this.embeddingDim] } },
      DECODER_OUTPUT,
    );
    const size = this.resolution * this.resolution * 3;
    if (out.dtype !== 'uint8' || out.data.length !== n * size) {
      throw new Error(`the ONNX decoder returned ${out.dtype} [${out.dims.join(', ')}], expected uint8 [${n}, ${this.resolution}, ${this.resolution}, 3]`);
    }
    const data = out.data as Uint8Array;
    return Array.from({ length: n }, (_, i) => data.slice(i * size, (i + 1) * size));
  }

  /** Ends the session (and its worker thread). */
  dispose(): void {
    const session = this.session;
    this.session = null;
    void session?.close();
  }
}
