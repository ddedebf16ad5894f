/**
 * The training engine: a custom Adam loop over any BatchSource, with per-epoch validation, best-checkpoint
 * selection, early stopping, gradient clipping, seeded reproducibility, cancellation and resume.
 *
 * Layout of `outDir` (one run):
 *   last/                   checkpoint after the latest epoch (or the stop), optimizer state included: the resume point
 *   best/                   checkpoint of the epoch with the lowest validation loss (weights only)
 *   last/, best/ also hold  samples.png and loss-curve.png of their epoch
 *   samples/epoch-NNNN.png  sample grid of every epoch (fixed embeddings and seeds)
 *   samples/embeddings.json the fixed sample embeddings (so a resumed run draws the same grid)
 *   loss-curve.png          train/val loss per epoch, updated every epoch
 *   history.json            run settings and one record per finished epoch (the loss history; resumes with the run)
 */
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import { buildCvae, type Cvae } from '../model/cvae.js';
import { cvaeLoss } from '../model/loss.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from '../model/checkpoint.js';
import { gridPng } from '../model/image-grid.js';
import { latentForSeed } from '../model/sampler.js';
import type { Preset } from '../model/presets.js';
import type { BatchSource } from './dataset.js';
import { bestStateFromHistory, INITIAL_BEST_STATE, shouldStopEarly, updateBest, type BestState } from './early-stopping.js';
import type { LossTerms } from '../model/loss.js';
import type { DoneReason, TrainingEvent } from './events.js';
import { lossCurvePng } from './loss-curve.js';
import { copyFileAtomic, writeFileAtomic } from '../util/durable-write.js';
import { mixSeeds } from '../util/prng.js';
import { remainingImages, ThroughputMeter } from './throughput.js';
import { imagesToTensor, trainStep } from './train-step.js';

const log = childLogger('trainer');

/** A fixed conditioning input of the per-epoch sample grid. */
export interface SampleEmbedding {
  label: string;
  embedding: Float32Array;
}

export interface TrainOptions {
  /** Architecture and training defaults. On resume it must name the checkpoint's preset. */
  preset: Preset;
  /** The (image, embedding) batches; `train` and `val` splits. */
  source: BatchSource;
  /** Run folder (see the module comment for its layout). */
  outDir: string;
  /** Target number of epochs of the whole run (resumed epochs included). Default: preset.train.epochs. */
  epochs?: number;
  /** Default: preset.train.batchSize (on resume: the run's). */
  batchSize?: number;
  /** Adam learning rate. Default: preset.train.learningRate (on resume: the run's). */
  learningRate?: number;
  /** Epochs without validation improvement before stopping; 0 disables. Default: preset.train.patience. */
  patience?: number;
  /** Clip gradients to this global L2 norm (off when absent or 0). */
  clipNorm?: number;
  /** Seed of the weight initialisation, the shuffles, eps/dropout and the sample grid. Default 0 (on resume: the run's). */
  seed?: number;
  /** Continue the run in `outDir` from `last/` (weights, optimizer state, epoch/step counters, loss history). */
  resume?: boolean;
  /** Aborting stops after the current step, saves `last/` and ends with reason 'stopped'. */
  signal?: AbortSignal;
  /** Receives every TrainingEvent (synchronously; keep it quick). */
  onEvent?: (event: TrainingEvent) => void;
  /** Fixed embeddings of the sample grid; default: the first `sampleCount` val examples' embeddings. */
  sampleEmbeddings?: SampleEmbedding[];
  /** Number of default sample embeddings (default 8). */
  sampleCount?: number;
  /** Checkpoint name written into meta (default: the folder name of `outDir`). */
  runName?: string;
}

/** One finished epoch, as kept in history.json. */
export interface EpochRecord {
  epoch: number;
  step: number;
  train: LossTerms;
  val: LossTerms;
  best: boolean;
  durationSec: number;
}

export interface TrainResult {
  reason: DoneReason;
  epochsCompleted: number;
  step: number;
  bestValLoss: number | null;
  bestEpoch: number | null;
  /** best/ when an epoch finished, else last/. */
  checkpointDir: string;
  lastCheckpointDir: string;
  /** Every finished epoch of the run (resumed ones included). */
  history: EpochRecord[];
}

