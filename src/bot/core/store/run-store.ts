/**
 * Training runs, and which models an admin published. (Registered models live in the checkpoint registry,
 * `registry.json`; the store keeps only the publication, an admin's decision the registry does not hold.)
 */
import type { Db } from './database.js';
import type { Platform } from '../types.js';

export type RunStatus = 'running' | 'completed' | 'early-stop' | 'stopped' | 'failed';

export interface RunRecord {
  id: string;
  preset: string;
  epochs: number | null;
  dataset: string | null;
  platform: Platform;
  channelId: string;
  userId: string;
  status: RunStatus;
  message: string | null;
  checkpointDir: string | null;
  bestValLoss: number | null;
  startedAt: string;
  finishedAt: string | null;
}

interface Row {
  id: string; preset: string; epochs: number | null; dataset: string | null; platform: string; channel_id: string;
  user_id: string; status: string; message: string | null; checkpoint_dir: string | null; best_val_loss: number | null;
  started_at: string; finished_at: string | null;
}

/** Reads and writes the runs table. */
export class RunStore {
  constructor(private readonly db: Db) {}

  /** Records a run that has just started. */
  start(r: Omit<RunRecord, 'status' | 'message' | 'checkpointDir' | 'bestValLoss' | 'finishedAt'>): void {
    this.db.prepare(
      `INSERT INTO runs (id, preset, epochs, dataset, platform, channel_id, user_id, status, started_at)
       VALUES (@id, @preset, @epochs, @dataset, @platform, @channelId, @userId, 'running', @startedAt)`,
    ).run(r);
  }

  /** Records how a run ended. */
  finish(id: string, f: { status: Exclude<RunStatus, 'running'>; message?: string | null; checkpointDir?: string | null; bestValLoss?: number | null }): void {
    this.db.prepare(
      `UPDATE runs SET status = ?, message = ?, checkpoint_dir = ?, best_val_loss = ?, finished_at = ? WHERE id = ?`,
    ).run(f.status, f.message ?? null, f.checkpointDir ?? null, f.bestValLoss ?? null, new Date().toISOString(), id);
  }

  /** The run with this id, or null. */
  get(id: string): RunRecord | null {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /** The most recent runs, newest first. */
  recent(limit = 5): RunRecord[] {
    return (this.db.prepare('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as Row[]).map(fromRow);
  }

  /** Marks runs left 'running' by a previous process (it died with them) as failed. Returns how many. */
  failOrphans(): number {
    return this.db.prepare(
      `UPDATE runs SET status = 'failed', message = 'the bot stopped while this run was going', finished_at = ? WHERE status = 'running'`,
    ).run(new Date().toISOString()).changes;
  }

  /** How many runs the store holds in each status (every status present, 0 when none). */
  countByStatus(): Record<RunStatus, number> {
    const counts: Record<RunStatus, number> = { running: 0, completed: 0, 'early-stop': 0, stopped: 0, failed: 0 };
    for (const r of this.db.prepare('SELECT status, COUNT(*) AS n FROM runs GROUP BY status').all() as { status: RunStatus; n: number }[]) {
      counts[r.status] = r.n;
    }
    return counts;
  }

  /** Records that a model became the served one: serving publishes it (a publication made earlier keeps its date). */
  markServed(name: string): void {
    this.db.prepare('INSERT OR IGNORE INTO published_models (name, published_at) VALUES (?, ?)').run(name, new Date().toISOString());
  }

  /** Publishes a model (anyone may pick it) or takes it back. */
  setPublished(name: string, published: boolean): void {
    if (published) {
      this.db.prepare(
        `INSERT INTO published_models (name, published_at) VALUES (?, ?)
         ON CONFLICT(name) DO UPDATE SET published_at = excluded.published_at`,
      ).run(name, new Date().toISOString());
    } else {
      this.db.prepare('DELETE FROM published_models WHERE name = ?').run(name);
    }
  }

  /** Whether an admin has published the model. */
  isPublished(name: string): boolean {
    return Boolean(this.db.prepare('SELECT 1 FROM published_models WHERE name = ?').get(name));
  }

  /** Names of the published models. */
  publishedNames(): Set<string> {
    return new Set((this.db.prepare('SELECT name FROM published_models').all() as { name: string }[]).map((r) => r.name));
  }
}

function fromRow(r: Row): RunRecord {
  return {
    id: r.id, preset: r.preset, epochs: r.epochs, dataset: r.dataset, platform: r.platform as Platform,
    channelId: r.channel_id, userId: r.user_id, status: r.status as RunStatus, message: r.message,
    checkpointDir: r.checkpoint_dir, bestValLoss: r.best_val_loss, startedAt: r.started_at, finishedAt: r.finished_at,
  };
}
