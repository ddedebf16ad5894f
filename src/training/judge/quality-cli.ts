/**
 * The command line of `npm run quality` (entry: scripts/quality-check.ts):
 *
 *   npm run quality -- [--checkpoint models/demo] [--judge models/scene-judge] [--prompts 64] [--seeds 4]
 *                      [--prompt-seed 7] [--prompt "text" ...] [--synth-seed 1 --synth-count 4000]
 *                      [--clip-model ID_OR_DIR] [--engine auto|onnx|tfjs] [--json FILE]
 *
 * Without --prompt it draws held-out prompts from the scene grammar (all 16 sky × ground combinations in
 * balanced blocks; prompts that appear verbatim among the demo dataset's captions are left out); with
 * --prompt it checks those texts instead, expecting the sky, ground and species their words name.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { isUserError, UserError } from '../../errors.js';
import { repoRoot } from '../../paths.js';
import { heldOutPrompts, synthItem } from '../data/synth/index.js';
import { adHocPrompt, formatQualityReport, runQualityCheck, type QualityPrompt } from './quality.js';
import { JUDGE_INFO_FILE, JUDGE_RESOLUTION, SceneJudge } from './scene-judge.js';

/** Default judge folder (committed with the repository). */
export const DEFAULT_JUDGE_DIR = path.join(repoRoot, 'models', 'scene-judge');

/** Where the command writes (tests pass their own). */
export interface QualityCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

interface QualityCliOptions {
  checkpoint: string;
  judge: string;
  prompts: string;
  seeds: string;
  promptSeed: string;
  prompt: string[];
  synthSeed: string;
  synthCount: string;
  clipModel?: string;
  engine: string;
  json?: string;
}

/** Every caption of the first `count` images of the synthetic dataset drawn with `seed` (a pure function). */
export function synthCaptions(seed: number, count: number): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < count; i++) for (const c of synthItem(seed, i).captions) out.add(c);
  return out;
}

function wholeNumber(name: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new UserError(`--${name} must be a whole number of at least ${min}, got "${value}".`);
  return n;
}

async function checkFolder(dir: string, file: string, what: string, help: string): Promise<void> {
  try {
    await fsp.access(path.join(dir, file));
  } catch {
    throw new UserError(`No ${what} in ${dir} (no ${file} there). ${help}`);
  }
}

function buildProgram(): Command {
  return new Command('quality-check')
    .description('what a text-conditioned checkpoint draws for held-out prompts, read by the scene judge')
    .option('--checkpoint <dir>', 'checkpoint folder', path.join(repoRoot, 'models', 'demo'))
    .option('--judge <dir>', 'scene judge folder (judge train --out)', DEFAULT_JUDGE_DIR)
    .option('--prompts <n>', 'held-out prompts (a multiple of 16 is balanced)', '64')
    .option('--seeds <n>', 'sampling seeds per prompt', '4')
    .option('--prompt-seed <n>', 'seed of the held-out prompt draw', '7')
    .option('--prompt <text>', 'check this prompt instead of held-out ones (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--synth-seed <n>', 'seed of the synthetic training set (its captions are not used as prompts)', '1')
    .option('--synth-count <n>', 'images in the synthetic training set (0: exclude nothing)', '4000')
    .option('--clip-model <idOrDir>', 'CLIP model (default: the one the checkpoint records)')
    .option('--engine <name>', 'sampler engine: auto, onnx or tfjs', 'auto')
    .option('--json <file>', 'also write the report as JSON')
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
}

/**
 * Runs the quality check as the command line asks and prints the report.
 * @returns the exit status: 0, or 1 after printing the error (a UserError without a stack trace)
 */
