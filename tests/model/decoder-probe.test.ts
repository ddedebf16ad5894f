/**
 * The capability probe with its host stubbed (no GPU here): TensorFlow.js is asked only when its GPU build
 * is installed or already loaded; ONNX Runtime's CUDA provider is tried only when its library is there, and
 * every failure becomes a reason. Then the real probe on this host, which has neither.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { BackendInfo } from '../../src/model/backend.js';
import { onnxCudaLibraryPath, probeDecoderCapabilities, probeOnnxCuda, probeTfjsGpu, type DecoderProbeDeps } from '../../src/model/decoder-probe.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GPU: BackendInfo = { backend: 'tensorflow', gpu: true, package: '@tensorflow/tfjs-node-gpu' };
const NATIVE_CPU: BackendInfo = { backend: 'tensorflow', gpu: false, package: '@tensorflow/tfjs-node' };

/** Deps that fail the test when a part is used that should not be. */
function deps(over: DecoderProbeDeps & { calls?: string[] }): DecoderProbeDeps {
  const calls = over.calls ?? [];
  return {
    loadedTfjsBackend: () => null,
    loadTfjsBackend: async () => { calls.push('loadTfjs'); return NATIVE_CPU; },
    installed: () => false,
    onnxCudaLibrary: () => ({ file: '/ort/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so' }),
    exists: () => false,
    tryOnnxCuda: async () => { calls.push('tryCuda'); return 'stub CUDA provider'; },
    ...over,
  };
}

describe('probeTfjsGpu', () => {
  it('reads the backend already loaded, GPU or not, without loading again', async () => {
    const calls: string[] = [];
    assert.deepEqual(await probeTfjsGpu('auto', deps({ calls, loadedTfjsBackend: () => GPU })), { available: true, detail: '@tensorflow/tfjs-node-gpu on a CUDA device' });
    const cpu = await probeTfjsGpu('auto', deps({ calls, loadedTfjsBackend: () => NATIVE_CPU, installed: () => true }));
    assert.equal(cpu.available, false);
    assert.match((cpu as { reason: string }).reason, /@tensorflow\/tfjs-node \(tensorflow\) without a GPU/);
    assert.deepEqual(calls, []);
  });

  it('does not load TensorFlow.js for auto when tfjs-node-gpu is not installed', async () => {
    const calls: string[] = [];
    assert.deepEqual(await probeTfjsGpu('auto', deps({ calls })), { available: false, reason: '@tensorflow/tfjs-node-gpu is not installed' });
    assert.deepEqual(calls, []);
  });

  it('loads the backend when the GPU build is installed, or when tfjs was asked for', async () => {
    const calls: string[] = [];
    const gpu = await probeTfjsGpu('auto', deps({ calls, installed: (p) => p === '@tensorflow/tfjs-node-gpu', loadTfjsBackend: async () => { calls.push('loadTfjs'); return GPU; } }));
    assert.equal(gpu.available, true);
    const asked = await probeTfjsGpu('tfjs', deps({ calls }));
    assert.equal(asked.available, false);
    assert.deepEqual(calls, ['loadTfjs', 'loadTfjs']);
  });

  it('turns a backend that cannot load into a reason, and is not asked for onnx', async () => {
    const failed = await probeTfjsGpu('auto', deps({ installed: () => true, loadTfjsBackend: async () => { throw new Error('libcudart.so.11.0: cannot open shared object file\nmore'); } }));
    assert.deepEqual(failed, { available: false, reason: 'TensorFlow.js could not load: libcudart.so.11.0: cannot open shared object file' });
    const calls: string[] = [];
    assert.deepEqual(await probeTfjsGpu('onnx', deps({ calls, loadedTfjsBackend: () => GPU })), { available: false, reason: 'not probed (SAMPLER_ENGINE=onnx)' });
  });
});

