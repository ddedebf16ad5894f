/**
 * The layer-level pieces of the export against TensorFlow.js: 'same' padding of Conv2DTranspose for kernels
 * smaller than, equal to and larger than the stride, Conv2D 'same' pads, the bias map of a constant input,
 * and the NHWC -> NCHW column permutation.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import ort from 'onnxruntime-node';
import { initBackend } from '../../../src/model/backend.js';
import type { ConvWeights } from '../../../src/model/onnx/decoder-weights.js';
import { constantInputResponse, nhwcToNchwColumns, onnxKernel, phaseConvs, sameConvAttributes, subPixelConv } from '../../../src/model/onnx/lowering.js';
import { OnnxGraphBuilder } from '../../../src/model/onnx/proto.js';
import { uniforms } from './helpers.js';

before(async () => {
  await initBackend();
});

function conv(k: number, s: number, cin: number, cout: number, seed: number): ConvWeights {
  return { kernel: uniforms(seed, k * k * cin * cout, -1, 1), bias: uniforms(seed + 1, cout, -1, 1), kernelSize: k, stride: s, inChannels: cin, outChannels: cout };
}

/** Runs one ONNX Conv/ConvTranspose with the exporter's pads on an NHWC input; returns NHWC. */
async function onnxLayer(c: ConvWeights, transpose: boolean, x: Float32Array, size: number): Promise<{ data: Float32Array; size: number }> {
  const g = new OnnxGraphBuilder();
  const input = g.input('x', 'float', [1, size, size, c.inChannels]);
  const nchw = g.node('Transpose', [input], { perm: { ints: [0, 3, 1, 2] } });
  const k = c.kernelSize;
  const W = g.floats('W', onnxKernel(c, transpose), transpose ? [c.inChannels, c.outChannels, k, k] : [c.outChannels, c.inChannels, k, k]);
  const b = g.floats('b', c.bias, [c.outChannels]);
  const { attrs, outSize } = sameConvAttributes(c, transpose, size);
  const y = g.node(transpose ? 'ConvTranspose' : 'Conv', [nchw, W, b], attrs);
  const out = g.node('Transpose', [y], { perm: { ints: [0, 2, 3, 1] } }, 'y');
  g.output(out, 'float', [1, outSize, outSize, c.outChannels]);
  const session = await ort.InferenceSession.create(g.encode({ opset: 13, graphName: 't', producer: 'test' }));
  const res = await session.run({ x: new ort.Tensor('float32', x, [1, size, size, c.inChannels]) });
  assert.deepEqual(res.y.dims, [1, outSize, outSize, c.outChannels]);
  return { data: res.y.data as Float32Array, size: outSize };
}

function tfLayer(c: ConvWeights, transpose: boolean, x: Float32Array, size: number): Float32Array {
  return tf.tidy(() => {
    const input = tf.tensor4d(x, [1, size, size, c.inChannels]);
    const k = c.kernelSize;
    if (transpose) {
      const w = tf.tensor4d(c.kernel, [k, k, c.outChannels, c.inChannels]);
      const y = tf.conv2dTranspose(input, w, [1, size * c.stride, size * c.stride, c.outChannels], c.stride, 'same');
      return tf.add(y, tf.tensor1d(c.bias)).dataSync() as Float32Array;
    }
    const w = tf.tensor4d(c.kernel, [k, k, c.inChannels, c.outChannels]);
    return tf.add(tf.conv2d(input, w, c.stride, 'same'), tf.tensor1d(c.bias)).dataSync() as Float32Array;
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('Conv2DTranspose with same padding: ONNX pads match TensorFlow for kernels 1-5 and strides 1-3', async () => {
  let seed = 1;
  for (const s of [1, 2, 3]) {
    for (const k of [1, 2, 3, 4, 5]) {
      const c = conv(k, s, 3, 2, seed++);
      const size = 5;
      const x = uniforms(seed++, size * size * 3, -1, 1);
      const got = await onnxLayer(c, true, x, size);
      assert.equal(got.size, size * s);
      const diff = maxAbsDiff(got.data, tfLayer(c, true, x, size));
      assert.ok(diff < 1e-5, `kernel ${k} stride ${s}: max abs difference ${diff}`);
    }
  }
});

test('Conv2D with same padding: ONNX pads match TensorFlow for odd and even kernels and sizes', async () => {
  let seed = 100;
  for (const [k, s, size] of [[3, 1, 6], [5, 1, 7], [4, 1, 6], [3, 2, 7], [5, 2, 8]]) {
    const c = conv(k, s, 2, 3, seed++);
    const x = uniforms(seed++, size * size * 2, -1, 1);
    const got = await onnxLayer(c, false, x, size);
    const diff = maxAbsDiff(got.data, tfLayer(c, false, x, size));
    assert.ok(diff < 1e-5, `kernel ${k} stride ${s} size ${size}: max abs difference ${diff}`);
  }
});

test('the bias map is the layer output for a constant input, borders and output phases included', () => {
  for (const [k, s, transpose] of [[5, 2, true], [3, 2, true], [3, 1, true], [5, 1, false]] as const) {
    const c = conv(k, s, 3, 2, 7 * k + s);
    const size = 4;
    const value = Float64Array.from([0.7, -1.3, 0.4]);
    const x = new Float32Array(size * size * 3).map((_, i) => value[i % 3]);
    const ref = tfLayer(c, transpose, x, size); // NHWC
    const map = constantInputResponse(c, transpose, value, size); // CHW
    const out = transpose ? size * s : size;
    const chw = new Float32Array(ref.length);
    for (let y = 0; y < out; y++) for (let xx = 0; xx < out; xx++) for (let ch = 0; ch < 2; ch++) chw[(ch * out + y) * out + xx] = ref[(y * out + xx) * 2 + ch];
    assert.ok(maxAbsDiff(map, chw) < 1e-5, `kernel ${k} stride ${s}`);
    assert.ok(new Set(Array.from(map.subarray(0, out * out), (v) => v.toFixed(5))).size > 1, 'the map varies with position');
  }
});

test('the column permutation turns an NHWC reshape into an NCHW one', () => {
  const [h, w, c] = [2, 3, 4];
  const perm = nhwcToNchwColumns(h, w, c);
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: h * w * c }, (_, i) => i));
  const nhwc = tf.tidy(() => tf.range(0, h * w * c).reshape([1, h, w, c]).transpose([0, 3, 1, 2]).dataSync());
  assert.deepEqual([...perm], [...nhwc]);
});

