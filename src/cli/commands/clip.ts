/**
 * `clip train`: trains the scene CLIP (the offline demo's own CLIP, Hugging Face architecture, transformers.js
 * layout) on a captioned dataset, with a progress bar, then checks text-to-image retrieval through the
 * embedder the bot uses.
 *
 *   clip train --dataset DIR --out DIR [--steps 1500] [--batch-size 128] [--lr 0.001] [--seed 1]
 *              [--width 64] [--layers 2] [--heads 4] [--patch 8] [--projection 128] [--no-eval] [--json]
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { initBackend } from '../../model/backend.js';
import { runSceneClipTraining, SCENE_CLIP_SIZES, type SceneClipRunResult } from '../../training/clip/scene-clip-run.js';
import { DEFAULT_HARD_NEGATIVES } from '../../training/clip/train-scene-clip.js';
import { formatDuration } from '../../training/throughput.js';

interface ClipTrainOptions {
  dataset: string;
  out: string;
  steps: string;
  batchSize: string;
  lr: string;
  seed: string;
  hardNegatives: string;
  width?: string;
  layers?: string;
  heads?: string;
  patch?: string;
  projection?: string;
  eval: boolean;
  json?: boolean;
}

function intOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`--${name} must be an integer between ${min} and ${max}, got "${value}"`);
  return n;
}

function numberOption(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`--${name} must be a positive number, got "${value}"`);
  return n;
}

/** One paragraph saying what was trained and how well it retrieves. */
export function formatClipTrainSummary(r: SceneClipRunResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `scene CLIP: ${r.parameters.toLocaleString('en-US')} parameters, vocabulary ${r.vocabSize}, trained ${r.steps} steps on ` +
      `${r.images} images / ${r.captions} captions in ${formatDuration(r.seconds)} (final loss ${r.finalLoss.toFixed(3)}) → ${r.out}`,
  ];
  if (r.retrieval) {
    const x = r.retrieval;
    lines.push(
      `retrieval on ${x.images} renders of unseen scenes, ${x.prompts} held-out prompts: top image right on sky and ground ${pct(x.skyGround)} ` +
        `(sky ${pct(x.sky)}, ground ${pct(x.ground)}), on the species named ${pct(x.species)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `clip train` with parsed options. */
export async function runClipTrain(opts: ClipTrainOptions): Promise<SceneClipRunResult> {
  const steps = intOption('steps', opts.steps, 1, 1_000_000);
  const batchSize = intOption('batch-size', opts.batchSize, 2, 4096);
  const learningRate = numberOption('lr', opts.lr);
  const seed = intOption('seed', opts.seed, 0, 0xffffffff);
  const hardNegatives = Number(opts.hardNegatives);
  if (!(hardNegatives >= 0 && hardNegatives < 1)) throw new UserError(`--hard-negatives must be a share from 0 to below 1, got "${opts.hardNegatives}"`);
  const sizes: Partial<Record<keyof typeof SCENE_CLIP_SIZES, number>> = {};
  if (opts.width) sizes.width = intOption('width', opts.width, 8, 1024);
  if (opts.layers) sizes.layers = intOption('layers', opts.layers, 1, 24);
  if (opts.heads) sizes.heads = intOption('heads', opts.heads, 1, 64);
  if (opts.patch) sizes.patchSize = intOption('patch', opts.patch, 2, 64);
  if (opts.projection) sizes.projectionDim = intOption('projection', opts.projection, 8, 4096);
  const width = sizes.width ?? SCENE_CLIP_SIZES.width;
  if (width % (sizes.heads ?? SCENE_CLIP_SIZES.heads) !== 0) throw new UserError(`--width ${width} must be a multiple of --heads`);
  if (opts.width) sizes.mlp = 4 * width;
  await initBackend();
  const tty = Boolean(process.stderr.isTTY);
  let lastLine = 0;
  const bars = new cliProgress.MultiBar(
    { stream: process.stderr, hideCursor: true, clearOnComplete: false, gracefulExit: false, format: '{stage} [{bar}] {percentage}% {value}/{total} | {info}' },
    cliProgress.Presets.shades_classic,
  );
  let loadBar: cliProgress.SingleBar | null = null;
  let trainBar: cliProgress.SingleBar | null = null;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  try {
    const result = await runSceneClipTraining({
      dataset: path.resolve(opts.dataset),
      out: path.resolve(opts.out),
      steps,
      batchSize,
      learningRate,
      seed,
      hardNegatives,
      sizes,
      skipEval: !opts.eval,
      signal: stop.signal,
      onLoad: (done, total) => {
        if (!tty) return;
        loadBar ??= bars.create(total, 0, { stage: 'images', info: 'reading' });
        loadBar.update(done, { info: done === total ? 'done' : 'reading' });
      },
      onProgress: (p) => {
        const info = `loss ${p.smoothedLoss.toFixed(3)} | scale ${p.logitScale.toFixed(1)} | ${p.imagesPerSec.toFixed(0)} img/s | ETA ${formatDuration(p.etaSec)}`;
        if (!tty) {
          // Not a terminal (a log file, CI): a plain line at most every 30 s instead of a bar.
          if (Date.now() - lastLine >= 30_000 || p.step === p.steps) {
            lastLine = Date.now();
            process.stderr.write(`clip train: step ${p.step}/${p.steps} | ${info}\n`);
          }
          return;
        }
        trainBar ??= bars.create(p.steps, 0, { stage: 'train ', info: '' });
        trainBar.update(p.step, { info });
      },
    });
    bars.stop();
    // --json: the summary figures; the per-prompt items are in the folder's eval.json.
    process.stdout.write(opts.json ? `${JSON.stringify({ ...result, retrieval: result.retrieval && { ...result.retrieval, items: undefined } })}\n` : formatClipTrainSummary(result));
    return result;
  } finally {
    bars.stop();
    process.off('SIGINT', onSignal);
  }
}

export function register(program: Command): void {
  const clip = program.command('clip').description('the scene CLIP of the offline demo');
  clip
    .command('train')
    .description('train a small CLIP (Hugging Face architecture, transformers.js layout) contrastively on a captioned dataset')
    .requiredOption('--dataset <dir>', 'dataset folder in COCO captions layout (e.g. from `dataset synth`)')
    .requiredOption('--out <dir>', 'model folder to write (loadable with CLIP_MODEL=<dir>)')
    .option('--steps <n>', 'training steps', '1500')
    .option('--batch-size <n>', 'images per step', '128')
    .option('--lr <x>', 'peak learning rate (Adam, warm-up then cosine decay)', '0.001')
    .option('--seed <n>', 'seed of the initial weights and the batch order', '1')
    .option('--hard-negatives <share>', 'share of each batch taken as look-alike images (nearest neighbours by the current image embeddings)', String(DEFAULT_HARD_NEGATIVES))
    .option('--width <n>', `width of both towers (default ${SCENE_CLIP_SIZES.width}; the MLPs are 4x)`)
    .option('--layers <n>', `transformer layers per tower (default ${SCENE_CLIP_SIZES.layers})`)
    .option('--heads <n>', `attention heads (default ${SCENE_CLIP_SIZES.heads})`)
    .option('--patch <n>', `vision patch size in pixels (default ${SCENE_CLIP_SIZES.patchSize})`)
    .option('--projection <n>', `size of the shared embedding (default ${SCENE_CLIP_SIZES.projectionDim})`)
    .option('--no-eval', 'skip the retrieval check on renders of unseen scenes')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: ClipTrainOptions) => {
      await runClipTrain(opts);
    });
}
