/**
 * The decoder engine choice as a table over the detected capabilities (no GPU here: the capabilities are
 * given), the fallback when the chosen engine cannot open a checkpoint, and the /healthz wording.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseDecoderEngine, currentDecoderEngine, decoderEngineCandidates, decoderEngineHealth, fallbackDecoderEngine, recordDecoderEngine, resetDecoderEngine,
  type Capability, type DecoderCapabilities, type SamplerEngine,
} from '../../src/model/decoder-engine.js';

const yes = (detail: string): Capability => ({ available: true, detail });
const no = (reason: string): Capability => ({ available: false, reason });

const TFJS_GPU = yes('@tensorflow/tfjs-node-gpu on a CUDA device');
const TFJS_CPU = no('the TensorFlow.js backend is @tensorflow/tfjs-node (tensorflow) without a GPU');
const ORT_CUDA = yes('onnxruntime-node 1.31.1, CUDA execution provider');
const ORT_NO_CUDA = no('onnxruntime-node was installed without its CUDA provider');

describe('chooseDecoderEngine', () => {
  const table: { requested: SamplerEngine; caps: DecoderCapabilities; want: [string, string, string | null] }[] = [
    // auto: TensorFlow.js on a GPU first, then ONNX Runtime on CUDA, then ONNX Runtime on the CPU.
    { requested: 'auto', caps: { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }, want: ['tfjs', 'gpu', null] },
    { requested: 'auto', caps: { tfjsGpu: TFJS_GPU, onnxCuda: ORT_NO_CUDA }, want: ['tfjs', 'gpu', null] },
    { requested: 'auto', caps: { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA }, want: ['onnx', 'gpu', 'cuda'] },
    { requested: 'auto', caps: { tfjsGpu: TFJS_CPU, onnxCuda: ORT_NO_CUDA }, want: ['onnx', 'cpu', 'cpu'] },
    // onnx: ONNX Runtime whatever TensorFlow.js has; CUDA where it works.
    { requested: 'onnx', caps: { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }, want: ['onnx', 'gpu', 'cuda'] },
    { requested: 'onnx', caps: { tfjsGpu: TFJS_GPU, onnxCuda: ORT_NO_CUDA }, want: ['onnx', 'cpu', 'cpu'] },
    { requested: 'onnx', caps: { tfjsGpu: no('not probed (SAMPLER_ENGINE=onnx)'), onnxCuda: ORT_NO_CUDA }, want: ['onnx', 'cpu', 'cpu'] },
    // tfjs: TensorFlow.js whatever ONNX Runtime has; its device is the backend's.
    { requested: 'tfjs', caps: { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }, want: ['tfjs', 'gpu', null] },
    { requested: 'tfjs', caps: { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA }, want: ['tfjs', 'cpu', null] },
  ];
  for (const { requested, caps, want } of table) {
    const label = `${requested}, tfjs ${caps.tfjsGpu.available ? 'GPU' : 'no GPU'}, onnx ${caps.onnxCuda.available ? 'CUDA' : 'no CUDA'}`;
    it(`${label} → ${want[0]} on ${want[1]}`, () => {
      const c = chooseDecoderEngine(requested, caps);
      assert.deepEqual([c.engine, c.device, c.executionProvider], want);
      assert.equal(c.requested, requested);
    });
  }

  it('says why, with what was found and what was missing', () => {
    const cpu = chooseDecoderEngine('auto', { tfjsGpu: no('@tensorflow/tfjs-node-gpu is not installed'), onnxCuda: ORT_NO_CUDA });
    assert.match(cpu.reason, /no GPU found/);
    assert.match(cpu.reason, /tfjs-node-gpu is not installed/);
    assert.match(cpu.reason, /installed without its CUDA provider/);
    const cuda = chooseDecoderEngine('auto', { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA });
    assert.match(cuda.reason, /CUDA provider \(onnxruntime-node 1\.31\.1/);
    assert.match(cuda.reason, /TensorFlow.js has none/);
    assert.match(chooseDecoderEngine('auto', { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }).reason, /tfjs-node-gpu on a CUDA device/);
    assert.match(chooseDecoderEngine('tfjs', { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA }).reason, /^SAMPLER_ENGINE=tfjs; TensorFlow.js on the CPU/);
  });
});

describe('fallbackDecoderEngine', () => {
  const caps: DecoderCapabilities = { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA };

  it('falls from ONNX on CUDA to ONNX on the CPU, for auto and onnx alike', () => {
    for (const requested of ['auto', 'onnx'] as const) {
      const next = fallbackDecoderEngine(chooseDecoderEngine(requested, caps), caps, 'CUDA out of memory');
      assert.deepEqual([next?.engine, next?.device, next?.executionProvider, next?.requested], ['onnx', 'cpu', 'cpu', requested]);
      assert.match(next!.reason, /CUDA could not open the decoder \(CUDA out of memory\)/);
    }
  });

  it('falls from ONNX on the CPU to TensorFlow.js only for auto', () => {
    const cpuCaps: DecoderCapabilities = { tfjsGpu: TFJS_CPU, onnxCuda: ORT_NO_CUDA };
    const next = fallbackDecoderEngine(chooseDecoderEngine('auto', cpuCaps), cpuCaps, 'protobuf parsing failed');
    assert.deepEqual([next?.engine, next?.device, next?.executionProvider], ['tfjs', 'cpu', null]);
    assert.match(next!.reason, /protobuf parsing failed/);
    assert.equal(fallbackDecoderEngine(chooseDecoderEngine('onnx', cpuCaps), cpuCaps, 'x'), null, 'onnx fails instead of falling back');
    assert.equal(fallbackDecoderEngine(next!, cpuCaps, 'x'), null, 'nothing after TensorFlow.js');
    assert.equal(fallbackDecoderEngine(chooseDecoderEngine('tfjs', cpuCaps), cpuCaps, 'x'), null);
  });
});

describe('decoderEngineCandidates', () => {
  const names = (requested: SamplerEngine, caps: DecoderCapabilities) =>
    decoderEngineCandidates(requested, caps).map((c) => `${c.engine}/${c.executionProvider ?? c.device}`);

  it('lists what auto tries, best first, TensorFlow.js once', () => {
    assert.deepEqual(names('auto', { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }), ['tfjs/gpu', 'onnx/cuda', 'onnx/cpu']);
    assert.deepEqual(names('auto', { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA }), ['onnx/cuda', 'onnx/cpu', 'tfjs/cpu']);
    assert.deepEqual(names('auto', { tfjsGpu: TFJS_CPU, onnxCuda: ORT_NO_CUDA }), ['onnx/cpu', 'tfjs/cpu']);
    assert.deepEqual(names('onnx', { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }), ['onnx/cuda', 'onnx/cpu']);
    assert.deepEqual(names('tfjs', { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA }), ['tfjs/gpu']);
  });

  it('a failing TensorFlow.js on the GPU falls back to ONNX Runtime, and the chain ends', () => {
    const caps: DecoderCapabilities = { tfjsGpu: TFJS_GPU, onnxCuda: ORT_NO_CUDA };
    const first = chooseDecoderEngine('auto', caps);
    const next = fallbackDecoderEngine(first, caps, 'CUDA_ERROR_OUT_OF_MEMORY');
    assert.deepEqual([next?.engine, next?.device], ['onnx', 'cpu']);
    assert.equal(next?.reason, 'TensorFlow.js on the GPU could not open the decoder (CUDA_ERROR_OUT_OF_MEMORY); ONNX Runtime on the CPU instead');
    assert.equal(fallbackDecoderEngine(next!, caps, 'x'), null, 'TensorFlow.js is not tried twice');
  });
});

describe('the recorded choice and its /healthz check', () => {
  it('reports nothing loaded, then the engine, device, provider and reason of the last load', () => {
    resetDecoderEngine();
    assert.equal(currentDecoderEngine(), null);
    assert.deepEqual(decoderEngineHealth(), { ok: true, detail: 'no decoder loaded in this process yet' });
    const choice = chooseDecoderEngine('auto', { tfjsGpu: TFJS_CPU, onnxCuda: ORT_CUDA });
    recordDecoderEngine(choice);
    assert.equal(currentDecoderEngine(), choice);
    const h = decoderEngineHealth();
    assert.equal(h.ok, true);
    assert.match(h.detail, /^onnx on gpu \(cuda execution provider\): a GPU through ONNX Runtime's CUDA provider/);
    assert.match(decoderEngineHealth(chooseDecoderEngine('auto', { tfjsGpu: TFJS_GPU, onnxCuda: ORT_CUDA })).detail, /^tfjs on gpu: /);
    resetDecoderEngine();
  });
});
