/**
 * Training of the scene judge on freshly rendered synthetic scenes (never on generated images).
 *
 * The training set is `images` scenes drawn with `randomScene(itemSeed(seed, i))` and rendered at 64 px; the
 * held-out set is drawn the same way from another seed (`heldOutSeed`), so no training scene is scored. The
 * default seeds (9001 and 9002) are far from the demo dataset's (1). Training is Adam on the sum of the three
 * heads' cross-entropies and the species map's (see `speciesMap`), with random left-right flips (the scenes have no preferred side) and a lower
 * learning rate in the last epoch. Single-threaded: the wasm backend runs on one core.
 */
import * as tf from '@tensorflow/tfjs';
import { mixSeeds, mulberry32, permutation } from '../../util/prng.js';
import { GROUND_KINDS, SKY_KINDS, SPECIES, itemSeed, randomScene, renderScene, type Scene } from '../data/synth/index.js';
import {
  JUDGE_FORMAT,
  JUDGE_RESOLUTION,
  SceneJudge,
  DEFAULT_JUDGE_CONVS,
  SPECIES_GRID,
  buildSceneJudgeNetworks,
  judgeWithModel,
  packImage,
  sceneLabels,
  scoreVerdicts,
  speciesMap,
  type JudgeRecipe,
  type JudgeScore,
  type SceneLabels,
} from './scene-judge.js';

/** Default seed of the judge's training scenes (disjoint from the demo dataset's seed 1). */
export const JUDGE_TRAIN_SEED = 9001;
/** Default seed of the judge's held-out scenes. */
export const JUDGE_HELD_OUT_SEED = 9002;

/** Rendered scenes and their labels: `pixels` holds `labels.length` 64 px RGB images back to back. */
export interface RenderedScenes {
  pixels: Uint8Array;
  labels: SceneLabels[];
  /** The scenes, for targets beyond the labels (the species map). */
  scenes: Scene[];
}

/**
 * Renders scenes `itemSeed(seed, 0..count-1)` at the judge's resolution.
 * @param onProgress called with the number of images rendered so far (every 256 and at the end)
 */
export function renderJudgeScenes(seed: number, count: number, opts: { supersample?: number; onProgress?: (done: number) => void } = {}): RenderedScenes {
  const bytes = JUDGE_RESOLUTION * JUDGE_RESOLUTION * 3;
  const pixels = new Uint8Array(count * bytes);
  const labels: SceneLabels[] = [];
  const scenes: Scene[] = [];
  for (let i = 0; i < count; i++) {
    const scene = randomScene(itemSeed(seed, i));
    pixels.set(renderScene(scene, JUDGE_RESOLUTION, { supersample: opts.supersample }), i * bytes);
    labels.push(sceneLabels(scene));
    scenes.push(scene);
    if ((i + 1) % 256 === 0 || i + 1 === count) opts.onProgress?.(i + 1);
  }
  return { pixels, labels, scenes };
}

/** The i-th image of a rendered set (a view, no copy). */
export function renderedImage(set: RenderedScenes, i: number): Uint8Array {
  const bytes = JUDGE_RESOLUTION * JUDGE_RESOLUTION * 3;
  return set.pixels.subarray(i * bytes, (i + 1) * bytes);
}

/** Progress of a judge training run (plain data). */
export type JudgeTrainingEvent =
  | { type: 'render'; done: number; total: number }
  | { type: 'start'; images: number; epochs: number; batchSize: number; totalSteps: number; parameters: number; backend: string }
  | { type: 'step'; epoch: number; step: number; totalSteps: number; loss: number; imagesPerSec: number; etaSec: number }
  | { type: 'epoch'; epoch: number; epochs: number; loss: { sky: number; ground: number; species: number; map: number }; durationSec: number }
  | { type: 'evaluate'; epoch: number; score: JudgeScore };

