/**
 * Which engine and device decode images, as a pure function of what the host offers: `chooseDecoderEngine`
 * takes the asked engine (`SAMPLER_ENGINE`) and the detected capabilities (gathered by decoder-probe.ts)
 * and says which engine runs, on which device, and why. `auto` prefers a GPU: TensorFlow.js when its backend
 * is `@tensorflow/tfjs-node-gpu` on a CUDA device, else ONNX Runtime's CUDA execution provider, else ONNX
 * Runtime on the CPU. `onnx` is ONNX Runtime with CUDA where it works, else on the CPU; `tfjs` is
 * TensorFlow.js on whatever backend loaded. When the chosen engine cannot open a checkpoint, the next
 * candidate is tried (`fallbackDecoderEngine`; with `auto`, TensorFlow.js on the CPU comes last).
 *
 * The choice in force is kept per process ({@link recordDecoderEngine}) for the load log, `/healthz` and
 * `/metrics` (`cvae_decoder_engine_info{engine,device} 1`).
 */
/** Engines as `SAMPLER_ENGINE` names them. */
export type SamplerEngine = 'auto' | 'onnx' | 'tfjs';

/** A capability that is there, or why not. */
export type Capability = { available: true; detail: string } | { available: false; reason: string };

/** What the host offers for decoding (decoder-probe.ts gathers it; tests give it directly). */
export interface DecoderCapabilities {
  /** TensorFlow.js on a GPU: `@tensorflow/tfjs-node-gpu` loaded and found a CUDA device. */
  tfjsGpu: Capability;
  /** ONNX Runtime's CUDA execution provider: a session could be created with `executionProviders: ['cuda']`. */
  onnxCuda: Capability;
}

/** The engine that decodes, on which device, and why. */
export interface DecoderEngineChoice {
  /** What was asked for (`SAMPLER_ENGINE`, `--engine`). */
  requested: SamplerEngine;
  engine: 'onnx' | 'tfjs';
  device: 'gpu' | 'cpu';
  /** ONNX Runtime's execution provider (`cuda` or `cpu`); null for TensorFlow.js. */
  executionProvider: 'cuda' | 'cpu' | null;
  /** One sentence for the log and /healthz. */
  reason: string;
}

function onnxOnCpu(requested: SamplerEngine, reason: string): DecoderEngineChoice {
  return { requested, engine: 'onnx', device: 'cpu', executionProvider: 'cpu', reason };
}

function onnxOnCuda(requested: SamplerEngine, reason: string): DecoderEngineChoice {
  return { requested, engine: 'onnx', device: 'gpu', executionProvider: 'cuda', reason };
}

function tfjs(requested: SamplerEngine, caps: DecoderCapabilities, reason: string): DecoderEngineChoice {
  return { requested, engine: 'tfjs', device: caps.tfjsGpu.available ? 'gpu' : 'cpu', executionProvider: null, reason };
}

const why = (c: Capability): string => (c.available ? c.detail : c.reason);

/**
 * Every engine worth trying for `requested` on a host with `caps`, best first, each with why:
 * - auto: TensorFlow.js on the GPU (when it has one), ONNX Runtime on CUDA (when it works), ONNX Runtime on
 *   the CPU, and TensorFlow.js on the CPU last (when it was not first);
 * - onnx: ONNX Runtime on CUDA (when it works), then on the CPU;
 * - tfjs: TensorFlow.js on its backend's device.
 * Pure: the same inputs give the same list.
 */
