/**
 * Checkpoints: a folder with the encoder and decoder in TensorFlow.js layers format, the optimizer state
 * (optional) and `meta.json`. Other files in the folder (sample grids, loss curves, exports) belong to
 * whoever wrote them and survive every save.
 *
 * Layout:
 *   meta.json                 CheckpointMeta (written last: its presence marks a complete checkpoint)
 *   encoder/model.json, encoder/weights.bin
 *   decoder/model.json, decoder/weights.bin
 *   optimizer.json, optimizer.bin   optimizer class, config and state (`getWeights()`), when saved
 *
 * Saves are atomic: everything is written into a hidden temporary sibling folder and fsynced, the extra files
 * of the old folder are hard-linked (or copied) in, then the old folder is renamed aside and the new one into
 * place. A process killed at any moment leaves either the old or the new checkpoint; readers find an old one
 * left aside by an interrupted swap, and the next save cleans up leftovers. One writer per folder at a time.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import type { LossTerms } from './loss.js';
import { Cvae } from './cvae.js';
import { fileIOHandler, weightBytes, weightDataBytes } from './file-io.js';
import { syncDir, writeFileDurable } from '../util/durable-write.js';
import { validatePreset, type Preset } from './presets.js';

const log = childLogger('checkpoint');

/** What a checkpoint says about itself (`meta.json`). */
export interface CheckpointMeta {
  /** Checkpoint name (registry key, shown in chat). */
  name: string;
  /** Name of the preset the model was built from. */
  preset: string;
  resolution: number;
  conditioning: 'image' | 'text';
  /** CLIP model the training embeddings came from. */
  clipModel: string;
  /** Fingerprint of the training data. */
  datasetFingerprint: string;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  step: number;
  losses: { train?: LossTerms; val?: LossTerms };
  bestValLoss?: number;
  /** ISO time of the save. */
  createdAt: string;
  /** The full preset (architecture), so the checkpoint loads even if presets.json changes. */
  presetConfig: Preset;
}

/** Options of `saveCheckpoint` and `loadCheckpoint`. */
export interface CheckpointOptions {
  /** Save: store this optimizer's state. Load: restore the saved state into it (when the checkpoint has one). */
  optimizer?: tf.Optimizer;
}

/** Files and folders a save writes; everything else in a checkpoint folder is carried over. */
const OWNED = new Set(['meta.json', 'encoder', 'decoder', 'optimizer.json', 'optimizer.bin']);
const META = 'meta.json';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

const lossTermsSchema = z.object({ total: z.number(), bce: z.number(), kl: z.number(), ssim: z.number() });
const metaSchema = z.object({
  name: z.string(),
  preset: z.string(),
  resolution: z.number().int().positive(),
  conditioning: z.enum(['image', 'text']),
  clipModel: z.string(),
  datasetFingerprint: z.string(),
  epoch: z.number().int().nonnegative(),
  step: z.number().int().nonnegative(),
  losses: z.object({ train: lossTermsSchema.optional(), val: lossTermsSchema.optional() }),
  bestValLoss: z.number().optional(),
  createdAt: z.string(),
  presetConfig: z.unknown(),
});

interface OptimizerFile {
  className: string;
  config: unknown;
  /** Shapes of the model's trainable weights, in order, when the state was saved. */
  variableShapes: number[][];
  weights: tf.io.WeightsManifestEntry[];
}

function siblings(dir: string) {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  return { parent, base, tmpPrefix: `.${base}.tmp-`, oldPrefix: `.${base}.old-` };
}

/** Leftover folders of interrupted saves of `dir`, newest first. */
async function leftovers(dir: string): Promise<{ tmp: string[]; old: string[] }> {
  const { parent, tmpPrefix, oldPrefix } = siblings(dir);
  let names: string[] = [];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return { tmp: [], old: [] };
  }
  const pick = (prefix: string) =>
    names
      .filter((n) => n.startsWith(prefix))
      .sort()
      .reverse()
      .map((n) => path.join(parent, n));
  return { tmp: pick(tmpPrefix), old: pick(oldPrefix) };
}

/**
 * The folder that holds the complete checkpoint of `dir`: `dir` itself, or the old copy an interrupted
 * save left aside between its two renames.
 */