/** Runs a sub-pixel (one Conv) or per-phase (one Conv per phase + Concat) rewrite of a transpose, then DepthToSpace. */
async function onnxSubPixel(c: ConvWeights, x: Float32Array, size: number, perPhase: boolean): Promise<Float32Array | null> {
  const g = new OnnxGraphBuilder();
  const input = g.input('x', 'float', [1, size, size, c.inChannels]);
  const nchw = g.node('Transpose', [input], { perm: { ints: [0, 3, 1, 2] } });
  const s = c.stride;
  let phases: string;
  if (perPhase) {
    const convs = phaseConvs(c);
    if (!convs) return null;
    const b = g.floats('b', c.bias, [c.outChannels]);
    phases = g.node('Concat', convs.map((p, i) => g.node('Conv', [nchw, g.floats(`w${i}`, p.weights, [c.outChannels, c.inChannels, ...p.kernel]), b], { kernel_shape: { ints: p.kernel }, pads: { ints: p.pads } })), { axis: { int: 1 } });
  } else {
    const sp = subPixelConv(c);
    phases = g.node('Conv', [nchw, g.floats('w', sp.weights, [s * s * c.outChannels, c.inChannels, sp.kernel, sp.kernel]), g.floats('b', sp.bias, [s * s * c.outChannels])], {
      kernel_shape: { ints: [sp.kernel, sp.kernel] }, pads: { ints: [sp.padBefore, sp.padBefore, sp.padAfter, sp.padAfter] },
    });
  }
  const img = s > 1 ? g.node('DepthToSpace', [phases], { blocksize: { int: s }, mode: { string: 'DCR' } }) : phases;
  const out = g.node('Transpose', [img], { perm: { ints: [0, 2, 3, 1] } }, 'y');
  g.output(out, 'float', [1, size * s, size * s, c.outChannels]);
  const session = await ort.InferenceSession.create(g.encode({ opset: 13, graphName: 't', producer: 'test' }));
  const res = await session.run({ x: new ort.Tensor('float32', x, [1, size, size, c.inChannels]) });
  return res.y.data as Float32Array;
}

test('Conv2DTranspose rewritten as sub-pixel and per-phase convolutions matches TensorFlow', async () => {
  let seed = 300;
  let phased = 0;
  for (const s of [1, 2, 3]) {
    for (const k of [1, 2, 3, 4, 5]) {
      const c = conv(k, s, 3, 2, seed++);
      const size = 4;
      const x = uniforms(seed++, size * size * 3, -1, 1);
      const ref = tfLayer(c, true, x, size);
      const sub = await onnxSubPixel(c, x, size, false);
      assert.ok(sub && maxAbsDiff(sub, ref) < 1e-5, `sub-pixel kernel ${k} stride ${s}`);
      if (s > 1) {
        const per = await onnxSubPixel(c, x, size, true);
        if (per) {
          phased++;
          assert.ok(maxAbsDiff(per, ref) < 1e-5, `per-phase kernel ${k} stride ${s}`);
        } else {
          assert.ok(k < s, `only kernels smaller than the stride leave a phase without taps (kernel ${k} stride ${s})`);
        }
      }
    }
  }
  assert.ok(phased >= 7);
});
