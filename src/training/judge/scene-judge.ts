/**
 * The scene judge: a small CNN, trained on synthetic renders only, that reads a 64 px RGB image and says
 * which sky and ground it shows and which species (cow, sheep, horse) appear in it. The quality check uses
 * it to score what a generated image shows against what its prompt asked for.
 *
 * Architecture (92.6k parameters, 0.37 MB of float32 weights): five 3x3 ReLU convolutions (16, 32, 48, 64,
 * 64 filters), three of them with stride 2 (64 → 32 → 16 → 8 px). Sky and ground: global average and global
 * max pooling side by side, a 64-unit hidden layer and two 4-way softmax heads. Species: a 1x1 convolution
 * makes an 8 x 8 map of per-cell species sigmoids and presence is its maximum over the cells (3 independent
 * sigmoids); training also fits the map to where the animals are (`speciesMap`). Strided convolutions rather
 * than pooling layers because the wasm backend's MaxPoolGrad is scalar code and took as long as all the
 * convolutions' weight gradients together.
 *
 * A judge folder holds `model.json` + `weights.bin` (src/model/file-io.ts) and `judge.json` (`JudgeInfo`:
 * its held-out score, the recipe and the training time).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import { fileIOHandler, MODEL_JSON } from '../../model/file-io.js';
import { writeJsonAtomic } from '../../util/durable-write.js';
import { GROUND_KINDS, SKY_KINDS, SPECIES, type GroundKind, type Scene, type SkyKind, type Species } from '../data/synth/index.js';

/** Side of the square RGB images the judge reads. */
export const JUDGE_RESOLUTION = 64;
/** Name of the judge's description file in its folder. */
export const JUDGE_INFO_FILE = 'judge.json';
/** Format tag of `judge.json`. */
export const JUDGE_FORMAT = 'scene-judge/1';
/** Probability above which a species counts as present. */
export const PRESENCE_THRESHOLD = 0.5;

/** What a scene shows, as the judge is trained to read it. */
export interface SceneLabels {
  sky: SkyKind;
  ground: GroundKind;
  /** Species with at least one animal in the scene (no duplicates, SPECIES order). */
  species: Species[];
}

/** The judge's reading of one image. */
export interface SceneVerdict extends SceneLabels {
  /** Softmax over SKY_KINDS. */
  skyProbs: Record<SkyKind, number>;
  /** Softmax over GROUND_KINDS. */
  groundProbs: Record<GroundKind, number>;
  /** Independent presence probability per species. */
  speciesProbs: Record<Species, number>;
}

/** Accuracy of a judge on labelled images. */
export interface JudgeScore {
  images: number;
  sky: number;
  ground: number;
  /** Fraction of (image, species) present/absent decisions that are right: 3 per image. */
  species: number;
  /** The same per species. */
  perSpecies: Record<Species, number>;
}

/** How a judge was trained (`judge.json` → `recipe`). */
export interface JudgeRecipe {
  /** Seed of the training scenes (`itemSeed(seed, i)`, i < images) and of the weight initialisers. */
  seed: number;
  images: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Learning rate multiplier of the last epoch. */
  finalEpochLrScale: number;
  /** Random horizontal flips of the training images (scenes have no preferred side). */
  flip: boolean;
  /** Supersampling of the renderer (`renderScene`'s default at 64 px is 4). */
  supersample: number;
  /** Batch normalisation after every convolution. */
  batchNorm: boolean;
  /** The 3x3 ReLU convolutions as [filters, stride]. */
  convs: (readonly [number, number])[];
  /** Weight of the species map's loss (mean over cells) against the heads' losses (1 each). */
  speciesMapLossWeight: number;
}

/** The contents of `judge.json`. */
export interface JudgeInfo {
  format: typeof JUDGE_FORMAT;
  resolution: number;
  skyKinds: readonly SkyKind[];
  groundKinds: readonly GroundKind[];
  species: readonly Species[];
  parameters: number;
  /** Score on fresh renders from a seed the training never saw. */
  heldOut: JudgeScore & { seed: number };
  recipe: JudgeRecipe;
  training: {
    /** Wall-clock seconds of rendering and training (with the held-out scoring after each epoch but the last). */
    wallSec: number;
    /** CPU seconds of this process over the same span (user + system). */
    cpuSec: number;
    backend: string;
    /** Final-epoch mean training losses. */
    finalLoss: { sky: number; ground: number; species: number; map: number };
  };
  createdAt: string;
}

