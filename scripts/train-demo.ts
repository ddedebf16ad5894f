/**
 * Reproduces the shipped demo model (`models/demo`) from a clean clone, offline, in one command:
 *
 *   npm run demo:train                      # the shipped recipe (see RECIPE below)
 *   npm run demo:train -- --epochs 2 --count 500 --out tmp/demo-try   # a quicker try elsewhere
 *
 * Steps (each one a CLI command, so every step can also be run by hand):
 * 1. `dataset synth`  draw COUNT synthetic scenes at 64 px with their captions (fixed seed)
 * 2. `dataset build`  embed images and captions with the tiny random-weight CLIP fixture (tests/fixtures/tiny-clip)
 * 3. `train`          the `demo` preset (text-conditioned) for EPOCHS epochs with a fixed seed
 * 4. package          copy the best epoch's checkpoint into OUT without optimizer state, record the CLIP as the
 *                     repo-relative `tests/fixtures/tiny-clip`, store the weights as float16, export the decoder
 *                     to ONNX, and draw a sample grid of held-out prompts
 * 5. quality check    scripts/quality-check.ts on held-out prompts → OUT/quality.json
 *
 * Intermediate files go to `--work` (default tmp/demo-build, git-ignored). Training is seeded, but the
 * floating-point sums of the backend may differ between machines, so a rebuild matches the shipped model in
 * recipe and quality, not bit for bit.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { repoRoot } from '../src/paths.js';

/** The recipe of the shipped `models/demo`. */
export const RECIPE = {
  synthSeed: 1,
  count: 4000,
  resolution: 64,
  clipModel: 'tests/fixtures/tiny-clip',
  preset: 'demo',
  trainSeed: 1,
  epochs: 12,
  qualityPrompts: 120,
  qualitySeeds: 4,
  qualityPromptSeed: 7,
} as const;

interface Options {
  out: string;
  work: string;
  count: string;
  epochs: string;
  seed: string;
  synthSeed: string;
  batchSize?: string;
  lr?: string;
  reuseData: boolean;
  skipQuality: boolean;
  packageOnly: boolean;
  whiten: boolean;
}

const cliMain = path.join(repoRoot, 'src', 'cli', 'main.ts');

/** Runs a command with the repository's tsx, streaming its output; rejects on a non-zero exit. */
function run(args: string[], label: string): Promise<void> {
  process.stderr.write(`\n== ${label}\n$ ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, stdio: 'inherit', env: process.env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      if (code === 0) resolve();
      else reject(new Error(`${label} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

const cli = (args: string[], label: string) => run([cliMain, ...args], label);

/** Training time of a run: the sum of its epochs' durations in history.json. */
async function runSeconds(runDir: string): Promise<number> {
  try {
    const h = JSON.parse(await fsp.readFile(path.join(runDir, 'history.json'), 'utf8')) as { history: { durationSec: number }[] };
    return h.history.reduce((t, e) => t + e.durationSec, 0);
  } catch {
    return 0;
  }
}

/**
 * Step 3 with preconditioned inputs (see embedding-whitening.ts): trains the demo preset on whitened caption
 * embeddings, then folds the whitening into the best and last checkpoints so they take raw CLIP embeddings.
 */
async function trainWhitened(cacheDir: string, runDir: string, epochs: number, seed: number): Promise<void> {
  process.stderr.write(`\n== 3/5 training (whitened caption embeddings)\n`);
  const { initBackend } = await import('../src/model/backend.js');
  await initBackend();
  const { openDatasetCache } = await import('../src/training/data/cache-loader.js');
  const { train } = await import('../src/training/trainer.js');
  const { getPreset } = await import('../src/model/presets.js');
  const { loadCheckpoint, saveCheckpoint } = await import('../src/model/checkpoint.js');
  const { cacheTextEmbeddings, fitWhitening, foldWhitening, whiten, whitenedSource } = await import('./embedding-whitening.js');
  const cache = await openDatasetCache(cacheDir, { conditioning: 'text' });
  const w = fitWhitening(await cacheTextEmbeddings(cacheDir), cache.embeddingDim);
  const samples = (await cache.sampleCaptions(8)).map((c) => ({ label: c.label, embedding: whiten(w, c.embedding) }));
  const t0 = Date.now();
  // Ctrl-C / SIGTERM: the trainer saves and stops; the whitening is still folded into what it saved.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await train({
    signal: stop.signal,
    preset: getPreset(RECIPE.preset),
    source: whitenedSource(cache, w),
    outDir: runDir,
    epochs,
    seed,
    patience: 0,
    sampleEmbeddings: samples,
    onEvent: (e) => {
      if (e.type === 'epoch') {
        process.stderr.write(`epoch ${e.epoch}/${epochs}: train ${e.train.total.toFixed(1)} (bce ${e.train.bce.toFixed(1)}, kl ${e.train.kl.toFixed(1)}) | val ${e.val.total.toFixed(1)} (bce ${e.val.bce.toFixed(1)}, kl ${e.val.kl.toFixed(1)}, ssim ${e.val.ssim.toFixed(3)})${e.best ? ' [best]' : ''} ${((Date.now() - t0) / 60000).toFixed(1)} min\n`);
      }
    },
  });
  for (const part of ['best', 'last']) {
    const dir = path.join(runDir, part);
    if (!existsSync(path.join(dir, 'meta.json'))) continue;
    const { cvae, meta } = await loadCheckpoint(dir);
    try {
      foldWhitening(cvae, w);
      await saveCheckpoint(dir, cvae, meta);
    } finally {
      cvae.dispose();
    }
  }
}

