/**
 * `train`: trains a CVAE preset on a dataset cache (or a synthetic in-memory set) with a progress bar on
 * stderr, or one JSON TrainingEvent per line on stdout (`--json-events`, read by the bot's training runner).
 * SIGINT/SIGTERM stop the run after the current step and save a checkpoint first; a second signal (more than
 * 1.5 s later: copies relayed by npm or a shell arrive together) quits at once (checkpoints are written
 * atomically, so nothing is left half-written).
 *
 *   train --preset NAME (--dataset DIR | --synthetic N) [--epochs N] [--batch-size N] [--lr X] [--seed S]
 *         [--clip-norm X] [--patience N] [--out DIR] [--resume] [--sample-embeddings FILE] [--json-events]
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import { dataDir } from '../../paths.js';
import { initBackend } from '../../model/backend.js';
import { readEmbeddingFile } from '../../model/embedding-file.js';
import { getPreset, type Preset } from '../../model/presets.js';
import type { BatchSource } from '../../training/dataset.js';
import { formatEventLine, type TrainingEvent } from '../../training/events.js';
import { TrainingProgressBar } from '../../training/progress-bar.js';
import { createSyntheticMemoryDataset } from '../../training/synthetic-memory.js';
import { train } from '../../training/trainer.js';

const log = childLogger('cli-train');

/** A repeated SIGINT/SIGTERM this long after the first one quits without waiting for the checkpoint. */
const FORCE_QUIT_AFTER_MS = 1500;

export interface TrainCliOptions {
  preset: string;
  dataset?: string;
  synthetic?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  clipNorm?: number;
  patience?: number;
  out?: string;
  resume?: boolean;
  jsonEvents?: boolean;
  sampleEmbeddings?: string;
  conditioning?: 'image' | 'text';
  zDropout?: number;
}

function parser(name: string, opts: { integer?: boolean; min: number; max?: number; exclusiveMin?: boolean }) {
  return (value: string): number => {
    const n = Number(value);
    const tooSmall = opts.exclusiveMin ? n <= opts.min : n < opts.min;
    if (value.trim() === '' || !Number.isFinite(n) || tooSmall || (opts.max !== undefined && n > opts.max) || (opts.integer && !Number.isInteger(n))) {
      const range = `${opts.exclusiveMin ? 'above' : 'at least'} ${opts.min}${opts.max !== undefined ? ` and at most ${opts.max}` : ''}`;
      throw new UserError(`--${name} must be ${opts.integer ? 'a whole number' : 'a number'} ${range}, got "${value}".`);
    }
    return n;
  };
}

