/**
 * Manual check (not a unit test): one training step — forward, loss, gradients, Adam update — of the full
 * 128 px preset at batch 2 on whatever backend `initBackend()` picks. On the pure-JS cpu backend this takes
 * minutes (naive convolution gradients); with tfjs-node it takes seconds.
 *
 *   npx tsx bench/train-step-128.ts [PRESET] [BATCH]     (defaults: 128-image 2)
 *
 * Prints one JSON line per measurement on stdout.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend.js';
import { buildCvae } from '../src/model/cvae.js';
import { cvaeLoss } from '../src/model/loss.js';
import { getPreset } from '../src/model/presets.js';
import { positionalArgsOrExit } from '../src/util/script-args.js';

const args = positionalArgsOrExit('Usage: npx tsx bench/train-step-128.ts [PRESET] [BATCH]   (defaults: 128-image 2)', 2);
const presetName = args[0] ?? '128-image';
const batchSize = Number(args[1] ?? 2);

function report(name: string, ms: number, extra: Record<string, unknown> = {}) {
  process.stdout.write(
    `${JSON.stringify({ bench: name, ms: Math.round(ms), preset: presetName, batchSize, backend: tf.getBackend(), cpus: os.cpus().length, load: os.loadavg()[0].toFixed(1), ...extra })}\n`,
  );
}

const backend = await initBackend();
const preset = getPreset(presetName);
let t = performance.now();
const cvae = buildCvae(preset, { seed: 1 });
report('build', performance.now() - t, { trainableParams: cvae.trainableParams(), gpu: backend.gpu });

const r = preset.resolution;
const x = tf.randomUniform([batchSize, r, r, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const e = tf.randomNormal([batchSize, preset.embeddingDim], 0, 1, 'float32', 2);
const emb = tf.div(e, tf.norm(e, 'euclidean', 1, true)) as tf.Tensor2D;
e.dispose();

t = performance.now();
const lossBefore = tf.tidy(() => {
  const out = cvae.forward(x, emb, { training: false, seed: 0 });
  return cvaeLoss(x, out.xHat, out.mu, out.logvar).total.dataSync()[0];
});
report('forward + loss (inference mode)', performance.now() - t, { loss: lossBefore });

const optimizer = tf.train.adam(preset.train.learningRate);
const vars = cvae.trainableWeights();
const tensorsBefore = tf.memory().numTensors;
t = performance.now();
const cost = optimizer.minimize(
  () => {
    const out = cvae.forward(x, emb, { training: true, seed: 1 });
    return cvaeLoss(x, out.xHat, out.mu, out.logvar).total;
  },
  true,
  vars,
);
const stepLoss = cost!.dataSync()[0];
cost!.dispose();
const stepMs = performance.now() - t;
const finite = vars.every((v) => tf.tidy(() => tf.all(tf.isFinite(v)).dataSync()[0] === 1));
report('training step (forward, loss, gradients, Adam)', stepMs, {
  loss: stepLoss,
  weightsFinite: finite,
  // The first step creates Adam's two moment variables per weight.
  newTensors: tf.memory().numTensors - tensorsBefore,
  optimizerMoments: 2 * vars.length,
});
tf.dispose([x, emb]);
optimizer.dispose();
cvae.dispose();
