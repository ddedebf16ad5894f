/**
 * `dataset synth`: procedural bucolic scenes in the COCO captions layout, for offline training,
 * tests and the demo model.
 *
 *   dataset synth --count N --res 64|128 --seed S --out DIR [--force] [--json]
 *
 * Writes DIR/annotations/captions_synth.json and DIR/images/synth_NNNNNN.png, shows a progress bar
 * on stderr and prints a summary line (or the summary as JSON with --json) on stdout.
 * The `dataset` command group lives in dataset.ts, which calls `registerSynth`.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { dataDir } from '../../paths.js';
import { generateSyntheticDataset, type SyntheticDatasetSummary } from '../../training/data/synth/write.js';

interface SynthOptions {
  count: string;
  res: string;
  seed: string;
  out?: string;
  force?: boolean;
  json?: boolean;
  progress?: boolean;
}

function parseIntOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`--${name} must be an integer between ${min} and ${max}, got "${value}"`);
  return n;
}

/** One line saying what was written. */
export function formatSynthSummary(s: SyntheticDatasetSummary, resolution: number): string {
  const kinds = (counts: Record<string, number>) => Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
  return (
    `wrote ${s.images} synthetic ${resolution}x${resolution} images with ${s.captions} captions and ${s.animals} animals ` +
    `to ${s.outDir} in ${(s.elapsedMs / 1000).toFixed(1)} s (skies: ${kinds(s.skies)}; grounds: ${kinds(s.grounds)})\n`
  );
}

/** Where a command prints its results (stdout by default; tests pass their own). */
export interface CommandOutput {
  write(text: string): void;
}

const stdoutOutput: CommandOutput = { write: (text) => void process.stdout.write(text) };

/** Runs `dataset synth` with parsed options. */
export async function runSynth(opts: SynthOptions, out: CommandOutput = stdoutOutput): Promise<SyntheticDatasetSummary> {
  const count = parseIntOption('count', opts.count, 1, 10_000_000);
  const resolution = parseIntOption('res', opts.res, 8, 1024);
  const seed = parseIntOption('seed', opts.seed, 0, 0xffffffff);
  const outDir = path.resolve(opts.out ?? path.join(dataDir(), 'datasets', `synth-${resolution}`));
  const showBar = opts.progress !== false;
  const bar = showBar
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: 'synth [{bar}] {percentage}% {value}/{total} images | {eta_formatted} left', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(count, 0);
  let summary: SyntheticDatasetSummary;
  try {
    summary = await generateSyntheticDataset({
      count, resolution, seed, outDir, overwrite: opts.force ?? false,
      onProgress: (done) => bar?.update(done),
    });
  } finally {
    bar?.stop();
  }
  out.write(opts.json ? `${JSON.stringify(summary)}\n` : formatSynthSummary(summary, resolution));
  return summary;
}

/** Adds `synth` to the `dataset` command group. */
export function registerSynth(datasetCommand: Command, out: CommandOutput = stdoutOutput): void {
  datasetCommand
    .command('synth')
    .description('draw procedural bucolic scenes (sky, ground, mountains, lake, trees, cows, sheep, horses) with captions, in the COCO captions layout')
    .option('--count <n>', 'number of images', '2000')
    .option('--res <px>', 'image side in pixels (64 or 128)', '64')
    .option('--seed <n>', 'random seed: the same seed gives the same files', '1')
    .option('--out <dir>', 'output folder (default: DATA_DIR/datasets/synth-<res>)')
    .option('--force', 'replace an existing synthetic dataset in the output folder')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (opts: SynthOptions) => {
      await runSynth(opts, out);
    });
}