export async function qualityCli(argv: readonly string[], io: QualityCliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    await runQualityCli(argv, io);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0;
      io.stderr.write(`${err.message}\n`);
      return err.exitCode || 1;
    }
    if (isUserError(err)) {
      io.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

async function runQualityCli(argv: readonly string[], io: QualityCliIo): Promise<void> {
  const o = buildProgram().parse([...argv], { from: 'user' }).opts<QualityCliOptions>();
  const engines = ['auto', 'onnx', 'tfjs'] as const;
  if (!(engines as readonly string[]).includes(o.engine)) throw new UserError(`--engine must be one of ${engines.join(', ')}, got "${o.engine}".`);
  const promptCount = wholeNumber('prompts', o.prompts, 1);
  const seedCount = wholeNumber('seeds', o.seeds, 1);
  const promptSeed = wholeNumber('prompt-seed', o.promptSeed, 0);
  const synthSeed = wholeNumber('synth-seed', o.synthSeed, 0);
  const synthCount = wholeNumber('synth-count', o.synthCount, 0);
  // Both folders are checked before anything slow loads.
  await checkFolder(o.judge, JUDGE_INFO_FILE, 'scene judge', 'Train one with `npm run cli -- judge train --out models/scene-judge`, or pass --judge with the folder of one.');
  await checkFolder(o.checkpoint, 'meta.json', 'checkpoint', 'Pass --checkpoint with a checkpoint folder (one with meta.json, e.g. models/demo).');

  const { initBackend } = await import('../../model/backend.js');
  const { createSampler } = await import('../../model/sampler-factory.js');
  const { ClipEmbedder } = await import('../../model/clip/embedder.js');
  const { resolveRecordedClipModel } = await import('../../model/clip/model-source.js');
  await initBackend();
  const judge = await SceneJudge.load(o.judge);
  const sampler = await createSampler(o.checkpoint, { engine: o.engine as (typeof engines)[number] });
  try {
    if (sampler.resolution !== JUDGE_RESOLUTION) {
      throw new UserError(`${o.checkpoint} draws ${sampler.resolution} px images; the scene judge reads ${JUDGE_RESOLUTION} px. Check a ${JUDGE_RESOLUTION} px checkpoint.`);
    }
    if (sampler.meta.conditioning !== 'text') {
      io.stderr.write(`note: ${o.checkpoint} is ${sampler.meta.conditioning}-conditioned; prompts are still text embeddings\n`);
    }
    const embedder = await ClipEmbedder.load({ model: o.clipModel ?? resolveRecordedClipModel(sampler.meta.clipModel) });
    try {
      let prompts: QualityPrompt[];
      let excluded = 0;
      if (o.prompt.length > 0) {
        prompts = o.prompt.map(adHocPrompt);
      } else {
        const exclude = synthCount > 0 ? synthCaptions(synthSeed, synthCount) : new Set<string>();
        excluded = exclude.size;
        prompts = heldOutPrompts(promptSeed, promptCount, { exclude });
      }
      const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
      const t0 = performance.now();
      const report = await runQualityCheck(sampler, embedder, judge, prompts, { seeds });
      io.stdout.write(`${o.checkpoint} (${sampler.engine}), judged by ${o.judge}\n${formatQualityReport(report, judge.info.heldOut)}`);
      if (o.json) {
        const summary = {
          checkpoint: path.relative(repoRoot, path.resolve(o.checkpoint)) || '.',
          engine: sampler.engine,
          clipModel: sampler.meta.clipModel,
          judge: { dir: path.relative(repoRoot, path.resolve(o.judge)) || '.', heldOut: judge.info.heldOut },
          promptSeed: o.prompt.length > 0 ? null : promptSeed,
          excludedTrainingCaptions: o.prompt.length > 0 ? null : { synthSeed, synthCount, captions: excluded },
          elapsedMs: Math.round(performance.now() - t0),
          ...report,
        };
        await fsp.writeFile(o.json, JSON.stringify(summary, null, 2) + '\n');
        io.stdout.write(`wrote ${o.json}\n`);
      }
    } finally {
      await embedder.dispose();
    }
  } finally {
    sampler.dispose();
    judge.dispose();
  }
}