/** The labels of a scene: its sky, its ground and the species that appear in it. */
export function sceneLabels(scene: Pick<Scene, 'sky' | 'ground' | 'animals'>): SceneLabels {
  const present = new Set(scene.animals.map((a) => a.species));
  return { sky: scene.sky, ground: scene.ground, species: SPECIES.filter((s) => present.has(s)) };
}

/** Side of the grid of the species map (cells of 8 px at 64 px). */
export const SPECIES_GRID = 8;

/** Extent of each species' drawing around its feet, in body lengths: along its facing (u) and upwards (v). */
const ANIMAL_EXTENT: Record<Species, { u: readonly [number, number]; v: number }> = {
  cow: { u: [-0.53, 0.75], v: 0.76 },
  sheep: { u: [-0.55, 0.62], v: 0.68 },
  horse: { u: [-0.58, 0.82], v: 1.16 },
};

/**
 * Where each species is, on a SPECIES_GRID × SPECIES_GRID grid (HWC, one channel per species in SPECIES
 * order): 1 in the cells whose centre an animal's box covers and in the cell of the box's centre (so a
 * small animal marks at least one), else 0. The training target of the judge's species map, from which
 * presence is the maximum; `flip` mirrors it like a flipped image.
 */
export function speciesMap(scene: Pick<Scene, 'animals'>, flip = false): Float32Array {
  const g = SPECIES_GRID;
  const np = SPECIES.length;
  const map = new Float32Array(g * g * np);
  const mark = (cx: number, cy: number, k: number) => {
    const col = flip ? g - 1 - cx : cx;
    if (col >= 0 && col < g && cy >= 0 && cy < g) map[(cy * g + col) * np + k] = 1;
  };
  for (const a of scene.animals) {
    const k = SPECIES.indexOf(a.species);
    const e = ANIMAL_EXTENT[a.species];
    const xs = [a.x + a.facing * e.u[0] * a.size, a.x + a.facing * e.u[1] * a.size];
    const x0 = Math.min(...xs);
    const x1 = Math.max(...xs);
    const y0 = a.y - e.v * a.size;
    const y1 = a.y;
    for (let cy = 0; cy < g; cy++) {
      for (let cx = 0; cx < g; cx++) {
        const px = (cx + 0.5) / g;
        const py = (cy + 0.5) / g;
        if (px >= x0 && px <= x1 && py >= y0 && py <= y1) mark(cx, cy, k);
      }
    }
    mark(Math.floor(((x0 + x1) / 2) * g), Math.floor(((y0 + y1) / 2) * g), k);
  }
  return map;
}

/** The judge's 3x3 ReLU convolutions as [filters, stride]: 64 → 32 → 16 → 8 px. */
export const DEFAULT_JUDGE_CONVS: readonly (readonly [number, number])[] = [[16, 2], [32, 2], [48, 1], [64, 2], [64, 1]];

/** The judge network and the network that trains it (the same layers plus the species map output). */
export interface SceneJudgeNetworks {
  /** Outputs: sky softmax, ground softmax, species presence. What is saved and loaded. */
  judge: tf.LayersModel;
  /** Outputs: the judge's three, then the species map ([batch, SPECIES_GRID, SPECIES_GRID, 3] sigmoids). */
  trainer: tf.LayersModel;
}

/**
 * Builds the untrained judge (input: [batch, 64, 64, 3] floats in [0, 1]). Species presence is the maximum
 * over the cells of a per-cell species map (a 1x1 convolution on the 8 px features), so that training can
 * tell the map where the animals are: with presence alone as the target, the species loss sat at the base
 * rate for the first ~10k images.
 * @param seed seed of the kernel initialisers (the same seed builds the same weights)
 */