/** Options of `trainSceneJudge`; every field has a default (the recipe of the shipped judge). */
export interface JudgeTrainingOptions {
  images?: number;
  epochs?: number;
  seed?: number;
  batchSize?: number;
  learningRate?: number;
  /** Learning rate multiplier of the last epoch (default 0.2). */
  finalEpochLrScale?: number;
  flip?: boolean;
  supersample?: number;
  batchNorm?: boolean;
  convs?: readonly (readonly [number, number])[];
  speciesMapLossWeight?: number;
  /** Held-out renders scored at the end (default 1000). */
  heldOutImages?: number;
  heldOutSeed?: number;
  onEvent?: (e: JudgeTrainingEvent) => void;
}

/** The recipe `trainSceneJudge` uses for these options. */
export function judgeRecipe(opts: JudgeTrainingOptions = {}): JudgeRecipe {
  return {
    seed: opts.seed ?? JUDGE_TRAIN_SEED,
    images: opts.images ?? 8_000,
    epochs: opts.epochs ?? 5,
    batchSize: opts.batchSize ?? 32,
    learningRate: opts.learningRate ?? 2e-3,
    finalEpochLrScale: opts.finalEpochLrScale ?? 0.2,
    flip: opts.flip ?? true,
    supersample: opts.supersample ?? 4,
    batchNorm: opts.batchNorm ?? false,
    convs: (opts.convs ?? DEFAULT_JUDGE_CONVS).map(([f, st]) => [f, st] as const),
    speciesMapLossWeight: opts.speciesMapLossWeight ?? 3,
  };
}

