/**
 * Picks the TensorFlow.js backend once per process: the native GPU build (`@tensorflow/tfjs-node-gpu`),
 * then the native CPU build (`@tensorflow/tfjs-node`), then WebAssembly (`@tensorflow/tfjs-backend-wasm` with
 * this project's training kernels, src/model/wasm), then the pure-JS `cpu` backend that ships with
 * `@tensorflow/tfjs`. `TFJS_BACKEND` forces one of them.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import { initWasmBackend } from './wasm/setup.js';

const log = childLogger('backend');

/** The backend in use and whether TensorFlow found a GPU. */
export interface BackendInfo {
  /** TensorFlow.js backend name: `tensorflow` (native, CPU or GPU), `wasm` or `cpu` (pure JS). */
  backend: string;
  /** True when the native GPU build runs on a CUDA device. */
  gpu: boolean;
  /** The npm package that provides the backend. */
  package: string;
}

type Choice = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';

/** Accepted values of `TFJS_BACKEND`, with aliases. */
const ALIASES: Record<string, Choice> = {
  'tfjs-node-gpu': 'tfjs-node-gpu',
  'node-gpu': 'tfjs-node-gpu',
  gpu: 'tfjs-node-gpu',
  'tfjs-node': 'tfjs-node',
  node: 'tfjs-node',
  tensorflow: 'tfjs-node',
  wasm: 'wasm',
  'tfjs-backend-wasm': 'wasm',
  cpu: 'cpu',
  js: 'cpu',
};

let pending: Promise<BackendInfo> | null = null;
let chosen: BackendInfo | null = null;

/**
 * Loads the best available backend and makes it current. Idempotent: later calls return the first result.
 * @throws UserError when `TFJS_BACKEND` names an unknown backend or one that cannot be loaded here.
 */
export function initBackend(): Promise<BackendInfo> {
  if (!pending) {
    pending = chooseBackend().then((info) => (chosen = info)).catch((err: unknown) => {
      pending = null;
      throw err;
    });
  }
  return pending;
}

/** The result of `initBackend()` once it has finished, else null (for status displays). */
export function currentBackend(): BackendInfo | null {
  return chosen;
}

async function chooseBackend(): Promise<BackendInfo> {
  const forced = process.env.TFJS_BACKEND?.trim().toLowerCase();
  let order: Choice[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];
  if (forced) {
    const choice = ALIASES[forced];
    if (!choice) {
      throw new UserError(
        `TFJS_BACKEND="${process.env.TFJS_BACKEND}" is not a backend I know. Use one of: tfjs-node-gpu, tfjs-node, wasm, cpu (or unset it to pick the best available).`,
      );
    }
    order = [choice];
  }
  const failures: string[] = [];
  for (const choice of order) {
    if (choice === 'cpu') {
      // Production mode: skips debug checks and tfjs's own "install tfjs-node" console banner (logged below instead).
      tf.enableProdMode();
      await tf.setBackend('cpu');
      await tf.ready();
      const info: BackendInfo = { backend: tf.getBackend(), gpu: false, package: '@tensorflow/tfjs' };
      log.info({ ...info, tried: failures }, 'TensorFlow.js backend: pure-JS cpu (slow; install @tensorflow/tfjs-node for speed)');
      return info;
    }
    if (choice === 'wasm') {
      try {
        tf.enableProdMode();
        await initWasmBackend();
        const info: BackendInfo = { backend: tf.getBackend(), gpu: false, package: '@tensorflow/tfjs-backend-wasm' };
        log.info({ ...info, tried: failures }, 'TensorFlow.js backend: wasm (XNNPACK, SIMD, one thread) with training kernels');
        return info;
      } catch (err) {
        const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
        failures.push(`@tensorflow/tfjs-backend-wasm: ${reason}`);
        log.debug({ reason }, 'wasm backend not available');
        if (forced) {
          throw new UserError(
            `TFJS_BACKEND=${process.env.TFJS_BACKEND} asks for the wasm backend, but it could not start (${reason}). ` +
              'Reinstall with `npm ci` (the package ships its .wasm files) or unset TFJS_BACKEND.',
            { cause: err },
          );
        }
        continue;
      }
    }
    const pkg = `@tensorflow/${choice}`;
    try {
      await importOptional(pkg);
      const ok = await tf.setBackend('tensorflow');
      if (!ok) throw new Error('the tensorflow backend did not initialise');
      await tf.ready();
      const info: BackendInfo = { backend: tf.getBackend(), gpu: isUsingGpu(), package: pkg };
      log.info(info, `TensorFlow.js backend: ${pkg}${info.gpu ? ' on GPU' : ''}`);
      return info;
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      failures.push(`${pkg}: ${reason}`);
      log.debug({ pkg, reason }, 'backend not available');
      if (forced) {
        throw new UserError(
          `TFJS_BACKEND=${process.env.TFJS_BACKEND} asks for ${pkg}, but it could not be loaded (${reason}). ` +
            `Install it with \`npm install ${pkg}\` (needs libtensorflow${choice === 'tfjs-node-gpu' ? ', CUDA 11.2 and cuDNN 8.1' : ''}) or unset TFJS_BACKEND.`,
          { cause: err },
        );
      }
    }
  }
  // Unreachable: 'cpu' is always last in the order when nothing is forced.
  throw new Error('no TensorFlow.js backend could be loaded');
}

/** Imports an optional package by a computed name, so that the type-checker does not need it installed. */
async function importOptional(pkg: string): Promise<unknown> {
  const specifier: string = pkg;
  return import(specifier);
}

function isUsingGpu(): boolean {
  if (tf.getBackend() !== 'tensorflow') return false;
  const backend = tf.backend() as unknown as { isUsingGpuDevice?: boolean | (() => boolean) };
  const flag = backend.isUsingGpuDevice;
  return typeof flag === 'function' ? Boolean(flag.call(backend)) : Boolean(flag);
}
