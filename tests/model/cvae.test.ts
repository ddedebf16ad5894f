import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.js';
import { buildCvae } from '../../src/model/cvae.js';
import { cvaeLoss } from '../../src/model/loss.js';
import { getPreset } from '../../src/model/presets.js';

await initBackend();

const EXPECTED_PARAMS: Record<string, number> = {
  '128-image': 32_474_083,
  '128-text': 32_474_083,
  '128-image-nodropout': 32_474_083,
  '128-text-nodropout': 32_474_083,
  '64-image': 21_660_643,
  '64-text': 21_660_643,
};

for (const [name, count] of Object.entries(EXPECTED_PARAMS)) {
  test(`preset ${name} builds with exactly ${count} trainable parameters`, () => {
    const before = tf.memory().numTensors;
    const cvae = buildCvae(getPreset(name), { seed: 1 });
    try {
      assert.equal(cvae.trainableParams(), count);
      // BatchNorm moving statistics exist but are not trainable.
      const all = cvae.encoder.countParams() + cvae.decoder.countParams();
      assert.ok(all > count);
      assert.equal(cvae.encoder.outputs[0].shape[1], 128);
      assert.deepEqual(cvae.decoder.outputs[0].shape, [null, getPreset(name).resolution, getPreset(name).resolution, 3]);
    } finally {
      cvae.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'dispose frees every weight');
  });
}

test('the demo preset stays small enough for a CPU', () => {
  const cvae = buildCvae(getPreset('demo'), { seed: 1 });
  assert.ok(cvae.trainableParams() < 1_500_000, `demo has ${cvae.trainableParams()} parameters`);
  cvae.dispose();
});

test('the architecture follows the description: layer order, activations, biases, condition layer', () => {
  const cvae = buildCvae(getPreset('tiny'), { seed: 1 });
  const enc = cvae.encoder.layers.map((l) => l.getClassName());
  assert.deepEqual(enc.slice(0, 7), ['InputLayer', 'Conv2D', 'LeakyReLU', 'BatchNormalization', 'Conv2D', 'LeakyReLU', 'BatchNormalization']);
  const dec = cvae.decoder.layers;
  const cond = dec.find((l) => l.name === 'condition');
  assert.ok(cond);
  const condCfg = cond.getConfig();
  assert.equal(condCfg.activation, 'linear');
  assert.equal(condCfg.units, getPreset('tiny').condDim);
  const out = dec.at(-1)!.getConfig();
  assert.equal(out.activation, 'sigmoid');
  assert.equal(out.filters, 3);
  for (const l of [...cvae.encoder.layers, ...dec]) {
    const cls = l.getClassName();
    if (['Conv2D', 'Conv2DTranspose', 'Dense'].includes(cls)) assert.equal(l.getConfig().useBias, true, l.name);
    if (cls === 'LeakyReLU') assert.ok(Math.abs((l.getConfig().alpha as number) - 0.3) < 1e-6);
  }
  cvae.dispose();
});

test('the same seed builds the same weights; another seed builds other weights', () => {
  const a = buildCvae(getPreset('tiny'), { seed: 5 });
  const b = buildCvae(getPreset('tiny'), { seed: 5 });
  const c = buildCvae(getPreset('tiny'), { seed: 6 });
  const wa = a.trainableWeights().map((w) => Array.from(w.dataSync()));
  const wb = b.trainableWeights().map((w) => Array.from(w.dataSync()));
  const wc = c.trainableWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(wa, wb);
  assert.notDeepEqual(wa[0], wc[0]);
  // He normal: kernel std close to sqrt(2 / fanIn) for the first dense layer (fan-in 128 + 512).
  const dense = a.encoder.getLayer('enc_dense1').getWeights()[0].dataSync() as Float32Array;
  const std = Math.sqrt(dense.reduce((s, v) => s + v * v, 0) / dense.length);
  const expected = Math.sqrt(2 / (4 * 4 * 8 + 512));
  assert.ok(std > expected * 0.75 && std < expected * 1.1, `std ${std} vs ${expected}`);
  [a, b, c].forEach((m) => m.dispose());
});