/** `<preset>-YYYYMMDD-HHMMSS` */
function timestampedName(preset: string, now = new Date()): string {
  return `${preset}-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
}

/** The newest run folder of a preset under `<DATA_DIR>/checkpoints` that has a `last/` checkpoint. */
async function latestRun(preset: string): Promise<string | null> {
  const root = path.join(dataDir(), 'checkpoints');
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return null;
  }
  const runs = names
    .filter((n) => n.startsWith(`${preset}-`) && existsSync(path.join(root, n, 'last', 'meta.json')))
    .sort();
  return runs.length ? path.join(root, runs[runs.length - 1]) : null;
}

async function runSeed(outDir: string): Promise<number | undefined> {
  try {
    const h = JSON.parse(await readFile(path.join(outDir, 'history.json'), 'utf8')) as { seed?: unknown };
    return typeof h.seed === 'number' ? h.seed : undefined;
  } catch {
    return undefined;
  }
}

async function openSource(o: TrainCliOptions, preset: Preset, seed: number): Promise<BatchSource> {
  if (o.dataset !== undefined && o.synthetic !== undefined) throw new UserError('Give either --dataset DIR or --synthetic N, not both.');
  if (o.synthetic !== undefined) {
    return createSyntheticMemoryDataset({ count: o.synthetic, resolution: preset.resolution, embeddingDim: preset.embeddingDim, seed });
  }
  if (o.dataset === undefined) {
    throw new UserError('Say what to train on: --dataset DIR (a cache made by `dataset build`) or --synthetic N (N random pictures, for a quick try).');
  }
  const { openDatasetCache } = await import('../../training/data/cache-loader.js');
  return openDatasetCache(o.dataset, { conditioning: preset.conditioning });
}

/**
 * The preset with the command line's architecture overrides (the seed's comparison: image vs text
 * conditioning, dropout on z or none). The checkpoint records the preset it was trained with, overrides
 * included, so serving and resuming read them back.
 */
export function withOverrides(preset: Preset, o: Pick<TrainCliOptions, 'conditioning' | 'zDropout'>): Preset {
  if (o.conditioning === undefined && o.zDropout === undefined) return preset;
  if (o.conditioning !== undefined && o.conditioning !== 'image' && o.conditioning !== 'text') {
    throw new UserError(`--conditioning must be image or text, got "${String(o.conditioning)}".`);
  }
  return { ...preset, conditioning: o.conditioning ?? preset.conditioning, dropout: o.zDropout ?? preset.dropout };
}

/** Where the command writes: events/results (stdout) and the progress bar (stderr). */
export interface TrainOutput {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Runs the command; exported for in-process use (tests pass their own output streams). */
export async function runTrain(o: TrainCliOptions, out: TrainOutput = { stdout: process.stdout, stderr: process.stderr }): Promise<void> {
  const preset = withOverrides(getPreset(o.preset), o);
  let outDir: string;
  if (o.out) outDir = path.resolve(o.out);
  else if (o.resume) {
    const latest = await latestRun(preset.name);
    if (!latest) throw new UserError(`There is no run of preset ${preset.name} under ${path.join(dataDir(), 'checkpoints')} to resume. Pass its folder with --out DIR.`);
    outDir = latest;
  } else outDir = path.join(dataDir(), 'checkpoints', timestampedName(preset.name));
  if (!o.resume && existsSync(path.join(outDir, 'last', 'meta.json'))) {
    throw new UserError(`${outDir} already holds a training run. Continue it with --resume, or pick another --out folder.`);
  }
  const seed = o.seed ?? (o.resume ? await runSeed(outDir) : undefined) ?? 0;
  await initBackend();
  const source = await openSource(o, preset, seed);
  const sampleEmbeddings = o.sampleEmbeddings
    ? (await readEmbeddingFile(o.sampleEmbeddings, preset.embeddingDim)).map((embedding, i) => ({ label: `${path.basename(o.sampleEmbeddings!)} #${i + 1}`, embedding }))
    : undefined;

  const controller = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (!firstSignalAt) {
      firstSignalAt = now;
      log.warn({ signal }, 'stopping after the current step; saving a checkpoint (send the signal again to quit at once)');
      controller.abort(new Error(`received ${signal}`));
    } else if (now - firstSignalAt > FORCE_QUIT_AFTER_MS) {
      log.warn({ signal }, 'quitting without waiting for the checkpoint');
      process.exit(130);
    }
    // A second signal right after the first is the same Ctrl-C relayed by a parent (npm, a shell): ignore it.
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const bar = o.jsonEvents ? null : new TrainingProgressBar({ stream: out.stderr });
  const onEvent = (e: TrainingEvent) => {
    if (o.jsonEvents) out.stdout.write(`${formatEventLine(e)}\n`);
    else bar!.handle(e);
  };
  try {
    const result = await train({
      preset,
      source,
      outDir,
      epochs: o.epochs,
      batchSize: o.batchSize,
      learningRate: o.lr,
      patience: o.patience,
      clipNorm: o.clipNorm,
      seed: o.resume && o.seed === undefined ? undefined : seed,
      resume: o.resume,
      signal: controller.signal,
      onEvent,
      sampleEmbeddings,
    });
    if (!o.jsonEvents) {
      out.stdout.write(
        `${result.reason === 'completed' ? 'finished' : result.reason === 'early-stop' ? 'stopped early' : 'stopped'}: ` +
          `${result.epochsCompleted} epochs, best val loss ${result.bestValLoss === null ? 'n/a' : result.bestValLoss.toFixed(2)}\n` +
          `checkpoint: ${result.checkpointDir}\nresume point: ${result.lastCheckpointDir}\n`,
      );
    }
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Adds `train` to the program. */
export function register(program: Command): void {
  program
    .command('train')
    .description('Train a CVAE preset on a dataset cache (or synthetic data); Ctrl-C / SIGTERM save a checkpoint and stop')
    .requiredOption('--preset <name>', 'model preset (see `model info`)')
    .option('--dataset <dir>', 'dataset cache folder made by `dataset build`')
    .option('--synthetic <n>', 'train on N synthetic random pictures with random unit embeddings (quick tries, tests)', parser('synthetic', { integer: true, min: 2 }))
    .option('--epochs <n>', 'target epochs of the run (default: the preset\'s)', parser('epochs', { integer: true, min: 1 }))
    .option('--batch-size <n>', 'batch size (default: the preset\'s)', parser('batch-size', { integer: true, min: 1 }))
    .option('--lr <x>', 'Adam learning rate (default: the preset\'s)', parser('lr', { min: 0, exclusiveMin: true }))
    .option('--seed <s>', 'seed of weights, shuffles, noise and sample grid (default 0)', parser('seed', { integer: true, min: 0 }))
    .option('--clip-norm <x>', 'clip gradients to this global L2 norm', parser('clip-norm', { min: 0, exclusiveMin: true }))
    .option('--patience <n>', 'early stopping: epochs without val improvement (0: off; default: the preset\'s)', parser('patience', { integer: true, min: 0 }))
    .option('--out <dir>', 'run folder (default: <DATA_DIR>/checkpoints/<preset>-<timestamp>)')
    .option('--resume', 'continue the run in --out (default: the newest run of the preset) from its last checkpoint')
    .option('--sample-embeddings <file>', 'embeddings for the per-epoch sample grid (formats of `sample --embedding-file`, e.g. `embed` output); default: the first val examples')
    .option('--conditioning <kind>', "condition on CLIP 'image' or 'text' embeddings (default: the preset's)")
    .option('--z-dropout <x>', "dropout rate on z while training, 0 for none (default: the preset's)", parser('z-dropout', { min: 0, max: 0.95 }))
    .option('--json-events', 'print one JSON training event per line on stdout instead of the progress bar')
    .action(async (o: TrainCliOptions) => {
      await runTrain(o);
    });
}
