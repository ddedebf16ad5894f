/**
 * The wasm backend (`@tensorflow/tfjs-backend-wasm`: XNNPACK, WebAssembly SIMD) set up for training: the
 * kernels that training needs and the stock backend lacks or runs slowly are registered from this folder.
 *
 * - Conv2DBackpropFilter (missing): one XNNPACK convolution of transposed tensors.
 * - Conv2DBackpropInput (stock one is scalar loops): stride-phase decomposition onto XNNPACK convolutions.
 * - DepthwiseConv2dNativeBackpropInput (missing; SSIM's gradient): the same on the depthwise convolution.
 * - DepthwiseConv2dNativeBackpropFilter (missing): direct loops.
 * - DepthwiseConv2dNative: large separable windows (SSIM's Gaussian) as two 1-D passes; others stock.
 * - BatchMatMul, _FusedMatMul: transposed operands transposed explicitly so XNNPACK's plain path runs.
 * - Tile (stock one copies element by element): block copies.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../../errors.js';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig, depthwiseConv2dNativeBackpropInputConfig } from './conv2d-backprop-input.js';
import { depthwiseConv2dNativeBackpropFilterConfig } from './depthwise-backprop-filter.js';
import { makeDepthwiseConfig } from './depthwise-separable.js';
import { WASM } from './kernel-utils.js';
import { makeMatMulConfig } from './matmul.js';
import { makeTileConfig } from './tile.js';

let registered = false;

/**
 * Registers the training kernels for 'wasm', replacing the stock ones of the same names (which some of them
 * call for the cases they do not handle). Idempotent. Call after `@tensorflow/tfjs-backend-wasm` is imported.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const stock = (name: string): tf.KernelConfig => {
    const kernel = tf.getKernel(name, WASM);
    if (!kernel) throw new Error(`@tensorflow/tfjs-backend-wasm has no ${name} kernel`);
    return kernel;
  };
  const configs: tf.KernelConfig[] = [
    conv2DBackpropFilterConfig,
    conv2DBackpropInputConfig,
    depthwiseConv2dNativeBackpropInputConfig,
    depthwiseConv2dNativeBackpropFilterConfig,
    makeDepthwiseConfig(stock('DepthwiseConv2dNative')),
    makeMatMulConfig('BatchMatMul', stock('BatchMatMul')),
    makeMatMulConfig('_FusedMatMul', stock('_FusedMatMul')),
    makeTileConfig(stock('Tile')),
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, WASM)) tf.unregisterKernel(config.kernelName, WASM);
    tf.registerKernel(config);
  }
  registered = true;
}

let loaded: Promise<void> | null = null;

/**
 * Loads `@tensorflow/tfjs-backend-wasm` (from its package folder; nothing is downloaded), registers the
 * training kernels and makes 'wasm' the current backend. Single-threaded in Node (the package turns threads
 * off there). Idempotent.
 * @throws Error when the package is missing or WebAssembly cannot start
 */
export function initWasmBackend(): Promise<void> {
  if (!loaded) {
    loaded = loadWasm().catch((err: unknown) => {
      loaded = null;
      throw err;
    });
  }
  return loaded.then(async () => {
    if (tf.getBackend() !== WASM) await setCurrent();
  });
}

async function loadWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  // Only possible before the backend first starts (someone may have started it already).
  if (!tf.findBackend(WASM)) wasm.setWasmPaths(dist + path.sep);
  registerWasmTrainingKernels();
  await setCurrent();
}

async function setCurrent(): Promise<void> {
  // Emscripten's Node glue adds process-wide 'uncaughtException' / 'unhandledRejection' handlers that rethrow;
  // they change nothing useful and would shadow the application's own, so they are removed again.
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  type Listener = (...args: unknown[]) => void;
  const emitter = process as unknown as NodeJS.EventEmitter;
  const listeners = (e: string) => emitter.listeners(e) as Listener[];
  const before = new Map(events.map((e) => [e, new Set(listeners(e))]));
  try {
    const ok = await tf.setBackend(WASM);
    if (!ok) throw new Error('the wasm backend did not initialise');
    await tf.ready();
    guardMalloc(tf.backend() as unknown as BackendWasm);
  } finally {
    for (const e of events) {
      for (const l of listeners(e)) {
        if (!before.get(e)!.has(l)) emitter.removeListener(e, l);
      }
    }
  }
}

/** Marks a wasm module whose malloc is already guarded. */
const GUARDED = Symbol('malloc guarded');

/**
 * Makes the backend's tensor allocations fail loudly. The wasm heap is limited to 4 GiB; when it is full,
 * malloc returns 0 and the stock backend would place the tensor at address 0, silently corrupting memory
 * (or fail later with "memory access out of bounds"). Sizes of 4 GiB or more would wrap around. Idempotent.
 * Exported for tests.
 * @throws UserError from the allocation that does not fit
 */
export function guardMalloc(backend: { wasm: object }): void {
  const wasm = backend.wasm as { _malloc(size: number): number; [GUARDED]?: true };
  if (wasm[GUARDED]) return;
  let malloc = wasm._malloc;
  const guarded = (size: number): number => {
    const ptr = size >= 2 ** 32 ? 0 : malloc.call(wasm, size);
    if (ptr === 0 && size > 0) {
      throw new UserError(
        `The wasm TensorFlow.js backend ran out of memory allocating ${(size / 2 ** 20).toFixed(0)} MiB (its heap is ` +
          'limited to 4 GiB). Use a smaller batch size (--batch-size), or TFJS_BACKEND=cpu, or install @tensorflow/tfjs-node.',
      );
    }
    return ptr;
  };
  // Emscripten's lazy export stub replaces Module._malloc with the raw export on its first call: keep that
  // replacement as the inner function and go on handing out the guarded one.
  Object.defineProperty(wasm, '_malloc', {
    configurable: true,
    enumerable: true,
    get: () => guarded,
    set: (f: (size: number) => number) => {
      malloc = f;
    },
  });
  wasm[GUARDED] = true;
}
