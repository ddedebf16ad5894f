/**
 * Rebuilds the offline demo from a clean clone, offline, in one command:
 *
 *   npm run demo:train                                  # the shipped recipe (RECIPE below)
 *   npm run demo:train -- --count 800 --clip-steps 100 --epochs 1 --out tmp/demo-try --clip-out tmp/demo-try-clip
 *
 * Stages (each one a CLI command with its own progress bar, so every stage can also be run by hand):
 * 1. `dataset synth`  COUNT synthetic 64 px scenes with captions (fixed seed)
 * 2. `clip train`     the scene CLIP, trained contrastively on those scenes → CLIP_OUT (models/scene-clip);
 *    `judge train`    from here on, on the second core (the wasm backend uses one per process): the scene
 *                     judge that scores what the demo draws → models/scene-judge (skipped with --reuse-judge);
 *                     only stage 6 waits for it
 * 3. `dataset build`  image and caption embeddings of the scenes with the scene CLIP
 * 4. `train`          the `demo` preset with the recipe's conditioning and dropout on z
 * 5. package          best epoch without optimizer state, CLIP recorded as the repo-relative CLIP_OUT, float16
 *                     weights, ONNX export of the decoder, a sample grid of held-out prompts
 * 6. quality          `npm run quality` with the scene judge → OUT/quality.json
 *
 * Intermediate files go to `--work` (default tmp/demo-build, git-ignored). Everything is seeded, but the
 * floating-point sums of the backend may differ between machines, so a rebuild matches the shipped model in
 * recipe and quality, not bit for bit.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { repoRoot } from '../src/paths.js';

/** The recipe of the shipped `models/demo` and `models/scene-clip`. */
export const RECIPE = {
  synthSeed: 1,
  count: 4000,
  resolution: 64,
  clip: { steps: 1000, batchSize: 64, learningRate: 0.002, seed: 1, patch: 16 },
  preset: 'demo',
  conditioning: 'image' as 'image' | 'text',
  zDropout: 0,
  trainSeed: 1,
  epochs: 20,
  quality: { prompts: 64, seeds: 4, promptSeed: 7 },
} as const;

interface Options {
  out: string;
  clipOut: string;
  judge: string;
  work: string;
  count: string;
  epochs: string;
  seed: string;
  synthSeed: string;
  clipSteps: string;
  conditioning: string;
  zDropout: string;
  reuseData: boolean;
  reuseJudge: boolean;
  skipQuality: boolean;
  packageOnly: boolean;
}

const cliMain = path.join(repoRoot, 'src', 'cli', 'main.ts');
const stages = 6;

function stage(i: number, label: string): string {
  return `${i}/${stages} ${label}`;
}

/**
 * Runs a command with the repository's tsx, streaming its output (or into `logFile`, for a stage that runs
 * beside another one); rejects on a non-zero exit.
 */
export function run(args: string[], label: string, logFile?: string): Promise<void> {
  process.stderr.write(`\n== ${label}\n$ ${args.map((a) => path.relative(repoRoot, a) || a).join(' ')}${logFile ? ` > ${path.relative(repoRoot, logFile)}` : ''}\n`);
  return new Promise((resolve, reject) => {
    const log = logFile ? openSync(logFile, 'w') : null;
    const stdio: StdioOptions = log === null ? 'inherit' : ['ignore', log, log];
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, stdio, env: process.env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      if (log !== null) closeSync(log);
      if (code === 0) {
        if (logFile) process.stderr.write(`\n== ${label}: done (log in ${path.relative(repoRoot, logFile)})\n`);
        resolve();
      } else reject(new Error(`${label} failed (${signal ?? `exit code ${code}`})${logFile ? `; see ${logFile}` : ''}`));
    });
  });
}

const cli = (args: string[], label: string, logFile?: string) => run([cliMain, ...args], label, logFile);