describe('probeOnnxCuda', () => {
  it('says how to get the provider when its library is missing, without opening a session', async () => {
    const calls: string[] = [];
    const c = await probeOnnxCuda('auto', deps({ calls }));
    assert.equal(c.available, false);
    assert.match((c as { reason: string }).reason, /installed without its CUDA provider \(libonnxruntime_providers_cuda\.so missing; .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    assert.deepEqual(calls, []);
  });

  it('is available when a session opens on CUDA, and says why not when it does not', async () => {
    const calls: string[] = [];
    assert.deepEqual(await probeOnnxCuda('onnx', deps({ calls, exists: () => true })), { available: true, detail: 'stub CUDA provider' });
    assert.deepEqual(calls, ['tryCuda']);
    const failed = await probeOnnxCuda('auto', deps({ exists: () => true, tryOnnxCuda: async () => { throw new Error('CUDA failure 100: no CUDA-capable device is detected'); } }));
    assert.deepEqual(failed, { available: false, reason: 'the CUDA provider could not open a session: CUDA failure 100: no CUDA-capable device is detected' });
  });

  it('is not asked for tfjs, nor on a platform without the provider', async () => {
    const calls: string[] = [];
    assert.deepEqual(await probeOnnxCuda('tfjs', deps({ calls, exists: () => true })), { available: false, reason: 'not probed (SAMPLER_ENGINE=tfjs)' });
    assert.deepEqual(await probeOnnxCuda('auto', deps({ calls, onnxCudaLibrary: () => onnxCudaLibraryPath('darwin', 'arm64') })),
      { available: false, reason: 'onnxruntime-node has no CUDA provider for darwin/arm64' });
    assert.deepEqual(calls, []);
  });

  it('finds the provider library where onnxruntime-node keeps its native files', () => {
    const lib = onnxCudaLibraryPath('linux', 'x64');
    assert.ok('file' in lib);
    assert.match(lib.file, /onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so$/);
    assert.ok(fs.existsSync(lib.file.replace('libonnxruntime_providers_cuda.so', 'onnxruntime_binding.node')), 'the binding sits in that folder');
    const win = onnxCudaLibraryPath('win32', 'x64');
    assert.ok('file' in win && win.file.endsWith('onnxruntime_providers_cuda.dll'));
  });
});

describe('probeDecoderCapabilities', () => {
  it('for auto, opens no CUDA session when TensorFlow.js already has the GPU', async () => {
    const calls: string[] = [];
    const caps = await probeDecoderCapabilities('auto', deps({ calls, loadedTfjsBackend: () => GPU, exists: () => true }));
    assert.equal(caps.tfjsGpu.available, true);
    assert.deepEqual(caps.onnxCuda, { available: false, reason: 'not probed: TensorFlow.js has the GPU' });
    assert.deepEqual(calls, []);
    const onnx = await probeDecoderCapabilities('onnx', deps({ calls, loadedTfjsBackend: () => GPU, exists: () => true }));
    assert.equal(onnx.onnxCuda.available, true, 'onnx asks ONNX Runtime whatever TensorFlow.js has');
    assert.deepEqual(calls, ['tryCuda']);
  });
});

describe('probeDecoderCapabilities on this host', () => {
  it('agrees with what is installed here: no tfjs-node-gpu, no CUDA provider library → no GPU, with reasons', async () => {
    const caps = await probeDecoderCapabilities('auto');
    const gpuBuild = fs.existsSync(path.join(repoRoot, 'node_modules/@tensorflow/tfjs-node-gpu/package.json'));
    if (!gpuBuild) assert.deepEqual(caps.tfjsGpu, { available: false, reason: '@tensorflow/tfjs-node-gpu is not installed' });
    const lib = onnxCudaLibraryPath();
    if ('file' in lib && !fs.existsSync(lib.file)) {
      assert.equal(caps.onnxCuda.available, false);
      assert.match((caps.onnxCuda as { reason: string }).reason, /installed without its CUDA provider/);
    }
    assert.ok(gpuBuild || ('file' in lib && fs.existsSync(lib.file)) || (!caps.tfjsGpu.available && !caps.onnxCuda.available),
      'without either GPU part installed, nothing claims a GPU');
  });

  it('asking ONNX Runtime for CUDA where its provider cannot load fails the session instead of running on the CPU', async (t) => {
    const lib = onnxCudaLibraryPath();
    if (!('file' in lib) || fs.existsSync(lib.file)) {
      t.diagnostic('the CUDA provider library is installed here: the failing path is not reachable');
      return;
    }
    // Past the file check: the real one-node session with executionProviders ['cuda'].
    const c = await probeOnnxCuda('auto', { exists: () => true });
    assert.equal(c.available, false);
    assert.match((c as { reason: string }).reason, /^the CUDA provider could not open a session: .*(Cuda|CUDA|cuda)/);
  });
});
