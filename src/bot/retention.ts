/**
 * Retention: what `cvae prune` (and, with RETENTION_PRUNE_EVERY_HOURS, the bot on a schedule) removes from
 * the data directory, and what it always keeps.
 * - Run folders under `DATA_DIR/checkpoints`: the newest `keepRuns` are kept, and so is every folder that holds
 *   the active model, a published model or a run still going; the others are deleted and their registry
 *   names forgotten. Folders elsewhere (the shipped `models/demo`, a checkpoint registered from another path)
 *   are never touched.
 * - Per-epoch sample grids (`samples/`) of the kept folders outside the newest `keepRuns` (kept only because
 *   they are served or published: their best checkpoint is what matters).
 * - ONNX decoder exports that no longer match their checkpoint's weights (made again when next needed).
 * - Generations older than `generationDays` days, with their reactions and message references (except those a
 *   kept generation was rerolled or varied from: it references them).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { childLogger } from '../log.js';
import { CheckpointRegistry } from '../model/registry.js';
import { DECODER_ONNX, DECODER_ONNX_INFO, onnxExportState } from '../model/onnx/checkpoint-export.js';
import type { BotStore, PostgresBotStore } from './core/store/index.js';
import { pruneFinishedRequests } from '../jobs/worker-requests.js';
import { UserError } from '../errors.js';

const log = childLogger('retention');

/** Retention settings (RETENTION_KEEP_RUNS, RETENTION_GENERATION_DAYS). */
export interface RetentionSettings {
  /** Newest run folders kept whatever they hold (default 5). */
  keepRuns: number;
  /** Generations younger than this many days are kept (default 90). */
  generationDays: number;
}

export const DEFAULT_RETENTION: RetentionSettings = { keepRuns: 5, generationDays: 90 };

/**
 * RETENTION_KEEP_RUNS, RETENTION_GENERATION_DAYS and RETENTION_PRUNE_EVERY_HOURS (0 or unset: no schedule).
 * @throws UserError naming each bad value
 */
