/**
 * Gathers the capabilities that decoder-engine.ts chooses from, once per process:
 * - TensorFlow.js on a GPU: the backend that `initBackend()` loaded is `@tensorflow/tfjs-node-gpu` and it runs
 *   on a CUDA device. When that package is not even installed, TensorFlow.js is not loaded for the question.
 * - ONNX Runtime's CUDA execution provider: onnxruntime-node lists `cuda` for linux/x64 and win32/x64 but does
 *   not ship its provider library in the npm package (its install script fetches it, for CUDA 12, where it
 *   can); so first the library file must be there, then a one-node session must open and run with
 *   `executionProviders: ['cuda']` (onnxruntime-node rejects the session when the library, the CUDA and cuDNN
 *   libraries it links to, or a device are missing; it does not fall back silently).
 * Every step that fails becomes a reason, never an exception.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { childLogger } from '../log.js';
import { currentBackend, initBackend, type BackendInfo } from './backend.js';
import type { Capability, DecoderCapabilities, SamplerEngine } from './decoder-engine.js';
import { loadOnnxRuntime } from './onnx/onnx-sampler.js';
import { OnnxGraphBuilder } from './onnx/proto.js';

const log = childLogger('decoder-probe');
const require = createRequire(import.meta.url);

/** What the probe reads from the host; each part can be replaced (tests stub them: no GPU here). */
export interface DecoderProbeDeps {
  /** The TensorFlow.js backend already loaded, else null (default `currentBackend()`). */
  loadedTfjsBackend?: () => BackendInfo | null;
  /** Loads the TensorFlow.js backend (default `initBackend()`). */
  loadTfjsBackend?: () => Promise<BackendInfo>;
  /** Whether an npm package is installed (default: resolvable from here). */
  installed?: (pkg: string) => boolean;
  /** The file of ONNX Runtime's CUDA provider library, or null with why there is none on this platform. */
  onnxCudaLibrary?: () => { file: string } | { none: string };
  /** Whether a file exists (default fs.existsSync). */
  exists?: (file: string) => boolean;
  /** Opens and runs a one-node session with the CUDA provider; resolves with a detail, rejects with why not. */
  tryOnnxCuda?: () => Promise<string>;
}

/** Whether a package resolves from this module (installed), without loading it. */
function isInstalled(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  }
}

/** Where onnxruntime-node keeps the CUDA provider library on this platform (bin/napi-v6/<platform>/<arch>/). */
export function onnxCudaLibraryPath(platform: NodeJS.Platform = process.platform, arch: string = process.arch): { file: string } | { none: string } {
  const name = platform === 'linux' ? 'libonnxruntime_providers_cuda.so' : platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : null;
  if (!name || arch !== 'x64') return { none: `onnxruntime-node has no CUDA provider for ${platform}/${arch}` };
  let root: string;
  try {
    root = path.dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    try {
      root = path.resolve(path.dirname(require.resolve('onnxruntime-node')), '..');
    } catch {
      return { none: 'onnxruntime-node is not installed' };
    }
  }
  return { file: path.join(root, 'bin', 'napi-v6', platform, arch, name) };
}

/** A one-node model (y = x + x) to open a session with. */
function probeModel(): Uint8Array {
  const g = new OnnxGraphBuilder();
  const x = g.input('x', 'float', [1]);
  g.output(g.node('Add', [x, x], {}, 'y'), 'float', [1]);
  return g.encode({ opset: 17, graphName: 'cuda_probe', producer: 'cvae decoder probe' });
}

/** Opens and runs the probe model on ONNX Runtime's CUDA provider, in this thread, then frees it. */
async function tryOnnxCudaSession(): Promise<string> {
  const ort = await loadOnnxRuntime();
  const listed = (ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.();
  if (listed && !listed.some((b) => b.name === 'cuda')) throw new Error(`this onnxruntime-node build lists no cuda backend (${listed.map((b) => b.name).join(', ')})`);
  const session = await ort.InferenceSession.create(probeModel(), { executionProviders: ['cuda'] });
  try {
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1.5]), [1]) });
    const y = (out.y.data as Float32Array)[0];
    if (y !== 3) throw new Error(`the CUDA provider computed 1.5 + 1.5 = ${y}`);
  } finally {
    await session.release();
  }
  const version = (ort.env.versions as Record<string, string | undefined>).node ?? (ort.env.versions as Record<string, string | undefined>).common ?? '?';
  return `onnxruntime-node ${version}, CUDA execution provider`;
}

