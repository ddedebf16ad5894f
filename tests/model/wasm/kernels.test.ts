/**
 * The wasm training kernels against the stock pure-JS 'cpu' kernels on random inputs: Conv2D gradients
 * (Conv2DBackpropInput, Conv2DBackpropFilter), Conv2DTranspose forward and gradients, depthwise gradients;
 * several strides, kernel sizes, paddings, non-square shapes, batch > 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { separateFilter } from '../../../src/model/wasm/depthwise-separable.js';
import { tileInto } from '../../../src/model/wasm/tile.js';
import { assertClose, runOn, seeded, seededTensor, useBackend } from './helpers.js';

const TOL = 1e-4;

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
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
  // The last row and column are not reached by any window: their input gradient is zero.
  { x: [2, 10, 8, 3], k: [3, 3], out: 3, stride: 2, pad: 'valid' },
  // Explicit padding wider than the kernel: some sub-pixel phases start past dy's first row.
  { x: [2, 6, 7, 2], k: [3, 3], out: 3, stride: 2, pad: [[0, 0], [3, 1], [0, 4], [0, 0]] },
];

const name = (c: ConvCase) => `x ${c.x.join('x')}, kernel ${c.k.join('x')}, stride ${c.stride}, ${JSON.stringify(c.pad)}`;

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
  /** A per-channel Gaussian window (separable: runs the two-pass path) instead of random weights. */
  gaussian?: boolean;
}

/** A normalised Gaussian window [k, k, channels, 1] with a different sigma per channel. */
function gaussianWindow(k: number, channels: number): tf.Tensor4D {
  const values = new Float32Array(k * k * channels);
  for (let c = 0; c < channels; c++) {
    const sigma = 1 + 0.5 * c;
    const g = Array.from({ length: k }, (_, i) => Math.exp(-((i - (k - 1) / 2) ** 2) / (2 * sigma ** 2)));
    const total = g.reduce((a, b) => a + b, 0) ** 2;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) values[(a * k + b) * channels + c] = (g[a] * g[b]) / total;
  }
  return tf.tensor4d(values, [k, k, channels, 1]);
}

const DEPTHWISE_CASES: DepthwiseCase[] = [
  { x: [2, 16, 16, 3], k: 11, multiplier: 1, stride: 1, pad: 'valid' }, // SSIM's window
  { x: [2, 9, 7, 3], k: 3, multiplier: 1, stride: 2, pad: 'same' },
  { x: [2, 10, 8, 2], k: 5, multiplier: 2, stride: 1, pad: 'same' },
  { x: [3, 11, 9, 2], k: 3, multiplier: 3, stride: 2, pad: 'valid' },
  { x: [2, 16, 14, 3], k: 11, multiplier: 1, stride: 1, pad: 'valid', gaussian: true }, // SSIM exactly
  { x: [2, 13, 9, 2], k: 7, multiplier: 1, stride: 2, pad: 'same', gaussian: true },
  { x: [1, 9, 12, 3], k: 7, multiplier: 1, stride: 1, pad: 'same', gaussian: true },
];