/** Training time of a run: the sum of its epochs' durations in history.json. */
async function runSeconds(runDir: string): Promise<number> {
  try {
    const h = JSON.parse(await fsp.readFile(path.join(runDir, 'history.json'), 'utf8')) as { history: { durationSec: number }[] };
    return h.history.reduce((t, e) => t + e.durationSec, 0);
  } catch {
    return 0;
  }
}

/** Stage 4: trains the demo preset with the given conditioning and dropout on z into `runDir`. */
export function trainVariant(cacheDir: string, runDir: string, v: { conditioning: string; zDropout: number; epochs: number; seed: number }, label: string): Promise<void> {
  return cli(
    ['train', '--preset', RECIPE.preset, '--dataset', cacheDir, '--epochs', String(v.epochs), '--seed', String(v.seed), '--patience', '0',
      '--conditioning', v.conditioning, '--z-dropout', String(v.zDropout), '--out', runDir],
    label,
  );
}

/**
 * Stage 5: the best epoch of `runDir` as a servable model folder `out` (float16 weights, ONNX decoder,
 * repo-relative CLIP name), built beside it and swapped in, so a failure leaves the old model in place.
 */
export async function packageCheckpoint(runDir: string, out: string, recipe: Record<string, unknown>): Promise<void> {
  const { initBackend } = await import('../src/model/backend.js');
  await initBackend();
  const { readCheckpointMeta } = await import('../src/model/checkpoint.js');
  const { portableClipModelName } = await import('../src/model/clip/clip-name.js');
  const { convertModelFolderToFloat16 } = await import('../src/model/weights-float16.js');
  const { ensureDecoderOnnx } = await import('../src/model/onnx/checkpoint-export.js');
  const best = path.join(runDir, 'best');
  const source = existsSync(path.join(best, 'meta.json')) ? best : path.join(runDir, 'last');
  const meta = await readCheckpointMeta(source);
  const staging = `${path.resolve(out)}.staging`;
  await fsp.rm(staging, { recursive: true, force: true });
  await fsp.mkdir(staging, { recursive: true });
  for (const part of ['encoder', 'decoder']) await fsp.cp(path.join(source, part), path.join(staging, part), { recursive: true });
  if (existsSync(path.join(source, 'samples.png'))) await fsp.copyFile(path.join(source, 'samples.png'), path.join(staging, 'training-samples.png'));
  for (const f of ['loss-curve.png', 'history.json']) if (existsSync(path.join(runDir, f))) await fsp.copyFile(path.join(runDir, f), path.join(staging, f));
  const shipped = { ...meta, name: path.basename(out), clipModel: portableClipModelName(meta.clipModel) };
  for (const part of ['encoder', 'decoder']) {
    const c = await convertModelFolderToFloat16(path.join(staging, part));
    process.stderr.write(`${part}: ${c.converted} weights to float16, ${c.bytesBefore} -> ${c.bytesAfter} bytes\n`);
  }
  await fsp.writeFile(path.join(staging, 'meta.json'), JSON.stringify(shipped, null, 2) + '\n');
  await fsp.writeFile(path.join(staging, 'recipe.json'), JSON.stringify({ ...recipe, bestEpoch: meta.epoch, trainSeconds: Math.round(await runSeconds(runDir)) }, null, 2) + '\n');
  await fsp.rm(out, { recursive: true, force: true });
  await fsp.rename(staging, out);
  await ensureDecoderOnnx(out);
}

/** The held-out prompts of the sample grid: one per ground × sky, rows of grounds, columns of skies. */
export async function gridPrompts() {
  const { GROUND_KINDS, SKY_KINDS, heldOutPrompts } = await import('../src/training/data/synth/index.js');
  return heldOutPrompts(RECIPE.quality.promptSeed, GROUND_KINDS.length * SKY_KINDS.length).sort(
    (a, b) => GROUND_KINDS.indexOf(a.ground) - GROUND_KINDS.indexOf(b.ground) || SKY_KINDS.indexOf(a.sky) - SKY_KINDS.indexOf(b.sky),
  );
}