/** One-hot and multi-hot targets of a batch. */
function batchTargets(labels: readonly SceneLabels[]): Float32Array[] {
  const sky = new Float32Array(labels.length * SKY_KINDS.length);
  const ground = new Float32Array(labels.length * GROUND_KINDS.length);
  const species = new Float32Array(labels.length * SPECIES.length);
  labels.forEach((l, i) => {
    sky[i * SKY_KINDS.length + SKY_KINDS.indexOf(l.sky)] = 1;
    ground[i * GROUND_KINDS.length + GROUND_KINDS.indexOf(l.ground)] = 1;
    for (const s of l.species) species[i * SPECIES.length + SPECIES.indexOf(s)] = 1;
  });
  return [sky, ground, species];
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Renders the training scenes, trains a judge on them and scores it on held-out renders.
 * The returned judge's `info` is what `save` writes to judge.json.
 */
export async function trainSceneJudge(opts: JudgeTrainingOptions = {}): Promise<SceneJudge> {
  const recipe = judgeRecipe(opts);
  const heldOutImages = opts.heldOutImages ?? 1000;
  const heldOutSeed = opts.heldOutSeed ?? JUDGE_HELD_OUT_SEED;
  if (heldOutSeed === recipe.seed) throw new RangeError('the held-out seed must differ from the training seed');
  const emit = opts.onEvent ?? (() => {});
  const heldOut = renderJudgeScenes(heldOutSeed, heldOutImages, { supersample: recipe.supersample });
  const heldOutPixels = heldOut.labels.map((_, i) => renderedImage(heldOut, i));
  const t0 = performance.now();
  const cpu0 = cpuSeconds();

  const train = renderJudgeScenes(recipe.seed, recipe.images, {
    supersample: recipe.supersample,
    onProgress: (done) => emit({ type: 'render', done, total: recipe.images }),
  });

  const { judge: model, trainer } = buildSceneJudgeNetworks(recipe.seed, { batchNorm: recipe.batchNorm, convs: recipe.convs });
  const optimizer = tf.train.adam(recipe.learningRate);
  // The map's weight is folded into its loss function: tfjs-layers 4.22 accepts `lossWeights` but ignores it.
  const w = recipe.speciesMapLossWeight;
  const kindLoss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.metrics.categoricalCrossentropy(yTrue, yPred);
  const presenceLoss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.metrics.binaryCrossentropy(yTrue, yPred);
  const mapLoss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.mul(tf.mean(tf.metrics.binaryCrossentropy(yTrue, yPred), [1, 2]), w);
  trainer.compile({ optimizer, loss: [kindLoss, kindLoss, presenceLoss, mapLoss] });
  const s = JUDGE_RESOLUTION;
  const B = recipe.batchSize;
  const stepsPerEpoch = Math.ceil(recipe.images / B);
  const totalSteps = stepsPerEpoch * recipe.epochs;
  emit({ type: 'start', images: recipe.images, epochs: recipe.epochs, batchSize: B, totalSteps, parameters: model.countParams(), backend: tf.getBackend() });

  let step = 0;
  let rate = 0;
  let finalLoss = { sky: NaN, ground: NaN, species: NaN, map: NaN };
  const trainStart = performance.now();
  for (let epoch = 1; epoch <= recipe.epochs; epoch++) {
    // Adam reads its learning rate on every step; the field is protected in the typings only.
    (optimizer as unknown as { learningRate: number }).learningRate =
      recipe.learningRate * (epoch === recipe.epochs && recipe.epochs > 1 ? recipe.finalEpochLrScale : 1);
    const random = mulberry32(mixSeeds(recipe.seed, epoch));
    const order = permutation(recipe.images, random);
    const sums = { sky: 0, ground: 0, species: 0, map: 0 };
    const epochStart = performance.now();
    for (let start = 0; start < recipe.images; start += B) {
      const idx = Array.from(order.subarray(start, Math.min(start + B, recipe.images)));
      const x = new Float32Array(idx.length * s * s * 3);
      const flips = idx.map(() => recipe.flip && random() < 0.5);
      const [ySky, yGround, ySpecies] = batchTargets(idx.map((j) => train.labels[j]));
      const g = SPECIES_GRID;
      const yMap = new Float32Array(idx.length * g * g * SPECIES.length);
      idx.forEach((j, k) => {
        packImage(renderedImage(train, j), x, k, flips[k]);
        yMap.set(speciesMap(train.scenes[j], flips[k]), k * g * g * SPECIES.length);
      });
      const xs = tf.tensor4d(x, [idx.length, s, s, 3]);
      const ys = [
        tf.tensor2d(ySky, [idx.length, SKY_KINDS.length]),
        tf.tensor2d(yGround, [idx.length, GROUND_KINDS.length]),
        tf.tensor2d(ySpecies, [idx.length, SPECIES.length]),
        tf.tensor4d(yMap, [idx.length, g, g, SPECIES.length]),
      ];
      const losses = (await trainer.trainOnBatch(xs, ys)) as number[];
      tf.dispose([xs, ...ys]);
      // [total, sky, ground, species presence, species map × w]
      sums.sky += losses[1] * idx.length;
      sums.ground += losses[2] * idx.length;
      sums.species += losses[3] * idx.length;
      sums.map += (losses[4] / w) * idx.length;
      step++;
      const elapsed = (performance.now() - trainStart) / 1000;
      rate = (step * B) / Math.max(elapsed, 1e-3);
      emit({ type: 'step', epoch, step, totalSteps, loss: losses[0], imagesPerSec: rate, etaSec: ((totalSteps - step) * B) / Math.max(rate, 1e-3) });
    }
    finalLoss = { sky: sums.sky / recipe.images, ground: sums.ground / recipe.images, species: sums.species / recipe.images, map: sums.map / recipe.images };
    emit({ type: 'epoch', epoch, epochs: recipe.epochs, loss: finalLoss, durationSec: (performance.now() - epochStart) / 1000 });
    if (epoch < recipe.epochs) emit({ type: 'evaluate', epoch, score: scoreVerdicts(judgeWithModel(model, heldOutPixels), heldOut.labels) });
  }
  const wallSec = (performance.now() - t0) / 1000;
  const cpuSec = cpuSeconds() - cpu0;
  const score = scoreVerdicts(judgeWithModel(model, heldOutPixels), heldOut.labels);
  emit({ type: 'evaluate', epoch: recipe.epochs, score });

  return new SceneJudge(model, {
    format: JUDGE_FORMAT,
    resolution: JUDGE_RESOLUTION,
    skyKinds: SKY_KINDS,
    groundKinds: GROUND_KINDS,
    species: SPECIES,
    parameters: model.countParams(),
    heldOut: { ...score, seed: heldOutSeed },
    recipe,
    training: { wallSec: round(wallSec, 1), cpuSec: round(cpuSec, 1), backend: tf.getBackend(), finalLoss: roundAll(finalLoss) },
    createdAt: new Date().toISOString(),
  });
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
const roundAll = <T extends Record<string, number>>(o: T): T => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v, 4)])) as T;