async function readableDir(dir: string): Promise<string> {
  const resolved = path.resolve(dir);
  if (existsSync(path.join(resolved, META))) return resolved;
  const { old } = await leftovers(resolved);
  const aside = old.find((d) => existsSync(path.join(d, META)));
  if (aside) {
    log.warn({ dir: resolved, aside }, 'checkpoint folder missing after an interrupted save; reading the previous copy');
    return aside;
  }
  throw new UserError(
    `There is no checkpoint in ${resolved} (no ${META}). Check the path, or train a model first (npm run cli -- train ...).`,
  );
}

/** Writer-side clean-up before a save: puts back an old copy left aside by a killed save, removes temp folders. */
async function recoverInterruptedSave(dir: string): Promise<void> {
  const { tmp, old } = await leftovers(dir);
  for (const t of tmp) {
    log.warn({ dir: t }, 'removing the temporary folder of an interrupted checkpoint save');
    await fsp.rm(t, { recursive: true, force: true });
  }
  if (!existsSync(path.join(dir, META))) {
    const aside = old.find((d) => existsSync(path.join(d, META)));
    if (aside && !existsSync(dir)) {
      log.warn({ dir, aside }, 'restoring the checkpoint left aside by an interrupted save');
      await fsp.rename(aside, dir);
    }
  }
  for (const o of (await leftovers(dir)).old) await fsp.rm(o, { recursive: true, force: true });
}

/** Links (or copies) what `from` holds that the new checkpoint does not write into `to`. */
async function carryOverExtras(from: string, to: string): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(from, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (OWNED.has(e.name)) continue;
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isFile()) {
      try {
        await fsp.link(src, dst);
      } catch {
        await fsp.copyFile(src, dst);
      }
    } else {
      await fsp.cp(src, dst, { recursive: true, preserveTimestamps: true });
    }
  }
}

async function saveOptimizer(dir: string, optimizer: tf.Optimizer, cvae: Cvae): Promise<void> {
  const named = await optimizer.getWeights();
  try {
    const { data, specs } = await tf.io.encodeWeights(named);
    const file: OptimizerFile = {
      className: optimizer.getClassName(),
      config: optimizer.getConfig(),
      variableShapes: cvae.trainableWeights().map((v) => v.shape),
      weights: specs,
    };
    await writeFileDurable(path.join(dir, OPTIMIZER_BIN), weightDataBytes(data));
    await writeFileDurable(path.join(dir, OPTIMIZER_JSON), JSON.stringify(file));
  } finally {
    // getWeights() returns a fresh iteration scalar; the other tensors are the optimizer's own variables.
    for (const n of named) if (n.name === 'iter') n.tensor.dispose();
  }
}

/** Restores optimizer state; returns false when the checkpoint has none. */
async function loadOptimizer(dir: string, optimizer: tf.Optimizer, cvae: Cvae): Promise<boolean> {
  const jsonFile = path.join(dir, OPTIMIZER_JSON);
  if (!existsSync(jsonFile)) return false;
  let file: OptimizerFile;
  let data: Buffer;
  try {
    file = JSON.parse(await fsp.readFile(jsonFile, 'utf8')) as OptimizerFile;
    data = await fsp.readFile(path.join(dir, OPTIMIZER_BIN));
  } catch (err) {
    throw new UserError(`The optimizer state in ${dir} cannot be read (${(err as Error).message}). Resume from another checkpoint or start a new run.`, {
      cause: err,
    });
  }
  if (file.className !== optimizer.getClassName()) {
    throw new UserError(`The checkpoint in ${dir} holds ${file.className} state, but training uses ${optimizer.getClassName()}.`);
  }
  if (data.byteLength !== weightBytes(file.weights)) {
    throw new UserError(
      `The optimizer state in ${dir} is ${data.byteLength} bytes but ${OPTIMIZER_JSON} describes ${weightBytes(file.weights)}: it is truncated or damaged. Resume from another checkpoint or start a new run.`,
    );
  }
  const shapes = cvae.trainableWeights().map((v) => v.shape);
  const slots = file.weights.filter((w) => w.name !== 'iter');
  const consistent =
    JSON.stringify(file.variableShapes) === JSON.stringify(shapes) &&
    slots.length % Math.max(1, shapes.length) === 0 &&
    slots.every((w, i) => JSON.stringify(w.shape) === JSON.stringify(shapes[i % shapes.length]));
  if (!consistent) {
    throw new UserError(`The optimizer state in ${dir} does not fit the model's weights; the checkpoint is inconsistent.`);
  }
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buffer, file.weights);
  const ordered = file.weights.map((w) => ({ name: w.name, tensor: map[w.name] }));
  try {
    await optimizer.setWeights(ordered);
  } finally {
    tf.dispose(Object.values(map));
  }
  return true;
}