function batch(n: number, res: number, seed: number) {
  const x = tf.randomUniform([n, res, res, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
  const e = tf.randomNormal([n, 512], 0, 1, 'float32', seed + 1);
  const emb = tf.div(e, tf.norm(e, 'euclidean', 1, true)) as tf.Tensor2D;
  e.dispose();
  return { x, emb };
}

test('forward gives shapes, [0,1] outputs, and is reproducible with a seed', () => {
  const p = getPreset('tiny');
  const cvae = buildCvae(p, { seed: 2 });
  const { x, emb } = batch(3, p.resolution, 1);
  const a = cvae.forward(x, emb, { training: false, seed: 9 });
  const b = cvae.forward(x, emb, { training: false, seed: 9 });
  const c = cvae.forward(x, emb, { training: false, seed: 10 });
  assert.deepEqual(a.xHat.shape, [3, 16, 16, 3]);
  assert.deepEqual(a.mu.shape, [3, p.latentDim]);
  assert.deepEqual(a.logvar.shape, [3, p.latentDim]);
  const v = a.xHat.dataSync();
  assert.ok(v.every((e) => e >= 0 && e <= 1));
  assert.deepEqual(Array.from(v), Array.from(b.xHat.dataSync()));
  assert.notDeepEqual(Array.from(v), Array.from(c.xHat.dataSync()));
  // mu and logvar do not depend on eps.
  assert.deepEqual(Array.from(a.mu.dataSync()), Array.from(c.mu.dataSync()));
  // decode in inference mode equals the decoder applied to z.
  const z = tf.zeros([3, p.latentDim]) as tf.Tensor2D;
  const d = cvae.decode(z, emb);
  assert.deepEqual(d.shape, [3, 16, 16, 3]);
  tf.dispose([x, emb, a, b, c, z, d]);
  cvae.dispose();
});

test('dropout on z acts only in training, with the preset rate', () => {
  const p = { ...getPreset('tiny'), dropout: 0.5 };
  const withDrop = buildCvae(p, { seed: 2 });
  const noDrop = buildCvae({ ...p, dropout: 0 }, { seed: 2 });
  const { x, emb } = batch(4, p.resolution, 3);
  // Inference (before any training pass changes BatchNorm statistics): dropout is off.
  const i1 = withDrop.forward(x, emb, { training: false, seed: 1 });
  const i2 = noDrop.forward(x, emb, { training: false, seed: 1 });
  assert.deepEqual(Array.from(i1.xHat.dataSync()), Array.from(i2.xHat.dataSync()), 'no dropout at inference');
  // Training: dropout changes the output; the same seed reproduces it.
  const t1 = withDrop.forward(x, emb, { training: true, seed: 1 });
  const t2 = withDrop.forward(x, emb, { training: true, seed: 1 });
  const t3 = noDrop.forward(x, emb, { training: true, seed: 1 });
  assert.deepEqual(Array.from(t1.xHat.dataSync()), Array.from(t2.xHat.dataSync()), 'training pass with a seed is reproducible');
  assert.notDeepEqual(Array.from(t1.xHat.dataSync()), Array.from(t3.xHat.dataSync()), 'dropout acts in training');
  tf.dispose([x, emb, t1, t2, t3, i1, i2]);
  withDrop.dispose();
  noDrop.dispose();
});

test('100 training steps (forward, loss, gradients, Adam) change the weights, reduce the loss and leak no tensors', () => {
  const p = getPreset('tiny');
  const cvae = buildCvae(p, { seed: 3 });
  const { x, emb } = batch(2, p.resolution, 11);
  const optimizer = tf.train.adam(p.train.learningRate);
  const vars = cvae.trainableWeights();
  // Measured in training mode (batch statistics, fixed noise): after 100 steps on a batch of 2 the BatchNorm
  // moving averages still lag, so an inference-mode comparison hangs on float rounding and is not a measure of
  // what the steps learned.
  const lossAt = () =>
    tf.tidy(() => {
      const out = cvae.forward(x, emb, { training: true, seed: 0 });
      return cvaeLoss(x, out.xHat, out.mu, out.logvar).total.dataSync()[0];
    });
  const first = lossAt();
  const step = (i: number) => {
    const cost = optimizer.minimize(
      () => {
        const out = cvae.forward(x, emb, { training: true, seed: i });
        return cvaeLoss(x, out.xHat, out.mu, out.logvar).total;
      },
      true,
      vars,
    );
    const v = cost!.dataSync()[0];
    cost!.dispose();
    return v;
  };
  step(0); // creates the optimizer's moment variables
  const before = tf.memory().numTensors;
  let last = 0;
  for (let i = 1; i <= 100; i++) {
    last = step(i);
    assert.ok(Number.isFinite(last));
  }
  assert.equal(tf.memory().numTensors, before, 'training steps leak tensors');
  const after = lossAt();
  assert.ok(after < first, `loss did not fall: ${first} -> ${after} (last step ${last})`);
  tf.dispose([x, emb]);
  optimizer.dispose();
  cvae.dispose();
});