export function buildSceneJudgeNetworks(seed: number, opts: { batchNorm?: boolean; convs?: readonly (readonly [number, number])[] } = {}): SceneJudgeNetworks {
  let layerIndex = 0;
  const nextSeed = () => (seed % 100_000) * 100 + layerIndex++;
  const input = tf.input({ shape: [JUDGE_RESOLUTION, JUDGE_RESOLUTION, 3], name: 'image' });
  let h: tf.SymbolicTensor = input;
  const bn = opts.batchNorm ?? false;
  const conv = (filters: number, strides: number, name: string) => {
    h = tf.layers
      .conv2d({
        filters, kernelSize: 3, strides, padding: 'same', activation: bn ? 'linear' : 'relu', useBias: !bn,
        kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }), name,
      })
      .apply(h) as tf.SymbolicTensor;
    if (bn) {
      h = tf.layers.batchNormalization({ name: `${name}_bn` }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.reLU({ name: `${name}_relu` }).apply(h) as tf.SymbolicTensor;
    }
  };
  const convs = opts.convs ?? DEFAULT_JUDGE_CONVS;
  const downsampling = convs.reduce((f, [, stride]) => f * stride, 1);
  if (JUDGE_RESOLUTION / downsampling !== SPECIES_GRID) {
    throw new RangeError(`the convolutions' strides take ${JUDGE_RESOLUTION} px to ${JUDGE_RESOLUTION / downsampling} px; the species map needs ${SPECIES_GRID}`);
  }
  convs.forEach(([filters, stride], i) => conv(filters, stride, `conv${i + 1}`));
  const avg = tf.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(h) as tf.SymbolicTensor;
  const max = tf.layers.globalMaxPooling2d({ name: 'max_pool' }).apply(h) as tf.SymbolicTensor;
  const pooled = tf.layers.concatenate({ name: 'pooled' }).apply([avg, max]) as tf.SymbolicTensor;
  const hidden = tf.layers
    .dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }), name: 'hidden' })
    .apply(pooled) as tf.SymbolicTensor;
  const head = (units: number, name: string) =>
    tf.layers
      .dense({ units, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }), name })
      .apply(hidden) as tf.SymbolicTensor;
  const sky = head(SKY_KINDS.length, 'sky');
  const ground = head(GROUND_KINDS.length, 'ground');
  const map = tf.layers
    .conv2d({
      filters: SPECIES.length, kernelSize: 1, activation: 'sigmoid', name: 'species_map',
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
    })
    .apply(h) as tf.SymbolicTensor;
  const species = tf.layers.globalMaxPooling2d({ name: 'species' }).apply(map) as tf.SymbolicTensor;
  return {
    judge: tf.model({ inputs: input, outputs: [sky, ground, species], name: 'scene_judge' }),
    trainer: tf.model({ inputs: input, outputs: [sky, ground, species, map], name: 'scene_judge_trainer' }),
  };
}

/**
 * Packs RGB images (uint8 HWC, JUDGE_RESOLUTION square) into the judge's input floats, optionally
 * mirrored left-right. Writes into `out` at image offset `at`.
 */
export function packImage(image: Uint8Array, out: Float32Array, at: number, flip = false): void {
  const s = JUDGE_RESOLUTION;
  const base = at * s * s * 3;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const src = (y * s + (flip ? s - 1 - x : x)) * 3;
      const dst = base + (y * s + x) * 3;
      out[dst] = image[src] / 255;
      out[dst + 1] = image[src + 1] / 255;
      out[dst + 2] = image[src + 2] / 255;
    }
  }
}

function checkImage(image: Uint8Array, index: number): void {
  const want = JUDGE_RESOLUTION * JUDGE_RESOLUTION * 3;
  if (image.length !== want) {
    throw new UserError(
      `The scene judge reads ${JUDGE_RESOLUTION}x${JUDGE_RESOLUTION} RGB images (${want} bytes); image ${index} has ${image.length} bytes. ` +
        `Sample at ${JUDGE_RESOLUTION} px or resize first.`,
    );
  }
}

function argmax(values: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}

/** Turns the three output arrays of a batch into verdicts. */
export function verdictsFromOutputs(sky: ArrayLike<number>, ground: ArrayLike<number>, species: ArrayLike<number>, count: number): SceneVerdict[] {
  const out: SceneVerdict[] = [];
  for (let i = 0; i < count; i++) {
    const ns = SKY_KINDS.length;
    const ng = GROUND_KINDS.length;
    const np = SPECIES.length;
    const skyProbs = Object.fromEntries(SKY_KINDS.map((k, j) => [k, sky[i * ns + j]])) as Record<SkyKind, number>;
    const groundProbs = Object.fromEntries(GROUND_KINDS.map((k, j) => [k, ground[i * ng + j]])) as Record<GroundKind, number>;
    const speciesProbs = Object.fromEntries(SPECIES.map((k, j) => [k, species[i * np + j]])) as Record<Species, number>;
    out.push({
      sky: SKY_KINDS[argmax(sky, i * ns, ns)],
      ground: GROUND_KINDS[argmax(ground, i * ng, ng)],
      species: SPECIES.filter((k) => speciesProbs[k] > PRESENCE_THRESHOLD),
      skyProbs,
      groundProbs,
      speciesProbs,
    });
  }
  return out;
}