export function decoderEngineCandidates(requested: SamplerEngine, caps: DecoderCapabilities): DecoderEngineChoice[] {
  const { tfjsGpu, onnxCuda } = caps;
  if (requested === 'tfjs') {
    return [tfjs(requested, caps, `SAMPLER_ENGINE=tfjs; TensorFlow.js ${tfjsGpu.available ? 'on the GPU' : 'on the CPU'} (${why(tfjsGpu)})`)];
  }
  if (requested === 'onnx') {
    const cpu = onnxOnCpu(requested, onnxCuda.available ? 'SAMPLER_ENGINE=onnx; ONNX Runtime on the CPU' : `SAMPLER_ENGINE=onnx; ONNX Runtime on the CPU: no CUDA provider (${onnxCuda.reason})`);
    return onnxCuda.available ? [onnxOnCuda(requested, `SAMPLER_ENGINE=onnx; ONNX Runtime's CUDA provider works (${onnxCuda.detail})`), cpu] : [cpu];
  }
  const list: DecoderEngineChoice[] = [];
  if (tfjsGpu.available) list.push(tfjs(requested, caps, `a GPU through TensorFlow.js (${tfjsGpu.detail})`));
  if (onnxCuda.available) {
    list.push(onnxOnCuda(requested, `a GPU through ONNX Runtime's CUDA provider (${onnxCuda.detail})${tfjsGpu.available ? '' : `; TensorFlow.js has none (${tfjsGpu.reason})`}`));
  }
  list.push(onnxOnCpu(requested, tfjsGpu.available || onnxCuda.available
    ? 'ONNX Runtime on the CPU'
    : `no GPU found: TensorFlow.js: ${tfjsGpu.reason}; ONNX Runtime CUDA: ${onnxCuda.reason}`));
  if (!tfjsGpu.available) list.push(tfjs(requested, caps, 'TensorFlow.js on the CPU'));
  return list;
}

/** Picks the engine: the first of {@link decoderEngineCandidates}. */
export function chooseDecoderEngine(requested: SamplerEngine, caps: DecoderCapabilities): DecoderEngineChoice {
  return decoderEngineCandidates(requested, caps)[0];
}

/**
 * The next candidate after `failed` could not open the checkpoint's decoder (`error`: what went wrong), its
 * reason saying so, or null when nothing is left to try (the caller then reports the error). E.g. ONNX on
 * CUDA falls back to ONNX on the CPU; with `auto`, ONNX on the CPU falls back to TensorFlow.js.
 */
export function fallbackDecoderEngine(failed: DecoderEngineChoice, caps: DecoderCapabilities, error: string): DecoderEngineChoice | null {
  const list = decoderEngineCandidates(failed.requested, caps);
  const i = list.findIndex((c) => c.engine === failed.engine && c.device === failed.device && c.executionProvider === failed.executionProvider);
  const next = i >= 0 ? list[i + 1] : undefined;
  if (!next) return null;
  return { ...next, reason: `${label(failed)} could not open the decoder (${error}); ${label(next)} instead` };
}

function label(c: DecoderEngineChoice): string {
  if (c.engine === 'tfjs') return `TensorFlow.js on the ${c.device === 'gpu' ? 'GPU' : 'CPU'}`;
  return `ONNX Runtime on ${c.executionProvider === 'cuda' ? 'CUDA' : 'the CPU'}`;
}

let current: DecoderEngineChoice | null = null;

/** Remembers the choice of the sampler that loaded last (for /healthz and /metrics). */
export function recordDecoderEngine(choice: DecoderEngineChoice): void {
  current = choice;
}

/** The choice of the sampler that loaded last in this process, or null (no sampler yet). */
export function currentDecoderEngine(): DecoderEngineChoice | null {
  return current;
}

/** Forgets the recorded choice (tests). */
export function resetDecoderEngine(): void {
  current = null;
}

/** The `/healthz` check of the engine: informative, never failing (the `decoder` and `model` checks fail). */
export function decoderEngineHealth(choice: DecoderEngineChoice | null = current): { ok: boolean; detail: string } {
  if (!choice) return { ok: true, detail: 'no decoder loaded in this process yet' };
  const via = choice.executionProvider ? ` (${choice.executionProvider} execution provider)` : '';
  return { ok: true, detail: `${choice.engine} on ${choice.device}${via}: ${choice.reason}` };
}
