/**
 * The seed paper's comparison in miniature, on the synthetic scenes and the scene CLIP:
 *
 *   npm run demo:experiment [-- --epochs 6 --parallel 2 --ship]
 *
 * Trains the `demo` preset four times with the same data, seed and budget (6 epochs): conditioned on CLIP
 * *image* or *text* embeddings, with dropout 0.3 on z or none. Every run is packaged like the demo and judged from held-out
 * *text* prompts (`npm run quality`), so image-conditioned runs are served across CLIP's two towers as the
 * seed did. Writes `<work>/experiment/report.json` and prints a Markdown table (val loss, sky and ground
 * right, species, seed diversity). `--ship` copies the best run (most images with sky and ground right; seed
 * diversity breaks ties) into `--out` with its samples, quality report and the table as `experiment.json`;
 * the shipped demo is instead trained longer by `npm run demo:train` with the winning settings.
 *
 * Runs `npm run demo:train`'s data stages first when `--work` has no dataset cache yet. Two runs train at a
 * time by default: the wasm backend uses one core per process.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { repoRoot } from '../src/paths.js';
import { runPool } from '../src/training/data/pool.js';
import { RECIPE, buildData, packageCheckpoint, qualityCheck, sampleGrid, trainVariant } from './train-demo.js';

interface Options {
  out: string;
  clipOut: string;
  judge: string;
  work: string;
  epochs: string;
  seed: string;
  parallel: string;
  ship: boolean;
  reuseRuns: boolean;
}

interface Variant {
  name: string;
  conditioning: 'image' | 'text';
  zDropout: number;
}

export interface VariantResult extends Variant {
  bestValLoss: number;
  bestEpoch: number;
  trainMinutes: number;
  bothRight: number;
  skyRight: number;
  groundRight: number;
  speciesPresent: number;
  seedDiversity: number;
}

/** Dropout on z of the "dropout" runs: the seed's 0.3. */
export const EXPERIMENT_DROPOUT = 0.3;
/** Epochs of every run: the budget of the reference sketch (see DESIGN.md, "The offline demo"). */
export const EXPERIMENT_EPOCHS = 6;

const VARIANTS: Variant[] = [
  { name: 'image-dropout', conditioning: 'image', zDropout: EXPERIMENT_DROPOUT },
  { name: 'image-none', conditioning: 'image', zDropout: 0 },
  { name: 'text-dropout', conditioning: 'text', zDropout: EXPERIMENT_DROPOUT },
  { name: 'text-none', conditioning: 'text', zDropout: 0 },
];

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
}

/** The Markdown table of the README. */
export function experimentTable(results: readonly VariantResult[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return [
    '| conditioning (trained on) | dropout on z | best val loss (epoch) | sky and ground right | sky | ground | species asked present | seed diversity |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map((r) =>
      `| ${r.conditioning} | ${r.zDropout > 0 ? r.zDropout : 'none'} | ${r.bestValLoss.toFixed(0)} (${r.bestEpoch}) | ${pct(r.bothRight)} | ${pct(r.skyRight)} | ` +
      `${pct(r.groundRight)} | ${pct(r.speciesPresent)} | ${r.seedDiversity.toFixed(2)} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  const o = new Command('demo-experiment')
    .description('train the demo preset conditioned on image vs text embeddings, with and without dropout on z, and compare')
    .option('--out <dir>', 'where --ship puts the best run', path.join(repoRoot, 'models', 'demo'))
    .option('--clip-out <dir>', 'the scene CLIP (trained first when missing)', path.join(repoRoot, 'models', 'scene-clip'))
    .option('--judge <dir>', 'the scene judge', path.join(repoRoot, 'models', 'scene-judge'))
    .option('--work <dir>', 'intermediate files', path.join(repoRoot, 'tmp', 'demo-build'))
    .option('--epochs <n>', 'epochs of every run', String(EXPERIMENT_EPOCHS))
    .option('--seed <n>', 'training seed of every run', String(RECIPE.trainSeed))
    .option('--parallel <n>', 'runs training at once (one core each)', '2')
    .option('--ship', 'copy the best run into --out', false)
    .option('--reuse-runs', 'keep runs that finished in an earlier call (only package and judge them)', false)
    .exitOverride()
    .parse(process.argv)
    .opts<Options>();
  const work = path.resolve(o.work);
  const dirs = { synthDir: path.join(work, 'synth'), cacheDir: path.join(work, 'cache'), clipOut: path.resolve(o.clipOut), judge: path.resolve(o.judge) };
  const data = { count: String(RECIPE.count), synthSeed: String(RECIPE.synthSeed) };
  let judge: Promise<void> = Promise.resolve();
  if (!existsSync(path.join(dirs.cacheDir, 'manifest.json')) || !existsSync(path.join(dirs.clipOut, 'config.json'))) {
    ({ judge } = await buildData({ ...data, clipSteps: String(RECIPE.clip.steps), reuseJudge: true }, dirs));
  }
  const root = path.join(work, 'experiment');
  const epochs = Number(o.epochs);
  const seed = Number(o.seed);
  await runPool(VARIANTS, Number(o.parallel), async (v) => {
    const runDir = path.join(root, v.name, 'run');
    if (o.reuseRuns && existsSync(path.join(runDir, 'last', 'meta.json'))) return;
    await fsp.rm(runDir, { recursive: true, force: true });
    await trainVariant(dirs.cacheDir, runDir, { ...v, epochs, seed }, `training ${v.name}`);
  });
  await judge;
  const results: VariantResult[] = [];
  for (const v of VARIANTS) {
    const runDir = path.join(root, v.name, 'run');
    const model = path.join(root, v.name, 'model');
    await packageCheckpoint(runDir, model, { command: 'npm run demo:experiment', variant: v, epochs, seed });
    await qualityCheck(model, dirs.judge, data, path.join(root, v.name, 'quality.json'), `quality of ${v.name}`);
    const history = await readJson<{ history: { epoch: number; durationSec: number; val: { total: number } }[] }>(path.join(runDir, 'history.json'));
    const best = history.history.reduce((a, b) => (b.val.total < a.val.total ? b : a));
    const q = await readJson<Record<string, number>>(path.join(root, v.name, 'quality.json'));
    results.push({
      ...v,
      bestValLoss: best.val.total,
      bestEpoch: best.epoch,
      trainMinutes: history.history.reduce((t, e) => t + e.durationSec, 0) / 60,
      bothRight: q.bothRight,
      skyRight: q.skyRight,
      groundRight: q.groundRight,
      speciesPresent: q.speciesPresent,
      seedDiversity: q.diversity,
    });
  }
  const report = { epochs, seed, count: RECIPE.count, results };
  await fsp.writeFile(path.join(root, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`${experimentTable(results)}\n`);
  if (o.ship) {
    const best = [...results].sort((a, b) => b.bothRight - a.bothRight || b.seedDiversity - a.seedDiversity)[0];
    const out = path.resolve(o.out);
    await fsp.rm(`${out}.staging`, { recursive: true, force: true });
    await fsp.cp(path.join(root, best.name, 'model'), `${out}.staging`, { recursive: true });
    await fsp.copyFile(path.join(root, best.name, 'quality.json'), path.join(`${out}.staging`, 'quality.json'));
    await fsp.writeFile(path.join(`${out}.staging`, 'experiment.json'), JSON.stringify({ ...report, shipped: best.name }, null, 2) + '\n');
    await fsp.rm(out, { recursive: true, force: true });
    await fsp.rename(`${out}.staging`, out);
    await sampleGrid(out);
    process.stdout.write(`shipped ${best.name} → ${out}\n`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