async function packageCheckpoint(runDir: string, out: string, o: Options, trainSeconds: number): Promise<void> {
  const { initBackend } = await import('../src/model/backend.js');
  await initBackend();
  const { readCheckpointMeta } = await import('../src/model/checkpoint.js');
  const { portableClipModelName } = await import('../src/model/clip/clip-name.js');
  const { convertModelFolderToFloat16 } = await import('../src/model/weights-float16.js');
  const { ensureDecoderOnnx } = await import('../src/model/onnx/checkpoint-export.js');
  const best = path.join(runDir, 'best');
  const source = existsSync(path.join(best, 'meta.json')) ? best : path.join(runDir, 'last');
  const meta = await readCheckpointMeta(source);
  // Build the package beside the target and swap it in, so a failure leaves the old model in place.
  const staging = `${path.resolve(out)}.staging`;
  await fsp.rm(staging, { recursive: true, force: true });
  await fsp.mkdir(staging, { recursive: true });
  for (const part of ['encoder', 'decoder']) await fsp.cp(path.join(source, part), path.join(staging, part), { recursive: true });
  if (existsSync(path.join(source, 'samples.png'))) await fsp.copyFile(path.join(source, 'samples.png'), path.join(staging, 'training-samples.png'));
  if (existsSync(path.join(runDir, 'loss-curve.png'))) await fsp.copyFile(path.join(runDir, 'loss-curve.png'), path.join(staging, 'loss-curve.png'));
  if (existsSync(path.join(runDir, 'history.json'))) await fsp.copyFile(path.join(runDir, 'history.json'), path.join(staging, 'history.json'));
  const shipped = { ...meta, name: 'demo', clipModel: portableClipModelName(meta.clipModel) };
  for (const part of ['encoder', 'decoder']) {
    const c = await convertModelFolderToFloat16(path.join(staging, part));
    process.stderr.write(`${part}: ${c.converted} weights to float16, ${c.bytesBefore} -> ${c.bytesAfter} bytes\n`);
  }
  await fsp.writeFile(path.join(staging, 'meta.json'), JSON.stringify(shipped, null, 2) + '\n');
  const recipe = {
    command: 'npm run demo:train',
    synth: { seed: Number(o.synthSeed), count: Number(o.count), resolution: RECIPE.resolution },
    clipModel: RECIPE.clipModel,
    train: { preset: RECIPE.preset, seed: Number(o.seed), epochs: Number(o.epochs), batchSize: o.batchSize ? Number(o.batchSize) : undefined, learningRate: o.lr ? Number(o.lr) : undefined },
    bestEpoch: meta.epoch,
    trainSeconds: Math.round(trainSeconds),
    weights: 'float16 (layers-model manifest quantization; loadCheckpoint reads them as float32)',
  };
  await fsp.writeFile(path.join(staging, 'recipe.json'), JSON.stringify(recipe, null, 2) + '\n');
  await fsp.rm(out, { recursive: true, force: true });
  await fsp.rename(staging, out);
  try {
    await ensureDecoderOnnx(out);
  } catch (err) {
    process.stderr.write(`ONNX export failed (${(err as Error).message}); the checkpoint still serves on TensorFlow.js\n`);
  }
}

