/**
 * How well can anything read a prompt's sky and ground out of its CLIP text embedding? (a script, not a test)
 *
 *   npx tsx scripts/embedding-probe.ts [--clip-model tests/fixtures/tiny-clip] [--synth-seed 1 --synth-count 4000]
 *                                      [--prompts 120 --prompt-seed 7] [--presentations 43104,172416] [--seed 1]
 *
 * The quality check asks a decoder to draw the right sky and ground for held-out prompts. This script measures
 * the ceiling its conditioning input sets: it embeds the captions of the synthetic training set (rebuilt from
 * its seed, as the quality check does) and the same held-out prompts, whitens the embeddings like
 * `demo:train`, and reports on the held-out prompts
 *  - the nearest training caption's sky and ground (1-NN, cosine), and
 *  - a classifier trained directly on (caption embedding → sky × ground) — a LeakyReLU MLP with one hidden
 *    layer, Adam, batch 16 — after each number of training presentations given (default: as many captions
 *    as the demo recipe's 12 epochs show the decoder, and four times that).
 * A decoder that learns colours from pixels sees no more captions than that and gets a noisier signal, so the
 * classifier's figure is a practical upper bound for the demo's colour match.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { initBackend } from '../src/model/backend.js';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { repoRoot } from '../src/paths.js';
import { GROUND_KINDS, SKY_KINDS, heldOutPrompts, kindsMentioned, synthItem, type HeldOutPrompt } from '../src/training/data/synth/index.js';
import { fitWhitening, whiten } from './embedding-whitening.js';

/** Sky and ground accuracy over held-out prompts. */
export interface ProbeScore {
  sky: number;
  ground: number;
  both: number;
}

/** The joint class of a sky and ground (16 classes). */
export function jointClass(sky: string, ground: string): number {
  return SKY_KINDS.indexOf(sky as (typeof SKY_KINDS)[number]) * GROUND_KINDS.length + GROUND_KINDS.indexOf(ground as (typeof GROUND_KINDS)[number]);
}

/** Scores predicted joint classes against the prompts' kinds. */
export function scoreJoint(predicted: ArrayLike<number>, prompts: readonly HeldOutPrompt[]): ProbeScore {
  let sky = 0;
  let ground = 0;
  let both = 0;
  prompts.forEach((p, i) => {
    const want = jointClass(p.sky, p.ground);
    const s = Math.floor(predicted[i] / GROUND_KINDS.length) === Math.floor(want / GROUND_KINDS.length);
    const g = predicted[i] % GROUND_KINDS.length === want % GROUND_KINDS.length;
    sky += Number(s);
    ground += Number(g);
    both += Number(s && g);
  });
  const n = prompts.length;
  return { sky: sky / n, ground: ground / n, both: both / n };
}

/** The class of each query's nearest row (dot product of unit vectors = cosine). */
export function nearestLabels(rows: Float32Array, labels: readonly number[], queries: readonly Float32Array[], dim: number): number[] {
  return queries.map((q) => {
    let best = -Infinity;
    let label = -1;
    for (let r = 0; r < labels.length; r++) {
      let d = 0;
      for (let k = 0; k < dim; k++) d += q[k] * rows[r * dim + k];
      if (d > best) {
        best = d;
        label = labels[r];
      }
    }
    return label;
  });
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const line = (label: string, s: ProbeScore) => `${label.padEnd(34)} both ${pct(s.both).padStart(6)}   sky ${pct(s.sky).padStart(6)}   ground ${pct(s.ground).padStart(6)}\n`;

async function main(argv: string[]): Promise<void> {
  const program = new Command('embedding-probe')
    .option('--clip-model <idOrDir>', 'CLIP model', path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip'))
    .option('--synth-seed <n>', 'seed of the synthetic training set', '1')
    .option('--synth-count <n>', 'images in the synthetic training set', '4000')
    .option('--prompts <n>', 'held-out prompts', '120')
    .option('--prompt-seed <n>', 'seed of the held-out prompt draw', '7')
    .option('--presentations <list>', 'training presentations at which to score the classifier', '43104,172416')
    .option('--seed <n>', 'seed of the classifier', '1')
    .parse(argv);
  const o = program.opts<{ clipModel: string; synthSeed: string; synthCount: string; prompts: string; promptSeed: string; presentations: string; seed: string }>();
  const checkpoints = o.presentations.split(',').map(Number).sort((a, b) => a - b);
  if (checkpoints.some((n) => !Number.isInteger(n) || n < 16)) throw new Error('--presentations must be whole numbers of at least 16, comma-separated');
  await initBackend();

  const captions: string[] = [];
  for (let i = 0; i < Number(o.synthCount); i++) captions.push(...synthItem(Number(o.synthSeed), i).captions);
  const labelled = captions.map((c) => ({ c, k: kindsMentioned(c) })).filter((x) => x.k.sky && x.k.ground);
  const prompts = heldOutPrompts(Number(o.promptSeed), Number(o.prompts), { exclude: new Set(captions) });
  const clip = await ClipEmbedder.load({ model: o.clipModel });
  const dim = clip.dim;
  process.stderr.write(`embedding ${labelled.length} training captions and ${prompts.length} held-out prompts with ${clip.modelId}\n`);
  const rows = new Float32Array(labelled.length * dim);
  for (let i = 0; i < labelled.length; i += 512) {
    (await clip.embedTexts(labelled.slice(i, i + 512).map((x) => x.c))).forEach((e, j) => rows.set(e, (i + j) * dim));
  }
  const queries = await clip.embedTexts(prompts.map((p) => p.prompt));
  await clip.dispose();
  const labels = labelled.map((x) => jointClass(x.k.sky!, x.k.ground!));

  let out = `held-out prompts: ${prompts.length}; training captions: ${labelled.length} (synth seed ${o.synthSeed}, ${o.synthCount} scenes)\n`;
  out += line('nearest training caption (1-NN)', scoreJoint(nearestLabels(rows, labels, queries, dim), prompts));

  const w = fitWhitening(rows, dim);
  const x = tf.tensor2d(whiten(w, rows), [labelled.length, dim]);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), SKY_KINDS.length * GROUND_KINDS.length).toFloat();
  const q = tf.tensor2d(whiten(w, Float32Array.from(queries.flatMap((e) => Array.from(e)))), [queries.length, dim]);
  const seed = Number(o.seed);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 256, inputShape: [dim], kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.leakyReLU({ alpha: 0.3 }),
      tf.layers.dense({ units: SKY_KINDS.length * GROUND_KINDS.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.004), loss: 'categoricalCrossentropy' });
  let seen = 0;
  let chunk = 0;
  for (const target of checkpoints) {
    while (seen < target) {
      const n = Math.min(3600, target - seen);
      const pick = tf.tidy(() => tf.randomUniform([n], 0, labelled.length, 'int32', seed * 7919 + chunk++));
      const [bx, by] = [x.gather(pick), y.gather(pick)];
      await model.fit(bx, by, { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
      tf.dispose([pick, bx, by]);
      seen += n;
      process.stderr.write(`\rclassifier: ${seen} / ${checkpoints.at(-1)} presentations`);
    }
    const predicted = tf.tidy(() => (model.predict(q) as tf.Tensor).argMax(1).dataSync());
    out += line(`classifier after ${target} captions`, scoreJoint(predicted, prompts));
  }
  process.stderr.write('\n');
  tf.dispose([x, y, q]);
  model.dispose();
  process.stdout.write(out);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv).then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`embedding-probe: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