/** Contents of history.json. */
export interface RunHistory {
  version: 1;
  preset: string;
  seed: number;
  batchSize: number;
  learningRate: number;
  clipNorm: number | null;
  patience: number;
  trainSize: number;
  valSize: number;
  datasetFingerprint: string;
  history: EpochRecord[];
}

interface RunSettings {
  epochs: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  clipNorm: number | null;
  seed: number;
}

/** Stream names of the seeds derived from the run seed. */
const SEED_STREAM = { init: 1, eps: 2, val: 3, sample: 4 } as const;

/**
 * Trains a CVAE. Emits 'start', a 'step' per optimizer step, an 'epoch' per finished epoch and one 'done'
 * (or 'error', after which the error is thrown). See TrainOptions and the module comment.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const emit = (e: TrainingEvent) => {
    try {
      opts.onEvent?.(e);
    } catch (err) {
      log.warn({ err, type: e.type }, 'training event handler threw; ignored');
    }
  };
  try {
    return await runTraining(opts, emit);
  } catch (err) {
    emit({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

async function runTraining(opts: TrainOptions, emit: (e: TrainingEvent) => void): Promise<TrainResult> {
  const { source, outDir } = opts;
  const lastDir = path.join(outDir, 'last');
  const bestDir = path.join(outDir, 'best');
  const samplesDir = path.join(outDir, 'samples');
  const historyPath = path.join(outDir, 'history.json');

  let preset = opts.preset;
  let previous: RunHistory | null = null;
  let restoredMeta: CheckpointMeta | null = null;
  if (opts.resume) {
    if (!existsSync(path.join(lastDir, 'meta.json'))) {
      throw new UserError(`There is no checkpoint to resume in ${outDir} (no last/meta.json). Start a new run without --resume, or pass the run's folder with --out.`);
    }
    previous = await readHistory(historyPath);
  }

  const settings: RunSettings = {
    epochs: positiveInt('epochs', opts.epochs ?? preset.train.epochs),
    batchSize: positiveInt('batch size', opts.batchSize ?? previous?.batchSize ?? preset.train.batchSize),
    learningRate: positiveNumber('learning rate', opts.learningRate ?? previous?.learningRate ?? preset.train.learningRate),
    patience: nonNegativeInt('patience', opts.patience ?? previous?.patience ?? preset.train.patience),
    clipNorm: opts.clipNorm ? positiveNumber('clip norm', opts.clipNorm) : opts.clipNorm === 0 ? null : (previous?.clipNorm ?? null),
    seed: opts.seed ?? previous?.seed ?? 0,
  };
  if (previous && opts.seed !== undefined && opts.seed !== previous.seed) {
    log.warn({ asked: opts.seed, run: previous.seed }, 'resume keeps the run seed; --seed ignored');
    settings.seed = previous.seed;
  }
  checkSource(source, preset);
  const trainSize = source.size('train');
  const valSize = source.size('val');
  if (trainSize === 0) throw new UserError('The dataset has no training examples. Build a dataset with images first.');
  if (valSize === 0) log.warn('the dataset has no val split: best-epoch selection and early stopping use the training loss');

  const optimizer = tf.train.adam(settings.learningRate);
  let cvae: Cvae;
  let history: EpochRecord[] = [];
  let epochsDone = 0;
  let step = 0;
  if (opts.resume) {
    const loaded = await loadCheckpoint(lastDir, { optimizer });
    cvae = loaded.cvae;
    restoredMeta = loaded.meta;
    if (!loaded.optimizerRestored) log.warn({ dir: lastDir }, 'the checkpoint has no optimizer state; Adam restarts from zero moments');
    if (restoredMeta.preset !== preset.name) {
      cvae.dispose();
      optimizer.dispose();
      throw new UserError(`The run in ${outDir} trains preset "${restoredMeta.preset}", not "${preset.name}". Resume it with --preset ${restoredMeta.preset}.`);
    }
    preset = cvae.preset;
    if (restoredMeta.datasetFingerprint !== source.fingerprint) {
      log.warn({ run: restoredMeta.datasetFingerprint, now: source.fingerprint }, 'resuming on a different dataset than the run started with');
    }
    epochsDone = restoredMeta.epoch;
    step = restoredMeta.step;
    history = (previous?.history ?? []).filter((h) => h.epoch <= epochsDone);
  } else {
    cvae = buildCvae(preset, { seed: mixSeeds(settings.seed, SEED_STREAM.init) % 1_000_000 });
  }

  const stepsPerEpoch = Math.ceil(trainSize / settings.batchSize);
  let skipSteps = opts.resume ? resumeSkip(step, epochsDone, stepsPerEpoch, previous, settings, trainSize) : 0;
  const totalSteps = step - skipSteps + Math.max(settings.epochs - epochsDone, 0) * stepsPerEpoch;
  let best: BestState = bestStateFromHistory(history.map((h) => ({ epoch: h.epoch, val: h.val })));
  if (history.length === 0 && restoredMeta?.bestValLoss !== undefined) {
    best = { ...INITIAL_BEST_STATE, bestValLoss: restoredMeta.bestValLoss };
  }
  await mkdir(samplesDir, { recursive: true });
  const samples = await resolveSampleEmbeddings(opts, source, samplesDir, Boolean(opts.resume));
  const sampleSeeds = samples.map((_, i) => mixSeeds(settings.seed, SEED_STREAM.sample, i) % 1_000_000);
  const runHistory = (): RunHistory => ({
    version: 1,
    preset: preset.name,
    seed: settings.seed,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    clipNorm: settings.clipNorm,
    patience: settings.patience,
    trainSize,
    valSize,
    datasetFingerprint: source.fingerprint,
    history,
  });
  const vars = cvae.trainableWeights();
  const runName = opts.runName ?? path.basename(path.resolve(outDir));
  const presetConfig: Preset = {
    ...preset,
    train: { learningRate: settings.learningRate, batchSize: settings.batchSize, epochs: settings.epochs, patience: settings.patience || preset.train.patience },
  };
  const metaFor = (losses: { train?: LossTerms; val?: LossTerms }): CheckpointMeta => ({
    name: runName,
    preset: preset.name,
    resolution: preset.resolution,
    conditioning: preset.conditioning,
    clipModel: source.clipModel,
    datasetFingerprint: source.fingerprint,
    epoch: epochsDone,
    step,
    losses,
    ...(best.bestValLoss !== null ? { bestValLoss: best.bestValLoss } : {}),
    createdAt: new Date().toISOString(),
    presetConfig,
  });

  log.info({ preset: preset.name, outDir, ...settings, trainSize, valSize, resumed: Boolean(opts.resume), epochsDone, step }, 'training');
  emit({
    type: 'start',
    preset: preset.name,
    resolution: preset.resolution,
    conditioning: preset.conditioning,
    epochs: settings.epochs,
    startEpoch: epochsDone + 1,
    startStep: step,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    seed: settings.seed,
    clipNorm: settings.clipNorm,
    patience: settings.patience,
    trainSize,
    valSize,
    stepsPerEpoch,
    totalSteps,
    trainableParams: cvae.trainableParams(),
    datasetFingerprint: source.fingerprint,
    resumed: Boolean(opts.resume),
    outDir,
    backend: tf.getBackend(),
  });

  await writeFileAtomic(historyPath, JSON.stringify(runHistory(), null, 1));
  const meter = new ThroughputMeter(0.1);
  let savedAtStep = -1;
  let reason: DoneReason = 'completed';
  let lastLosses: { train?: LossTerms; val?: LossTerms } = restoredMeta?.losses ?? {};
  try {
    if (best.bestEpoch !== null && shouldStopEarly(best, settings.patience)) reason = 'early-stop';
    for (let epochIndex = epochsDone; reason === 'completed' && epochIndex < settings.epochs; epochIndex++) {
      const epoch = epochIndex + 1;
      const epochStart = Date.now();
      const sums = new Float64Array(4);
      let seen = 0;
      let epochStep = 0;
      meter.mark(Date.now());
      for await (const batch of source.batches('train', settings.batchSize, { epoch: epochIndex, seed: settings.seed, shuffle: true })) {
        epochStep += 1;
        if (skipSteps > 0) {
          skipSteps -= 1; // resumed mid-epoch: these batches were trained on before the stop
          continue;
        }
        if (opts.signal?.aborted) {
          reason = 'stopped';
          break;
        }
        step += 1;
        const terms = await trainStep(cvae, optimizer, vars, batch, preset.resolution, source.embeddingDim, {
          seed: mixSeeds(settings.seed, SEED_STREAM.eps, step) % 1_000_000,
          clipNorm: settings.clipNorm,
        });
        if (!Number.isFinite(terms.total)) {
          throw new UserError(
            `Training diverged at epoch ${epoch}, step ${step}: the loss is ${terms.total}. ` +
              `Try a lower learning rate (--lr) or gradient clipping (--clip-norm 10); resume from ${lastDir} with --resume.`,
          );
        }
        sums[0] += terms.total * batch.size;
        sums[1] += terms.bce * batch.size;
        sums[2] += terms.kl * batch.size;
        sums[3] += terms.ssim * batch.size;
        seen += batch.size;
        const ips = meter.record(batch.size, Date.now());
        const eta = meter.etaSec(remainingImages({ epochIndex, epochs: settings.epochs, imagesDoneInEpoch: Math.min(epochStep * settings.batchSize, trainSize), imagesPerEpoch: trainSize }));
        emit({ type: 'step', epoch, step, totalSteps, epochStep, stepsPerEpoch, losses: terms, imagesPerSec: ips, etaSec: Number.isFinite(eta) ? eta : null });
        // Let signals, timers and I/O run between steps (the pure-JS backend computes synchronously).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (reason === 'stopped') break;
      const trainTerms: LossTerms = seen > 0
        ? { total: sums[0] / seen, bce: sums[1] / seen, kl: sums[2] / seen, ssim: sums[3] / seen }
        : (lastLosses.train ?? nanTerms());
      const valTerms = valSize > 0 ? await validate(cvae, source, settings, preset.resolution) : trainTerms;
      epochsDone = epoch;
      const update = updateBest(best, epoch, valTerms.total);
      best = update.state;
      const record: EpochRecord = { epoch, step, train: trainTerms, val: valTerms, best: update.improved, durationSec: (Date.now() - epochStart) / 1000 };
      history.push(record);
      lastLosses = { train: trainTerms, val: valTerms };

      const samplePng = path.join(samplesDir, `epoch-${String(epoch).padStart(4, '0')}.png`);
      const curvePng = path.join(outDir, 'loss-curve.png');
      await writeFileAtomic(samplePng, await renderSampleGrid(cvae, samples, sampleSeeds));
      await writeFileAtomic(
        curvePng,
        await lossCurvePng(history.map((h) => ({ epoch: h.epoch, train: h.train.total, val: h.val.total })), { title: `${preset.name}: loss per image` }),
      );
      // history first, then the checkpoint: a crash in between leaves a history one epoch ahead, which resume trims.
      await writeFileAtomic(historyPath, JSON.stringify(runHistory(), null, 1));
      await saveCheckpoint(lastDir, cvae, metaFor(lastLosses), { optimizer });
      savedAtStep = step;
      await copyArtefacts(lastDir, samplePng, curvePng);
      if (update.improved) {
        await saveCheckpoint(bestDir, cvae, metaFor(lastLosses));
        await copyArtefacts(bestDir, samplePng, curvePng);
      }
      emit({
        type: 'epoch',
        epoch,
        epochs: settings.epochs,
        step,
        train: trainTerms,
        val: valTerms,
        best: update.improved,
        bestValLoss: best.bestValLoss ?? Number.NaN,
        bestEpoch: best.bestEpoch ?? epoch,
        epochsSinceBest: best.epochsSinceBest,
        samplePng,
        lossCurvePng: curvePng,
        checkpointDir: lastDir,
        durationSec: record.durationSec,
      });
      log.info({ epoch, train: trainTerms.total, val: valTerms.total, best: update.improved }, 'epoch done');
      if (shouldStopEarly(best, settings.patience) && epoch < settings.epochs) reason = 'early-stop';
      if (opts.signal?.aborted && reason === 'completed' && epoch < settings.epochs) reason = 'stopped';
    }
    if (reason === 'stopped' && savedAtStep !== step) {
      // Save where we are (mid-epoch weights included); meta.epoch counts finished epochs, meta.step the steps.
      await saveCheckpoint(lastDir, cvae, metaFor(lastLosses), { optimizer });
      log.info({ epochsDone, step }, 'training stopped; checkpoint saved');
    }
  } finally {
    optimizer.dispose();
    cvae.dispose();
  }
  const checkpointDir = best.bestEpoch !== null && existsSync(path.join(bestDir, 'meta.json')) ? bestDir : lastDir;
  const result: TrainResult = {
    reason,
    epochsCompleted: epochsDone,
    step,
    bestValLoss: best.bestValLoss,
    bestEpoch: best.bestEpoch,
    checkpointDir,
    lastCheckpointDir: lastDir,
    history,
  };
  emit({ type: 'done', reason, bestValLoss: best.bestValLoss, bestEpoch: best.bestEpoch, epochsCompleted: epochsDone, step, checkpointDir, lastCheckpointDir: lastDir });
  return result;
}

/** Mean loss terms over the whole val split (inference mode, fixed eps seeds), weighted by batch size. */
async function validate(cvae: Cvae, source: BatchSource, settings: RunSettings, resolution: number): Promise<LossTerms> {
  const sums = new Float64Array(4);
  let seen = 0;
  let index = 0;
  for await (const batch of source.batches('val', settings.batchSize, { epoch: 0, seed: settings.seed, shuffle: false })) {
    index += 1;
    const seed = mixSeeds(settings.seed, SEED_STREAM.val, index) % 1_000_000;
    const t = tf.tidy(() => {
      const x = imagesToTensor(batch.images, batch.size, resolution);
      const emb = tf.tensor2d(batch.embeddings, [batch.size, source.embeddingDim]);
      const out = cvae.forward(x, emb, { training: false, seed });
      const l = cvaeLoss(x, out.xHat, out.mu, out.logvar);
      return tf.stack([l.total, l.bce, l.kl, l.ssim]);
    });
    const v = await t.data();
    t.dispose();
    for (let i = 0; i < 4; i++) sums[i] += v[i] * batch.size;
    seen += batch.size;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { total: sums[0] / seen, bce: sums[1] / seen, kl: sums[2] / seen, ssim: sums[3] / seen };
}

/** Decodes the fixed sample embeddings with fixed latent seeds into a grid PNG (the same images `sample` gives for these seeds). */
async function renderSampleGrid(cvae: Cvae, samples: SampleEmbedding[], seeds: number[]): Promise<Buffer> {
  const r = cvae.resolution;
  const pixels = tf.tidy(() => {
    const z = tf.stack(seeds.map((s) => latentForSeed(s, cvae.latentDim))) as tf.Tensor2D;
    const emb = tf.tensor2d(concatFloat(samples.map((s) => s.embedding)), [samples.length, samples[0].embedding.length]);
    return tf.cast(tf.round(tf.mul(tf.clipByValue(cvae.decode(z, emb), 0, 1), 255)), 'int32');
  });
  const data = await pixels.data();
  pixels.dispose();
  const each = r * r * 3;
  const images = samples.map((_, i) => Uint8Array.from(data.subarray(i * each, (i + 1) * each)));
  const columns = Math.min(images.length, 4);
  const scale = Math.max(1, Math.floor(128 / r));
  return gridPng(images, r, { columns, scale, gap: 2 });
}

function concatFloat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** The sample embeddings: given, else stored by the run (resume), else the first val (or train) examples'. */
async function resolveSampleEmbeddings(opts: TrainOptions, source: BatchSource, samplesDir: string, resume: boolean): Promise<SampleEmbedding[]> {
  const file = path.join(samplesDir, 'embeddings.json');
  if (opts.sampleEmbeddings?.length) {
    for (const s of opts.sampleEmbeddings) {
      if (s.embedding.length !== source.embeddingDim) {
        throw new UserError(`Sample embedding "${s.label}" has ${s.embedding.length} values; the dataset's embeddings have ${source.embeddingDim}.`);
      }
    }
    await writeFileAtomic(file, JSON.stringify(opts.sampleEmbeddings.map((s) => ({ label: s.label, embedding: Array.from(s.embedding) }))));
    return opts.sampleEmbeddings;
  }
  if (resume && existsSync(file)) {
    const stored = JSON.parse(await readFile(file, 'utf8')) as { label: string; embedding: number[] }[];
    return stored.map((s) => ({ label: s.label, embedding: Float32Array.from(s.embedding) }));
  }
  const count = Math.max(1, opts.sampleCount ?? 8);
  const split = source.size('val') > 0 ? 'val' : 'train';
  const out: SampleEmbedding[] = [];
  for await (const batch of source.batches(split, Math.min(count, 64), { epoch: 0, seed: 0, shuffle: false })) {
    for (let i = 0; i < batch.size && out.length < count; i++) {
      out.push({
        label: `${split} #${out.length}`,
        embedding: batch.embeddings.slice(i * source.embeddingDim, (i + 1) * source.embeddingDim),
      });
    }
    if (out.length >= count) break;
  }
  await writeFileAtomic(file, JSON.stringify(out.map((s) => ({ label: s.label, embedding: Array.from(s.embedding) }))));
  return out;
}

/**
 * Batches of the unfinished epoch that were trained on before a stop, to skip on resume so that the run
 * continues exactly where it stopped (the shuffle order is a function of seed and epoch). 0 when the epoch
 * must restart because the batch size or the data changed.
 */
function resumeSkip(step: number, epochsDone: number, stepsPerEpoch: number, previous: RunHistory | null, settings: RunSettings, trainSize: number): number {
  if (!previous) return 0;
  const stepAtEpochStart = epochsDone === 0 ? 0 : previous.history.find((h) => h.epoch === epochsDone)?.step;
  if (stepAtEpochStart === undefined) return 0;
  const into = step - stepAtEpochStart;
  if (into <= 0) return 0;
  if (previous.batchSize !== settings.batchSize || previous.trainSize !== trainSize || into >= stepsPerEpoch) {
    log.warn({ into }, 'resume: batch size or data changed since the stop; the unfinished epoch restarts from its beginning');
    return 0;
  }
  return into;
}

async function readHistory(file: string): Promise<RunHistory | null> {
  if (!existsSync(file)) return null;
  try {
    const h = JSON.parse(await readFile(file, 'utf8')) as RunHistory;
    return h.version === 1 && Array.isArray(h.history) ? h : null;
  } catch (err) {
    log.warn({ err, file }, 'history.json unreadable; the loss history restarts');
    return null;
  }
}

function checkSource(source: BatchSource, preset: Preset): void {
  if (source.resolution !== preset.resolution) {
    throw new UserError(`The dataset has ${source.resolution}px images but preset ${preset.name} needs ${preset.resolution}px. Build the dataset at ${preset.resolution}px or pick a ${source.resolution}px preset.`);
  }
  if (source.embeddingDim !== preset.embeddingDim) {
    throw new UserError(`The dataset's embeddings have ${source.embeddingDim} values but preset ${preset.name} expects ${preset.embeddingDim}.`);
  }
}

/** Puts copies of the epoch's PNGs into a checkpoint folder (atomically: readers never see half a file). */
async function copyArtefacts(dir: string, samplePng: string, curvePng: string): Promise<void> {
  for (const [from, name] of [[samplePng, 'samples.png'], [curvePng, 'loss-curve.png']] as const) {
    await copyFileAtomic(from, path.join(dir, name));
  }
}

function nanTerms(): LossTerms {
  return { total: Number.NaN, bce: Number.NaN, kl: Number.NaN, ssim: Number.NaN };
}

function positiveInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`The ${what} must be a whole number of at least 1 (got ${v}).`);
  return v;
}

function nonNegativeInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new UserError(`The ${what} must be a whole number of at least 0 (got ${v}).`);
  return v;
}

function positiveNumber(what: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new UserError(`The ${what} must be a positive number (got ${v}).`);
  return v;
}