/** Draws the held-out quality prompts (one seed each) as a labelled grid: `OUT/samples.png` + `samples.json`. */
async function sampleGrid(out: string): Promise<void> {
  const { createSampler } = await import('../src/model/sampler-factory.js');
  const { ClipEmbedder } = await import('../src/model/clip/embedder.js');
  const { resolveRecordedClipModel } = await import('../src/model/clip/clip-name.js');
  const { gridPng } = await import('../src/model/image-grid.js');
  const { GROUND_KINDS, HELD_OUT_SKIES, heldOutPrompts } = await import('../src/training/data/synth/index.js');
  const sampler = await createSampler(out);
  const clip = await ClipEmbedder.load({ model: resolveRecordedClipModel(sampler.meta.clipModel) });
  try {
    // One prompt per ground × sky (the first block of the quality check's draw), in rows of ground, two seeds each.
    const prompts = heldOutPrompts(RECIPE.qualityPromptSeed, 12).sort(
      (a, b) => GROUND_KINDS.indexOf(a.ground) - GROUND_KINDS.indexOf(b.ground) || HELD_OUT_SKIES.indexOf(a.sky) - HELD_OUT_SKIES.indexOf(b.sky),
    );
    const cells = prompts.flatMap((p) => [1, 2].map((seed) => ({ ...p, seed })));
    const emb = await clip.embedTexts(prompts.map((p) => p.prompt));
    const images = await sampler.sample(cells.map((_, i) => emb[Math.floor(i / 2)]), cells.map((c) => c.seed));
    await fsp.writeFile(path.join(out, 'samples.png'), await gridPng(images, sampler.resolution, { columns: 6, scale: 2 }));
    await fsp.writeFile(path.join(out, 'samples.json'), JSON.stringify({ columns: 6, cells }, null, 2) + '\n');
  } finally {
    sampler.dispose();
    await clip.dispose();
  }
}

async function main(): Promise<void> {
  const o = new Command('train-demo')
    .description('synthesise scenes, embed them with the tiny CLIP, train the demo preset and package it into models/demo')
    .option('--out <dir>', 'where the packaged model goes', path.join(repoRoot, 'models', 'demo'))
    .option('--work <dir>', 'intermediate files (dataset, cache, run)', path.join(repoRoot, 'tmp', 'demo-build'))
    .option('--count <n>', 'synthetic images', String(RECIPE.count))
    .option('--epochs <n>', 'training epochs', String(RECIPE.epochs))
    .option('--seed <n>', 'training seed', String(RECIPE.trainSeed))
    .option('--synth-seed <n>', 'seed of the synthetic scenes', String(RECIPE.synthSeed))
    .option('--batch-size <n>', 'batch size (default: the preset\'s)')
    .option('--lr <x>', 'learning rate (default: the preset\'s)')
    .option('--reuse-data', 'keep the dataset and cache of an earlier run in --work', false)
    .option('--skip-quality', 'do not run the quality check', false)
    .option('--no-whiten', 'train on the raw caption embeddings (default: whitened, folded into the weights after training)')
    .option('--package-only', 'skip data and training: package the run already in --work (e.g. one stopped early)', false)
    .parse(process.argv)
    .opts<Options>();
  const work = path.resolve(o.work);
  const out = path.resolve(o.out);
  const synthDir = path.join(work, 'synth');
  const cacheDir = path.join(work, 'cache');
  const runDir = path.join(work, 'run');
  await fsp.mkdir(work, { recursive: true });
  const t0 = Date.now();
  if (!o.packageOnly) {
    if (!(o.reuseData && existsSync(path.join(cacheDir, 'manifest.json')))) {
      await cli(['dataset', 'synth', '--count', o.count, '--res', String(RECIPE.resolution), '--seed', o.synthSeed, '--out', synthDir, '--force'], '1/5 synthetic scenes');
      await fsp.rm(cacheDir, { recursive: true, force: true });
      await cli(['dataset', 'build', '--source', synthDir, '--res', String(RECIPE.resolution), '--clip-model', RECIPE.clipModel, '--out', cacheDir], '2/5 dataset cache with the tiny CLIP');
    }
    await fsp.rm(runDir, { recursive: true, force: true });
    if (o.whiten) await trainWhitened(cacheDir, runDir, Number(o.epochs), Number(o.seed));
    else await cli(
      ['train', '--preset', RECIPE.preset, '--dataset', cacheDir, '--epochs', o.epochs, '--seed', o.seed, '--patience', '0', '--out', runDir,
        ...(o.batchSize ? ['--batch-size', o.batchSize] : []), ...(o.lr ? ['--lr', o.lr] : [])],
      '3/5 training',
    );
  }
  const trainSeconds = await runSeconds(runDir);
  process.stderr.write(`\n== 4/5 packaging into ${out}\n`);
  await packageCheckpoint(runDir, out, o, trainSeconds);
  await sampleGrid(out);
  if (!o.skipQuality) {
    await run(
      [path.join(repoRoot, 'scripts', 'quality-check.ts'), '--checkpoint', out, '--prompts', String(RECIPE.qualityPrompts), '--seeds', String(RECIPE.qualitySeeds),
        '--prompt-seed', String(RECIPE.qualityPromptSeed), '--synth-seed', o.synthSeed, '--synth-count', o.count, '--json', path.join(out, 'quality.json')],
      '5/5 quality check',
    );
  }
  process.stderr.write(`\ndone in ${((Date.now() - t0) / 60000).toFixed(1)} min (training ${(trainSeconds / 60).toFixed(1)} min): ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