/**
 * Runs a judge network on RGB images in batches (tensors freed).
 * @param model a judge network (`buildSceneJudgeNetworks(...).judge`, trained or not)
 */
export function judgeWithModel(model: tf.LayersModel, images: readonly Uint8Array[], batchSize = 64): SceneVerdict[] {
  images.forEach(checkImage);
  const out: SceneVerdict[] = [];
  const s = JUDGE_RESOLUTION;
  for (let start = 0; start < images.length; start += batchSize) {
    const chunk = images.slice(start, start + batchSize);
    const x = new Float32Array(chunk.length * s * s * 3);
    chunk.forEach((img, i) => packImage(img, x, i));
    const [sky, ground, species] = tf.tidy(() => {
      const outs = model.predict(tf.tensor4d(x, [chunk.length, s, s, 3])) as tf.Tensor[];
      return outs.map((t) => t.dataSync());
    });
    out.push(...verdictsFromOutputs(sky, ground, species, chunk.length));
  }
  return out;
}

/** Scores verdicts against the true labels of the same images. */
export function scoreVerdicts(verdicts: readonly SceneLabels[], labels: readonly SceneLabels[]): JudgeScore {
  if (verdicts.length !== labels.length) throw new RangeError(`${verdicts.length} verdicts for ${labels.length} labels`);
  const n = Math.max(1, labels.length);
  let sky = 0;
  let ground = 0;
  const perSpecies = Object.fromEntries(SPECIES.map((k) => [k, 0])) as Record<Species, number>;
  verdicts.forEach((v, i) => {
    const l = labels[i];
    sky += +(v.sky === l.sky);
    ground += +(v.ground === l.ground);
    for (const k of SPECIES) perSpecies[k] += +(v.species.includes(k) === l.species.includes(k));
  });
  const speciesRight = SPECIES.reduce((a, k) => a + perSpecies[k], 0);
  return {
    images: labels.length,
    sky: sky / n,
    ground: ground / n,
    species: speciesRight / (n * SPECIES.length),
    perSpecies: Object.fromEntries(SPECIES.map((k) => [k, perSpecies[k] / n])) as Record<Species, number>,
  };
}

/** A trained scene judge with its description. */
export class SceneJudge {
  constructor(
    readonly model: tf.LayersModel,
    readonly info: JudgeInfo,
  ) {}

  /**
   * Loads a judge folder (`model.json`, `weights.bin`, `judge.json`).
   * @throws UserError when the folder or one of its files is missing or is not a scene judge
   */
  static async load(dir: string): Promise<SceneJudge> {
    const infoFile = path.join(dir, JUDGE_INFO_FILE);
    let info: JudgeInfo;
    try {
      await fsp.access(path.join(dir, MODEL_JSON));
      info = JSON.parse(await fsp.readFile(infoFile, 'utf8')) as JudgeInfo;
    } catch (err) {
      throw new UserError(
        `No scene judge in ${dir} (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `missing ${path.basename((err as NodeJS.ErrnoException).path ?? infoFile)}` : (err as Error).message}). ` +
          'Train one with `npm run cli -- judge train --out models/scene-judge`, or pass --judge with the folder of one.',
        { cause: err },
      );
    }
    if (info.format !== JUDGE_FORMAT || info.resolution !== JUDGE_RESOLUTION) {
      throw new UserError(`${infoFile} is not a ${JUDGE_FORMAT} judge at ${JUDGE_RESOLUTION} px (format ${info.format}, resolution ${info.resolution}). Train the judge again.`);
    }
    const model = await tf.loadLayersModel(fileIOHandler(dir));
    return new SceneJudge(model, info);
  }

  /** Writes the judge into `dir` (created when missing): weights through fileIOHandler, then judge.json. */
  async save(dir: string): Promise<void> {
    await this.model.save(fileIOHandler(dir));
    await writeJsonAtomic(path.join(dir, JUDGE_INFO_FILE), this.info);
  }

  /** Reads 64 px RGB images (uint8 HWC). */
  judge(images: readonly Uint8Array[]): SceneVerdict[] {
    return judgeWithModel(this.model, images);
  }

  dispose(): void {
    this.model.dispose();
  }
}