/** The first line of an error, short enough for a log field and /healthz. */
function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? 'unknown error';
  return line.length > 240 ? `${line.slice(0, 237)}...` : line;
}

function tfjsCapability(info: BackendInfo): Capability {
  return info.gpu
    ? { available: true, detail: `${info.package} on a CUDA device` }
    : { available: false, reason: `the TensorFlow.js backend is ${info.package} (${info.backend}) without a GPU` };
}

/** TensorFlow.js on a GPU: the loaded backend's answer, loading it only when the GPU build is installed (or `tfjs` was asked for). */
export async function probeTfjsGpu(requested: SamplerEngine, deps: DecoderProbeDeps = {}): Promise<Capability> {
  if (requested === 'onnx') return { available: false, reason: 'not probed (SAMPLER_ENGINE=onnx)' };
  const loaded = (deps.loadedTfjsBackend ?? currentBackend)();
  if (loaded) return tfjsCapability(loaded);
  if (requested === 'auto' && !(deps.installed ?? isInstalled)('@tensorflow/tfjs-node-gpu')) {
    return { available: false, reason: '@tensorflow/tfjs-node-gpu is not installed' };
  }
  try {
    return tfjsCapability(await (deps.loadTfjsBackend ?? initBackend)());
  } catch (err) {
    return { available: false, reason: `TensorFlow.js could not load: ${reasonOf(err)}` };
  }
}

/** ONNX Runtime's CUDA provider: its library file, then a session that opens and runs on it. */
export async function probeOnnxCuda(requested: SamplerEngine, deps: DecoderProbeDeps = {}): Promise<Capability> {
  if (requested === 'tfjs') return { available: false, reason: 'not probed (SAMPLER_ENGINE=tfjs)' };
  const lib = (deps.onnxCudaLibrary ?? onnxCudaLibraryPath)();
  if ('none' in lib) return { available: false, reason: lib.none };
  if (!(deps.exists ?? fs.existsSync)(lib.file)) {
    return {
      available: false,
      reason: `onnxruntime-node was installed without its CUDA provider (${path.basename(lib.file)} missing; ` +
        'on a host with CUDA 12 and cuDNN 9 fetch it with: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node)',
    };
  }
  try {
    return { available: true, detail: await (deps.tryOnnxCuda ?? tryOnnxCudaSession)() };
  } catch (err) {
    return { available: false, reason: `the CUDA provider could not open a session: ${reasonOf(err)}` };
  }
}

/**
 * Probes what the choice needs: for an explicit engine, its own part; for `auto`, TensorFlow.js first, and
 * ONNX Runtime's CUDA provider only when TensorFlow.js has no GPU (no CUDA session is opened for nothing).
 */
export async function probeDecoderCapabilities(requested: SamplerEngine, deps: DecoderProbeDeps = {}): Promise<DecoderCapabilities> {
  const tfjsGpu = await probeTfjsGpu(requested, deps);
  const onnxCuda: Capability = requested === 'auto' && tfjsGpu.available
    ? { available: false, reason: 'not probed: TensorFlow.js has the GPU' }
    : await probeOnnxCuda(requested, deps);
  return { tfjsGpu, onnxCuda };
}

const cache = new Map<SamplerEngine, Promise<DecoderCapabilities>>();

/** {@link probeDecoderCapabilities} once per process and engine (a CUDA session is not opened twice). */
export function detectDecoderCapabilities(requested: SamplerEngine): Promise<DecoderCapabilities> {
  let probe = cache.get(requested);
  if (!probe) {
    probe = probeDecoderCapabilities(requested).then((caps) => {
      log.debug({ requested, caps }, 'decoder capabilities probed');
      return caps;
    });
    cache.set(requested, probe);
  }
  return probe;
}

/** Forgets the probed capabilities (tests). */
export function resetDecoderProbe(): void {
  cache.clear();
}