for (const [i, c] of DEPTHWISE_CASES.entries()) {
  test(`depthwiseConv2d gradients match the cpu backend (x ${c.x.join('x')}, ${c.gaussian ? 'Gaussian ' : ''}kernel ${c.k}, multiplier ${c.multiplier}, stride ${c.stride}, ${c.pad})`, async () => {
    const run = () => {
      const x = seededTensor(c.x, 70 + i) as tf.Tensor4D;
      const w = c.gaussian ? gaussianWindow(c.k, c.x[3]) : (seededTensor([c.k, c.k, c.x[3], c.multiplier], 80 + i) as tf.Tensor4D);
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

test('separateFilter factors Gaussian windows and refuses windows that are not rank one', async () => {
  await useBackend('cpu');
  const w = gaussianWindow(11, 3);
  const values = w.dataSync() as Float32Array;
  const f = separateFilter(values, 11, 11, 3);
  assert.ok(f, 'a Gaussian window is separable');
  let worst = 0;
  for (let a = 0; a < 11; a++) {
    for (let b = 0; b < 11; b++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(f.u[a * 3 + c] * f.v[b * 3 + c] - values[(a * 11 + b) * 3 + c]));
    }
  }
  const max = Math.max(...values);
  assert.ok(worst < 1e-6 * max, `u·vᵀ reproduces the window (max error ${worst} of ${max})`);
  assert.equal(separateFilter(seeded(11 * 11 * 3, 4), 11, 11, 3), null);
  const almost = values.slice();
  almost[5 * 33 + 3 * 3 + 1] += 1e-3;
  assert.equal(separateFilter(almost, 11, 11, 3), null, 'one perturbed tap breaks separability');
  w.dispose();
});

const TILE_CASES: { shape: number[]; reps: number[]; dtype: 'float32' | 'int32' }[] = [
  { shape: [1, 1, 1, 5], reps: [2, 3, 4, 1], dtype: 'float32' },
  { shape: [2, 3], reps: [3, 2], dtype: 'float32' },
  { shape: [4], reps: [3], dtype: 'int32' },
  { shape: [2, 1, 3], reps: [1, 4, 2], dtype: 'int32' },
  { shape: [3, 2, 2, 2], reps: [1, 1, 1, 1], dtype: 'float32' },
];

for (const c of TILE_CASES) {
  test(`tile matches the cpu backend (${c.dtype} ${c.shape.join('x')} by ${c.reps.join('x')})`, async () => {
    const run = () => {
      const x = tf.cast(tf.mul(seededTensor(c.shape, 7), 100), c.dtype);
      return [tf.cast(tf.tile(x, c.reps), 'float32')];
    };
    const expected = await runOn('cpu', run);
    const actual = await runOn('wasm', run);
    assert.deepEqual(Array.from(actual[0]), Array.from(expected[0]));
  });
}

test('tileInto handles scalars and leaves nothing unwritten', () => {
  const dst = new Float32Array(1);
  tileInto(new Float32Array([3]), [], [], dst);
  assert.deepEqual([...dst], [3]);
  const out = new Float32Array(12).fill(NaN);
  tileInto(new Float32Array([1, 2]), [1, 2], [3, 2], out);
  assert.deepEqual([...out], [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
});

for (const [ta, tb] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const) {
  test(`matMul and fused matMul match the cpu backend (transposeA ${ta}, transposeB ${tb}), with their gradients`, async () => {
    const run = () => {
      const a = seededTensor(ta ? [7, 5] : [5, 7], 11);
      const b = seededTensor(tb ? [9, 7] : [7, 9], 12);
      const a3 = seededTensor(ta ? [3, 7, 4] : [3, 4, 7], 13);
      const b3 = seededTensor(tb ? [3, 6, 7] : [3, 7, 6], 14);
      const bias = seededTensor([9], 15);
      const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb);
      const fused = (x: tf.Tensor, y: tf.Tensor) =>
        tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation: 'relu' });
      const r = seededTensor([5, 9], 16);
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(fused(x, y), r)));
      return [mm(a, b), mm(a3, b3), fused(a, b), ...g([a, b])];
    };
    const expected = await runOn('cpu', run);
    const actual = await runOn('wasm', run);
    assertClose(actual, expected, TOL, 'matMul [2-D, batched, fused, da, db]');
  });
}

test('the training kernels free their intermediates (no tensor or wasm data left behind)', async () => {
  await useBackend('wasm');
  const x = seededTensor([2, 9, 7, 3], 1) as tf.Tensor4D;
  const w = seededTensor([3, 3, 3, 4], 2) as tf.Tensor4D;
  const k = seededTensor([5, 5, 3, 1], 3) as tf.Tensor4D;
  const gauss = gaussianWindow(7, 3);
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.add(
          tf.sum(tf.conv2dTranspose(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), b as tf.Tensor4D, [2, 9, 7, 3], 2, 'same')),
          tf.add(
            tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, k, 1, 'valid')),
            tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, gauss, 1, 'same')),
          ),
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
  tf.dispose([x, w, k, gauss]);
});

test('a wasm allocation that does not fit fails with an actionable error instead of address 0', async () => {
  const { guardMalloc } = await import('../../../src/model/wasm/setup.js');
  const { UserError } = await import('../../../src/errors.js');
  const sizes: number[] = [];
  const raw = (n: number) => (sizes.push(n), n > 1000 || n === 0 ? 0 : 64);
  // Like Emscripten's lazy export: the first call swaps in the raw function.
  const fake = {
    wasm: {
      _malloc(n: number): number {
        fake.wasm._malloc = raw;
        return raw(n);
      },
    },
  };
  guardMalloc(fake);
  guardMalloc(fake); // idempotent: wrapped once
  assert.equal(fake.wasm._malloc(16), 64);
  assert.equal(fake.wasm._malloc(0), 0, 'empty tensors may sit at 0');
  assert.throws(() => fake.wasm._malloc(4096), (e: unknown) => e instanceof UserError && /ran out of memory.*batch size/s.test(e.message));
  assert.throws(() => fake.wasm._malloc(2 ** 32 + 4), UserError, 'sizes that would wrap around to a small number');
  assert.deepEqual(sizes, [16, 0, 4096], 'the real malloc is not asked for 4 GiB or more');
  // The real backend is guarded too (a size that would wrap around is refused before malloc runs).
  await useBackend('wasm');
  const real = (tf.backend() as unknown as { wasm: { _malloc(n: number): number } }).wasm;
  assert.throws(() => real._malloc(2 ** 32 + 4), UserError);
  const t = tf.ones([4]);
  assert.deepEqual(Array.from(t.dataSync()), [1, 1, 1, 1]);
  t.dispose();
});
