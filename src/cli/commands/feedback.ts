/**
 * `feedback export --format jsonl|csv [--since DATE] [--out FILE]`: every reaction event (added and removed)
 * with its generation (platform, channel, user, prompt, seeds, model, CLIP model).
 * `feedback stats [--since DATE] [--json]`: per model, generations and the reactions in place (up/down ratio).
 * Both read the bot's store: PostgreSQL at DATABASE_URL when set (scaled mode), else the SQLite file in DATA_DIR.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { dataDir } from '../../paths.js';
import type { BotStore, ModelStats } from '../../bot/core/store/index.js';
import { openCliStore } from './bot-store.js';

/** Where a command prints its results (stdout by default; tests pass their own). */
export interface CommandOutput {
  write(text: string): void;
}

const stdoutOutput: CommandOutput = { write: (text) => void process.stdout.write(text) };

/** One exported row: a reaction event with its generation. */
export interface FeedbackExportRow {
  time: string;
  action: 'added' | 'removed';
  reaction: string;
  kind: string;
  reactionUser: string;
  imageIndex: number | null;
  generationId: string;
  platform: string;
  workspace: string;
  channel: string;
  requestedBy: string;
  generationKind: string;
  prompt: string;
  seeds: string;
  count: number;
  model: string;
  clipModel: string;
  latencyMs: number;
  messageRef: string | null;
  generatedAt: string;
}

const COLUMNS: (keyof FeedbackExportRow)[] = ['time', 'action', 'reaction', 'kind', 'reactionUser', 'imageIndex', 'generationId',
  'platform', 'workspace', 'channel', 'requestedBy', 'generationKind', 'prompt', 'seeds', 'count', 'model', 'clipModel', 'latencyMs',
  'messageRef', 'generatedAt'];

/** Parses `--since` (an ISO date or date-time) into an ISO string. */
export function parseSince(since: string | undefined): string | undefined {
  if (since === undefined) return undefined;
  const d = new Date(since);
  if (!/^\d{4}-\d{2}-\d{2}/.test(since) || Number.isNaN(d.getTime())) {
    throw new UserError(`--since must be a date like 2024-05-01 or 2024-05-01T12:00:00Z, got "${since.slice(0, 40)}"`);
  }
  return d.toISOString();
}

/** The export rows: feedback events at or after `since`, oldest first. */
export async function feedbackRows(store: BotStore, since?: string): Promise<FeedbackExportRow[]> {
  const generations = new Map((await store.generations.list()).map((g) => [g.id, g]));
  return (await store.feedback.list(since)).map((f) => {
    const g = generations.get(f.generationId)!;
    return {
      time: f.createdAt, action: f.added ? 'added' : 'removed', reaction: f.reaction, kind: f.kind, reactionUser: f.userId,
      imageIndex: f.imageIndex, generationId: g.id, platform: g.platform, workspace: g.workspaceId, channel: g.channelId,
      requestedBy: g.userId, generationKind: g.kind, prompt: g.prompt, seeds: g.seeds.join(' '), count: g.seeds.length,
      model: g.model, clipModel: g.clipModel, latencyMs: g.latencyMs, messageRef: g.messageRef, generatedAt: g.createdAt,
    };
  });
}

/** One CSV cell (RFC 4180 quoting; cells that a spreadsheet would run as a formula get a leading apostrophe). */
export function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : String(value);
  if (/^[=+@\t\r]/.test(s) || /^-[^0-9]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The rows as JSON lines or CSV (with a header). */
export function formatFeedback(rows: FeedbackExportRow[], format: 'jsonl' | 'csv'): string {
  if (format === 'jsonl') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  return [COLUMNS.join(','), ...rows.map((r) => COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
}

/** A text table of per-model stats. */
export function formatStats(stats: ModelStats[]): string {
  if (!stats.length) return 'no generations recorded yet\n';
  const header = ['model', 'generations', 'up', 'down', 'favourite', 'up ratio'];
  const rows = stats.map((s) => [s.model, String(s.generations), String(s.up), String(s.down), String(s.favourite),
    s.upRatio === null ? '-' : `${(s.upRatio * 100).toFixed(0)}%`]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n') + '\n';
}

async function openStore(env: NodeJS.ProcessEnv): Promise<BotStore> {
  const store = await openCliStore(dataDir(), env);
  if (!store) {
    throw new UserError(`There is no bot database at ${path.join(dataDir(), 'bot.sqlite')} yet (set DATA_DIR to the bot's data folder, or DATABASE_URL in scaled mode).`);
  }
  return store;
}

/** Runs `feedback export`. Returns the number of rows written. */
export async function runFeedbackExport(opts: { format?: string; since?: string; out?: string }, out: CommandOutput = stdoutOutput,
  env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const format = opts.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UserError(`--format must be jsonl or csv, got "${format.slice(0, 20)}"`);
  const since = parseSince(opts.since);
  const store = await openStore(env);
  try {
    const rows = await feedbackRows(store, since);
    const text = formatFeedback(rows, format);
    if (opts.out) {
      fs.writeFileSync(opts.out, text);
      out.write(`wrote ${rows.length} feedback events to ${opts.out}\n`);
    } else {
      out.write(text);
    }
    return rows.length;
  } finally {
    await store.close();
  }
}

/** Runs `feedback stats`. */
export async function runFeedbackStats(opts: { since?: string; json?: boolean }, out: CommandOutput = stdoutOutput,
  env: NodeJS.ProcessEnv = process.env): Promise<ModelStats[]> {
  const since = parseSince(opts.since);
  const store = await openStore(env);
  try {
    const stats = await store.feedback.stats(since);
    out.write(opts.json ? `${JSON.stringify(stats)}\n` : formatStats(stats));
    return stats;
  } finally {
    await store.close();
  }
}

/** Adds `feedback export` and `feedback stats`. */
export function register(program: Command): void {
  const feedback = program.command('feedback').description('reactions on generated images: export and per-model stats');
  feedback
    .command('export')
    .description('export every reaction event with its generation')
    .option('--format <format>', 'jsonl or csv', 'jsonl')
    .option('--since <date>', 'only events at or after this date (ISO)')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (opts: { format?: string; since?: string; out?: string }) => { await runFeedbackExport(opts); });
  feedback
    .command('stats')
    .description('per model: generations, up/down reactions and their ratio')
    .option('--since <date>', 'only generations at or after this date (ISO)')
    .option('--json', 'print JSON')
    .action(async (opts: { since?: string; json?: boolean }) => { await runFeedbackStats(opts); });
}