/** Draws the grid prompts, two seeds each, as `OUT/samples.png` + `samples.json`. */
export async function sampleGrid(out: string): Promise<void> {
  const { createSampler } = await import('../src/model/sampler-factory.js');
  const { ClipEmbedder } = await import('../src/model/clip/embedder.js');
  const { resolveRecordedClipModel } = await import('../src/model/clip/clip-name.js');
  const { gridPng } = await import('../src/model/image-grid.js');
  const sampler = await createSampler(out);
  const clip = await ClipEmbedder.load({ model: resolveRecordedClipModel(sampler.meta.clipModel) });
  try {
    const prompts = await gridPrompts();
    const cells = prompts.flatMap((p) => [1, 2].map((seed) => ({ ...p, seed })));
    const emb = await clip.embedTexts(prompts.map((p) => p.prompt));
    const images = await sampler.sample(cells.map((_, i) => emb[Math.floor(i / 2)]), cells.map((c) => c.seed));
    await fsp.writeFile(path.join(out, 'samples.png'), await gridPng(images, sampler.resolution, { columns: 8, scale: 2 }));
    await fsp.writeFile(path.join(out, 'samples.json'), JSON.stringify({ columns: 8, cells }, null, 2) + '\n');
  } finally {
    sampler.dispose();
    await clip.dispose();
  }
}

/** Stage 6: `npm run quality` on a packaged model, written to `json`. */
export function qualityCheck(checkpoint: string, judge: string, o: { synthSeed: string; count: string }, json: string, label: string, prompts: number = RECIPE.quality.prompts): Promise<void> {
  return run(
    [path.join(repoRoot, 'scripts', 'quality-check.ts'), '--checkpoint', checkpoint, '--judge', judge, '--prompts', String(prompts),
      '--seeds', String(RECIPE.quality.seeds), '--prompt-seed', String(RECIPE.quality.promptSeed), '--synth-seed', o.synthSeed,
      '--synth-count', o.count, '--json', json],
    label,
  );
}

/**
 * Stages 1–3: scenes, scene CLIP, dataset cache. Starts the judge's training on the other core and returns
 * it unfinished: only the quality check needs the judge.
 */
export async function buildData(o: Pick<Options, 'count' | 'synthSeed' | 'clipSteps' | 'reuseJudge'>, dirs: { synthDir: string; cacheDir: string; clipOut: string; judge: string }): Promise<{ judge: Promise<void> }> {
  await cli(['dataset', 'synth', '--count', o.count, '--res', String(RECIPE.resolution), '--seed', o.synthSeed, '--out', dirs.synthDir, '--force'], stage(1, 'synthetic scenes'));
  const judge = o.reuseJudge && existsSync(path.join(dirs.judge, 'judge.json'))
    ? Promise.resolve()
    : cli(['judge', 'train', '--out', dirs.judge], `${stage(2, 'scene judge')} (in the background, on the other core)`, path.join(path.dirname(dirs.synthDir), 'judge-train.log'));
  judge.catch(() => undefined); // awaited by the caller; not an unhandled rejection meanwhile
  const c = RECIPE.clip;
  await cli(
    ['clip', 'train', '--dataset', dirs.synthDir, '--out', dirs.clipOut, '--steps', o.clipSteps, '--batch-size', String(c.batchSize),
      '--lr', String(c.learningRate), '--seed', String(c.seed), '--patch', String(c.patch)],
    stage(2, 'scene CLIP'),
  );
  await fsp.rm(dirs.cacheDir, { recursive: true, force: true });
  await cli(['dataset', 'build', '--source', dirs.synthDir, '--res', String(RECIPE.resolution), '--clip-model', dirs.clipOut, '--out', dirs.cacheDir], stage(3, 'dataset cache with the scene CLIP'));
  return { judge };
}

