/**
 * The wasm training kernels against the stock pure-JS 'cpu' kernels on random inputs: Conv2D gradients
 * (Conv2DBackpropInput, Conv2DBackpropFilter), Conv2DTranspose forward and gradients, depthwise gradients;
 * several strides, kernel sizes, paddings, non-square shapes, batch > 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { assertClose, runOn, seededTensor, useBackend } from './helpers.js';

const TOL = 1e-4;

type Pad = 'same' | 'valid';
interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  out: number;
  stride: number | [number, number];
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3], out: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3], out: 4, stride: 2, pad: 'same' },
  { x: [3, 9, 7, 2], k: [5, 5], out: 3, stride: 2, pad: 'same' },
  { x: [2, 9, 11, 4], k: [3, 5], out: 2, stride: [2, 3], pad: 'valid' },
  { x: [2, 10, 6, 3], k: [5, 3], out: 5, stride: 1, pad: 'valid' },
  { x: [2, 11, 11, 2], k: [3, 3], out: 3, stride: 3, pad: 'same' },
  { x: [2, 12, 10, 3], k: [1, 1], out: 4, stride: 2, pad: 'valid' },
  { x: [1, 7, 7, 5], k: [5, 5], out: 2, stride: 2, pad: 'valid' },
];

const name = (c: ConvCase) => `x ${c.x.join('x')}, kernel ${c.k.join('x')}, stride ${c.stride}, ${c.pad}`;

for (const [i, c] of CONV_CASES.entries()) {
  test(`conv2d gradients match the cpu backend (${name(c)})`, async () => {
    const run = () => {
      const x = seededTensor(c.x, 10 + i) as tf.Tensor4D;
      const w = seededTensor([...c.k, c.x[3], c.out], 20 + i) as tf.Tensor4D;
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const r = seededTensor(y.shape, 30 + i);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)),
      );
      return [y, ...g([x, w])];
    };
    const expected = await runOn('cpu', run);
    const actual = await runOn('wasm', run);
    assertClose(actual, expected, TOL, 'conv2d [y, dx, dw]');
  });

  test(`conv2dTranspose forward and gradients match the cpu backend (${name(c)})`, async () => {
    // The transpose of the convolution above: from its output shape back to c.x.
    const yShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros([...c.k, c.x[3], c.out]) as tf.Tensor4D, c.stride, c.pad).shape);
    const run = () => {
      const dy = seededTensor(yShape, 40 + i) as tf.Tensor4D;
      const w = seededTensor([...c.k, c.x[3], c.out], 50 + i) as tf.Tensor4D;
      const t = (a: tf.Tensor, b: tf.Tensor) => tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, c.x, c.stride, c.pad);
      const y = t(dy, w);
      const r = seededTensor(c.x, 60 + i);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(t(a, b), r)));
      return [y, ...g([dy, w])];
    };
    const expected = await runOn('cpu', run);
    const actual = await runOn('wasm', run);
    assertClose(actual, expected, TOL, 'conv2dTranspose [y, ddy, dw]');
  });
}

interface DepthwiseCase {
  x: [number, number, number, number];
  k: number;
  multiplier: number;
  stride: number;
  pad: Pad;
}

const DEPTHWISE_CASES: DepthwiseCase[] = [
  { x: [2, 16, 16, 3], k: 11, multiplier: 1, stride: 1, pad: 'valid' }, // SSIM's window
  { x: [2, 9, 7, 3], k: 3, multiplier: 1, stride: 2, pad: 'same' },
  { x: [2, 10, 8, 2], k: 5, multiplier: 2, stride: 1, pad: 'same' },
  { x: [3, 11, 9, 2], k: 3, multiplier: 3, stride: 2, pad: 'valid' },
];

for (const [i, c] of DEPTHWISE_CASES.entries()) {
  test(`depthwiseConv2d gradients match the cpu backend (x ${c.x.join('x')}, kernel ${c.k}, multiplier ${c.multiplier}, stride ${c.stride}, ${c.pad})`, async () => {
    const run = () => {
      const x = seededTensor(c.x, 70 + i) as tf.Tensor4D;
      const w = seededTensor([c.k, c.k, c.x[3], c.multiplier], 80 + i) as tf.Tensor4D;
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
      const y = f(x, w);
      const r = seededTensor(y.shape, 90 + i);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b), r)));
      return [y, ...g([x, w])];
    };
    const expected = await runOn('cpu', run);
    const actual = await runOn('wasm', run);
    assertClose(actual, expected, TOL, 'depthwise [y, dx, dw]');
  });
}

test('the training kernels free their intermediates (no tensor or wasm data left behind)', async () => {
  await useBackend('wasm');
  const x = seededTensor([2, 9, 7, 3], 1) as tf.Tensor4D;
  const w = seededTensor([3, 3, 3, 4], 2) as tf.Tensor4D;
  const k = seededTensor([5, 5, 3, 1], 3) as tf.Tensor4D;
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.add(
          tf.sum(tf.conv2dTranspose(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), b as tf.Tensor4D, [2, 9, 7, 3], 2, 'same')),
          tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, k, 1, 'valid')),
        ),
      )([x, w]);
      return g.map((t) => t.sum());
    });
  tf.dispose(step());
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors;
  const dataIds = backend.numDataIds();
  for (let i = 0; i < 5; i++) tf.dispose(step());
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), dataIds);
  tf.dispose([x, w, k]);
});