/**
 * Saves a model, its metadata and (optionally) the optimizer state into `dir`, atomically.
 * Files in `dir` that the checkpoint does not own (sample PNGs, curves, exports) are kept.
 */
export async function saveCheckpoint(dir: string, cvae: Cvae, meta: CheckpointMeta, opts: CheckpointOptions = {}): Promise<void> {
  const target = path.resolve(dir);
  const { parent, tmpPrefix, oldPrefix } = siblings(target);
  await fsp.mkdir(parent, { recursive: true });
  await recoverInterruptedSave(target);
  const stamp = `${Date.now()}-${process.pid}`;
  const tmp = path.join(parent, `${tmpPrefix}${stamp}`);
  await fsp.mkdir(tmp);
  try {
    await cvae.encoder.save(fileIOHandler(path.join(tmp, 'encoder')));
    await cvae.decoder.save(fileIOHandler(path.join(tmp, 'decoder')));
    if (opts.optimizer) await saveOptimizer(tmp, opts.optimizer, cvae);
    await writeFileDurable(path.join(tmp, META), JSON.stringify(meta, null, 2) + '\n');
    await carryOverExtras(target, tmp);
    await syncDir(tmp);
    const aside = path.join(parent, `${oldPrefix}${stamp}`);
    const hadOld = existsSync(target);
    if (hadOld) await fsp.rename(target, aside);
    await fsp.rename(tmp, target);
    await syncDir(parent);
    if (hadOld) await fsp.rm(aside, { recursive: true, force: true });
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  log.info({ dir: target, epoch: meta.epoch, step: meta.step, optimizer: Boolean(opts.optimizer) }, 'checkpoint saved');
}

/**
 * Reads and validates `meta.json` of a checkpoint.
 * @throws UserError when the folder holds no readable checkpoint
 */
export async function readCheckpointMeta(dir: string): Promise<CheckpointMeta> {
  return readMetaFrom(await readableDir(dir));
}

async function readMetaFrom(dir: string): Promise<CheckpointMeta> {
  const file = path.join(dir, META);
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw new UserError(`Cannot read ${file} (${(err as Error).message}). The checkpoint is damaged: use another one.`, { cause: err });
  }
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`${file} is not valid checkpoint metadata: ${z.prettifyError(parsed.error)}`);
  }
  let presetConfig: Preset;
  try {
    presetConfig = validatePreset(parsed.data.presetConfig);
  } catch (err) {
    throw new UserError(`${file} has an invalid architecture (presetConfig): ${(err as Error).message}`, { cause: err });
  }
  return { ...(parsed.data as Omit<CheckpointMeta, 'presetConfig'>), presetConfig };
}

/**
 * Loads a checkpoint: rebuilds encoder and decoder from their layers files and, when an optimizer is given
 * and the checkpoint holds optimizer state, restores that state into it.
 * @throws UserError when the checkpoint is missing, truncated or inconsistent
 */
export async function loadCheckpoint(
  dir: string,
  opts: CheckpointOptions = {},
): Promise<{ cvae: Cvae; meta: CheckpointMeta; optimizerRestored: boolean }> {
  const source = await readableDir(dir);
  const meta = await readMetaFrom(source);
  const encoder = await tf.loadLayersModel(fileIOHandler(path.join(source, 'encoder')), { strict: true });
  let decoder: tf.LayersModel;
  try {
    decoder = await tf.loadLayersModel(fileIOHandler(path.join(source, 'decoder')), { strict: true });
  } catch (err) {
    encoder.dispose();
    throw err;
  }
  const cvae = new Cvae(meta.presetConfig, encoder, decoder);
  try {
    const res = meta.presetConfig.resolution;
    const inShape = encoder.inputs[0].shape;
    const outShape = decoder.outputs[0].shape;
    if (inShape[1] !== res || outShape[1] !== res || decoder.inputs[0].shape[1] !== meta.presetConfig.latentDim) {
      throw new UserError(`The model files in ${source} do not match the architecture in its ${META}; the checkpoint is inconsistent.`);
    }
    const optimizerRestored = opts.optimizer ? await loadOptimizer(source, opts.optimizer, cvae) : false;
    log.info({ dir: source, preset: meta.preset, epoch: meta.epoch, optimizerRestored }, 'checkpoint loaded');
    return { cvae, meta, optimizerRestored };
  } catch (err) {
    cvae.dispose();
    throw err;
  }
}