function parseOptions(argv: string[]): Options {
  return new Command('train-demo')
    .description('synthesise scenes, train the scene CLIP (and judge), build the dataset cache, train and package the demo, check its quality')
    .option('--out <dir>', 'where the packaged demo goes', path.join(repoRoot, 'models', 'demo'))
    .option('--clip-out <dir>', 'where the scene CLIP goes (recorded in the demo as a repo-relative path)', path.join(repoRoot, 'models', 'scene-clip'))
    .option('--judge <dir>', 'where the scene judge goes (and is read from)', path.join(repoRoot, 'models', 'scene-judge'))
    .option('--work <dir>', 'intermediate files (dataset, cache, run)', path.join(repoRoot, 'tmp', 'demo-build'))
    .option('--count <n>', 'synthetic images', String(RECIPE.count))
    .option('--epochs <n>', 'CVAE training epochs', String(RECIPE.epochs))
    .option('--seed <n>', 'CVAE training seed', String(RECIPE.trainSeed))
    .option('--synth-seed <n>', 'seed of the synthetic scenes', String(RECIPE.synthSeed))
    .option('--clip-steps <n>', 'scene CLIP training steps', String(RECIPE.clip.steps))
    .option('--conditioning <kind>', 'condition the CVAE on CLIP image or text embeddings', RECIPE.conditioning)
    .option('--z-dropout <x>', 'dropout on z while training', String(RECIPE.zDropout))
    .option('--reuse-data', 'keep the scenes, scene CLIP and cache of an earlier run in --work / --clip-out', false)
    .option('--reuse-judge', 'keep the scene judge in --judge when there is one', false)
    .option('--skip-quality', 'do not run the quality check', false)
    .option('--package-only', 'skip data and training: package the run already in --work (e.g. one stopped early)', false)
    .exitOverride()
    .parse(argv)
    .opts<Options>();
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv);
  const work = path.resolve(o.work);
  const out = path.resolve(o.out);
  const dirs = { synthDir: path.join(work, 'synth'), cacheDir: path.join(work, 'cache'), clipOut: path.resolve(o.clipOut), judge: path.resolve(o.judge) };
  const runDir = path.join(work, 'run');
  await fsp.mkdir(work, { recursive: true });
  const t0 = Date.now();
  let judge: Promise<void> = Promise.resolve();
  if (!o.packageOnly) {
    if (!(o.reuseData && existsSync(path.join(dirs.cacheDir, 'manifest.json')) && existsSync(path.join(dirs.clipOut, 'config.json')))) ({ judge } = await buildData(o, dirs));
    await fsp.rm(runDir, { recursive: true, force: true });
    await trainVariant(dirs.cacheDir, runDir, { conditioning: o.conditioning, zDropout: Number(o.zDropout), epochs: Number(o.epochs), seed: Number(o.seed) }, stage(4, 'training the demo'));
  }
  process.stderr.write(`\n== ${stage(5, `packaging into ${path.relative(repoRoot, out) || out}`)}\n`);
  await packageCheckpoint(runDir, out, {
    command: 'npm run demo:train',
    synth: { seed: Number(o.synthSeed), count: Number(o.count), resolution: RECIPE.resolution },
    clipModel: path.relative(repoRoot, dirs.clipOut),
    clip: { ...RECIPE.clip, steps: Number(o.clipSteps) },
    train: { preset: RECIPE.preset, conditioning: o.conditioning, zDropout: Number(o.zDropout), seed: Number(o.seed), epochs: Number(o.epochs) },
    weights: 'float16 (layers-model manifest quantization; loadCheckpoint reads them as float32)',
  });
  await sampleGrid(out);
  await judge;
  if (!o.skipQuality) await qualityCheck(out, dirs.judge, o, path.join(out, 'quality.json'), stage(6, 'quality check with the scene judge'));
  process.stderr.write(`\ndone in ${((Date.now() - t0) / 60000).toFixed(1)} min: ${out}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