export function retentionFromEnv(env: NodeJS.ProcessEnv = process.env): RetentionSettings & { everyHours: number } {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) {
      problems.push(`${name}: must be a whole number from ${min} to ${max}, got "${raw.slice(0, 20)}"`);
      return fallback;
    }
    return n;
  };
  const settings = {
    keepRuns: int('RETENTION_KEEP_RUNS', DEFAULT_RETENTION.keepRuns, 0, 10_000),
    generationDays: int('RETENTION_GENERATION_DAYS', DEFAULT_RETENTION.generationDays, 1, 100_000),
    everyHours: int('RETENTION_PRUNE_EVERY_HOURS', 0, 0, 24 * 365),
  };
  if (problems.length) throw new UserError(`The configuration has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return settings;
}

/** What a prune removed (or, with `dryRun`, would remove). */
export interface PruneReport {
  dryRun: boolean;
  runsRemoved: string[];
  runsKept: { name: string; why: string }[];
  namesForgotten: string[];
  sampleFoldersRemoved: string[];
  onnxExportsRemoved: string[];
  generationsRemoved: number;
  feedbackRemoved: number;
  /** Scaled mode: finished job requests removed, with the images workers kept for them. */
  requestsRemoved: number;
  bytesFreed: number;
}

/** Bytes of a file or folder (0 when it is gone). */
export async function diskBytes(p: string): Promise<number> {
  let st: fs.Stats;
  try {
    st = await fsp.lstat(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fsp.readdir(p).catch(() => [] as string[])) total += await diskBytes(path.join(p, e));
  return total;
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Prunes `dataDir` (see the module comment).
 * @param opts.store the bot store (published models, running runs, generations); none: no rows are pruned
 *   and only the active model and the newest runs are kept
 * @param opts.protect run folder names never to remove (e.g. the run this process is training)
 */
export async function pruneDataDir(dataDir: string, settings: RetentionSettings, opts: {
  store?: BotStore | null; dryRun?: boolean; now?: Date; protect?: string[];
} = {}): Promise<PruneReport> {
  const dryRun = opts.dryRun ?? false;
  const report: PruneReport = {
    dryRun, runsRemoved: [], runsKept: [], namesForgotten: [], sampleFoldersRemoved: [], onnxExportsRemoved: [],
    generationsRemoved: 0, feedbackRemoved: 0, requestsRemoved: 0, bytesFreed: 0,
  };
  const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
  const { active, checkpoints, registered } = await registry.folders();
  const published = (await opts.store?.runs.publishedNames()) ?? new Set<string>();
  const running = new Set([...(opts.protect ?? []), ...((await opts.store?.runs.recent(1_000))?.filter((r) => r.status === 'running').map((r) => r.id) ?? [])]);

  // Run folders, newest first.
  const folders: { name: string; dir: string; mtime: number }[] = [];
  for (const e of await fsp.readdir(registry.root, { withFileTypes: true }).catch(() => [] as fs.Dirent[])) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const dir = path.join(registry.root, e.name);
    const st = await fsp.stat(dir);
    folders.push({ name: e.name, dir, mtime: st.mtimeMs });
  }
  folders.sort((a, b) => b.mtime - a.mtime || a.name.localeCompare(b.name));

  const reasons = (dir: string, name: string): string[] => {
    const why: string[] = [];
    for (const [model, modelDir] of checkpoints) {
      if (!inside(modelDir, dir)) continue;
      if (model === active) why.push(`serves ${model}`);
      else if (published.has(model)) why.push(`published ${model}`);
    }
    if (running.has(name)) why.push('training');
    return why;
  };

  const forget: string[] = [];
  for (const [i, f] of folders.entries()) {
    const why = reasons(f.dir, f.name);
    if (i < settings.keepRuns) {
      report.runsKept.push({ name: f.name, why: ['newest', ...why].join(', ') });
      continue;
    }
    if (why.length) {
      report.runsKept.push({ name: f.name, why: why.join(', ') });
      const samples = path.join(f.dir, 'samples');
      if (fs.existsSync(samples)) {
        report.bytesFreed += await diskBytes(samples);
        report.sampleFoldersRemoved.push(path.relative(dataDir, samples));
        if (!dryRun) await fsp.rm(samples, { recursive: true, force: true });
      }
      continue;
    }
    report.bytesFreed += await diskBytes(f.dir);
    report.runsRemoved.push(f.name);
    for (const [model, modelDir] of checkpoints) if (registered.has(model) && inside(modelDir, f.dir)) forget.push(model);
    if (!dryRun) await fsp.rm(f.dir, { recursive: true, force: true });
  }
  report.namesForgotten = [...new Set(forget)].sort();
  if (!dryRun && forget.length) await registry.unregister(forget);

  // Stale ONNX exports of the checkpoints that remain.
  for (const [, dir] of checkpoints) {
    if (report.runsRemoved.some((r) => inside(dir, path.join(registry.root, r)))) continue;
    if ((await onnxExportState(dir).catch(() => 'missing')) !== 'stale') continue;
    for (const file of [DECODER_ONNX, DECODER_ONNX_INFO]) {
      const p = path.join(dir, file);
      report.bytesFreed += await diskBytes(p);
      if (!dryRun) await fsp.rm(p, { force: true });
    }
    report.onnxExportsRemoved.push(path.relative(dataDir, path.join(dir, DECODER_ONNX)));
  }

  // Old generations, with their reactions and message references.
  if (opts.store) {
    const cutoff = new Date((opts.now ?? new Date()).getTime() - settings.generationDays * 86_400_000).toISOString();
    const removed = await opts.store.generations.removeBefore(cutoff, { dryRun });
    report.generationsRemoved = removed.generations;
    report.feedbackRemoved = removed.feedback;
    if (opts.store.kind === 'postgres') report.requestsRemoved = await pruneFinishedRequests((opts.store as PostgresBotStore).pool, cutoff, { dryRun });
  }
  log.info({ dryRun, runsRemoved: report.runsRemoved.length, sampleFolders: report.sampleFoldersRemoved.length,
    onnxExports: report.onnxExportsRemoved.length, generations: report.generationsRemoved, feedback: report.feedbackRemoved, requests: report.requestsRemoved,
    bytesFreed: report.bytesFreed }, dryRun ? 'prune (dry run)' : 'pruned the data directory');
  return report;
}

/** The parts of the data directory `/metrics` reports, in bytes. */
export async function dataDirUsage(dataDir: string): Promise<Record<string, number>> {
  const parts: Record<string, number> = {};
  for (const [part, rel] of [['checkpoints', 'checkpoints'], ['datasets', 'datasets'], ['clip_cache', 'models']] as const) {
    parts[part] = await diskBytes(path.join(dataDir, rel));
  }
  parts.database = (await diskBytes(path.join(dataDir, 'bot.sqlite'))) + (await diskBytes(path.join(dataDir, 'bot.sqlite-wal')));
  parts.total = await diskBytes(dataDir);
  return parts;
}

/** Caches {@link dataDirUsage} for `ttlMs` (a walk of a large dataset folder is not free). */
export function cachedDataDirUsage(dataDir: string, ttlMs = 300_000): () => Promise<Record<string, number>> {
  let last: { at: number; value: Promise<Record<string, number>> } | null = null;
  return () => {
    if (!last || Date.now() - last.at > ttlMs) last = { at: Date.now(), value: dataDirUsage(dataDir) };
    return last.value;
  };
}

/** Runs the prune every `everyHours` hours (timer unref'd); returns a stop function. */
export function schedulePrune(run: () => Promise<unknown>, everyHours: number): () => void {
  const timer = setInterval(() => {
    run().catch((err: unknown) => log.error({ err }, 'scheduled prune failed'));
  }, everyHours * 3_600_000);
  timer.unref();
  return () => clearInterval(timer);
}

