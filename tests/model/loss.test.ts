import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { bceSum, cvaeLoss, klSum, ssim } from '../../src/model/loss.js';

interface LossCase {
  seed: number;
  x_nhwc: number[][][][];
  xhat_nhwc: number[][][][];
  mu: number[][];
  logvar: number[][];
  ssim_per_image: number[];
  bce_sum_per_image: number[];
  kl_sum_per_image: number[];
  loss_batch_mean: number;
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/loss-vectors.json', import.meta.url), 'utf8'),
) as { note: string; cases: LossCase[] };

await initBackend();

/** |a - e| <= rel * max(1, |e|), element-wise. */
function assertClose(actual: ArrayLike<number>, expected: number[], rel: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

test('fixture has the cases the loss is checked against', () => {
  assert.ok(fixture.cases.length >= 2);
});

for (const c of fixture.cases) {
  test(`loss terms match the float64 PyTorch reference (case seed ${c.seed})`, () => {
    tf.tidy(() => {
      const x = tf.tensor4d(c.x_nhwc);
      const xHat = tf.tensor4d(c.xhat_nhwc);
      const mu = tf.tensor2d(c.mu);
      const logvar = tf.tensor2d(c.logvar);
      assertClose(ssim(x, xHat).dataSync(), c.ssim_per_image, 1e-5, 'ssim');
      assertClose(bceSum(x, xHat).dataSync(), c.bce_sum_per_image, 1e-5, 'bce');
      assertClose(klSum(mu, logvar).dataSync(), c.kl_sum_per_image, 1e-5, 'kl');
      const loss = cvaeLoss(x, xHat, mu, logvar);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      assertClose([loss.total.dataSync()[0]], [c.loss_batch_mean], 1e-5, 'total');
      assertClose([loss.bce.dataSync()[0]], [mean(c.bce_sum_per_image)], 1e-5, 'bce mean');
      assertClose([loss.kl.dataSync()[0]], [mean(c.kl_sum_per_image)], 1e-5, 'kl mean');
      assertClose([loss.ssim.dataSync()[0]], [mean(c.ssim_per_image)], 1e-5, 'ssim mean');
    });
  });
}

test('SSIM of an image with itself is 1, and lower for a different image', () => {
  tf.tidy(() => {
    const x = tf.randomUniform([2, 16, 12, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    assertClose(ssim(x, x).dataSync(), [1, 1], 1e-5, 'ssim(x, x)');
    const y = tf.randomUniform([2, 16, 12, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    for (const v of ssim(x, y).dataSync()) assert.ok(v < 0.5, `ssim of unrelated noise should be low, got ${v}`);
  });
});

test('SSIM rejects images smaller than its window', () => {
  const x = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
  assert.throws(() => ssim(x, x), /at least 11x11/);
  x.dispose();
});

test('BCE clips predictions of exactly 0 and 1 so the loss stays finite', () => {
  tf.tidy(() => {
    const x = tf.tensor4d([0, 1, 0.5, 0.5], [1, 2, 2, 1]);
    const xHat = tf.tensor4d([1, 0, 0, 1], [1, 2, 2, 1]);
    const v = bceSum(x, xHat).dataSync()[0];
    assert.ok(Number.isFinite(v) && v > 40, `expected a large finite loss, got ${v}`);
  });
});

test('the loss has finite gradients with respect to the reconstruction and the latent statistics', () => {
  const c = fixture.cases[0];
  tf.tidy(() => {
    const x = tf.tensor4d(c.x_nhwc);
    const xHat = tf.tensor4d(c.xhat_nhwc);
    const mu = tf.tensor2d(c.mu);
    const logvar = tf.tensor2d(c.logvar);
    const grads = tf.grads((a: tf.Tensor, m: tf.Tensor, l: tf.Tensor) =>
      cvaeLoss(x, a as tf.Tensor4D, m as tf.Tensor2D, l as tf.Tensor2D).total,
    )([xHat, mu, logvar]);
    for (const g of grads) {
      const v = g.dataSync();
      assert.ok(v.every(Number.isFinite), 'gradient has non-finite values');
      assert.ok(v.some((e) => e !== 0), 'gradient is all zero');
    }
    // The SSIM term alone is differentiable too.
    const gs = tf.grad((a: tf.Tensor) => tf.mean(ssim(x, a as tf.Tensor4D)))(xHat).dataSync();
    assert.ok(gs.every(Number.isFinite) && gs.some((e) => e !== 0));
    // KL gradient in closed form: d/dmu = mu / N (batch mean, weight 0.5 * 2 * mu / 2).
    const gmu = grads[1].dataSync();
    const n = c.mu.length;
    const flatMu = c.mu.flat();
    assertClose(gmu, flatMu.map((m) => (0.5 * m) / n), 1e-5, 'dL/dmu');
  });
});
