/**
 * `prune [--keep-runs N] [--generation-days D] [--dry-run] [--json]`: applies the retention rules of
 * src/bot/retention.ts to DATA_DIR (defaults from RETENTION_KEEP_RUNS and RETENTION_GENERATION_DAYS) and
 * prints what it removed and what it kept and why. Generations are pruned in the bot's store: PostgreSQL at
 * DATABASE_URL when set (scaled mode), else the SQLite file in DATA_DIR.
 */
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { dataDir } from '../../paths.js';
import { openCliStore } from './bot-store.js';
import { pruneDataDir, retentionFromEnv, type PruneReport } from '../../bot/retention.js';

function count(raw: string | undefined, name: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new UserError(`${name} must be a whole number from ${min} up, got "${raw.slice(0, 20)}"`);
  return Number(raw);
}

/** Runs the prune; returns its report. */
export async function runPrune(opts: { keepRuns?: string; generationDays?: string; dryRun?: boolean }, dir = dataDir(),
  environment: NodeJS.ProcessEnv = process.env): Promise<PruneReport> {
  const env = retentionFromEnv(environment);
  const settings = {
    keepRuns: count(opts.keepRuns, '--keep-runs', env.keepRuns, 0),
    generationDays: count(opts.generationDays, '--generation-days', env.generationDays, 1),
  };
  const store = await openCliStore(dir, environment);
  try {
    return await pruneDataDir(dir, settings, { store, dryRun: opts.dryRun });
  } finally {
    await store?.close();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** A report for people. */
export function formatPruneReport(r: PruneReport): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  return [
    `${r.dryRun ? 'Dry run: ' : ''}${verb} ${r.runsRemoved.length} run folder(s)${r.runsRemoved.length ? `: ${r.runsRemoved.join(', ')}` : ''}`,
    ...r.runsKept.map((k) => `  kept ${k.name} (${k.why})`),
    r.namesForgotten.length ? `forgot model name(s): ${r.namesForgotten.join(', ')}` : '',
    `${verb} ${r.sampleFoldersRemoved.length} sample grid folder(s), ${r.onnxExportsRemoved.length} stale ONNX export(s)`,
    `${verb} ${r.generationsRemoved} generation(s) and ${r.feedbackRemoved} reaction(s)`,
    r.requestsRemoved ? `${verb} ${r.requestsRemoved} finished job request(s) with the images kept for them` : '',
    `${r.dryRun ? 'would free' : 'freed'} ${mib(r.bytesFreed)}`,
  ].filter(Boolean).join('\n');
}

export function register(program: Command): void {
  program
    .command('prune')
    .description('remove old training runs, sample grids, stale ONNX exports and old generations (keeps the served and published models)')
    .option('--keep-runs <n>', 'newest run folders to keep (default RETENTION_KEEP_RUNS, else 5)')
    .option('--generation-days <d>', 'keep generations younger than this many days (default RETENTION_GENERATION_DAYS, else 90)')
    .option('--dry-run', 'only say what would be removed')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { keepRuns?: string; generationDays?: string; dryRun?: boolean; json?: boolean }) => {
      const report = await runPrune(opts);
      process.stdout.write(`${opts.json ? JSON.stringify(report) : formatPruneReport(report)}\n`);
    });
}
