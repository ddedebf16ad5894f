/** The runs and published_models tables in SQLite. */
import type { Db } from './database.js';
import type { TrainingProgress } from '../../training-progress.js';
import {
  ORPHAN_MESSAGE, runFromRow, staleCutoff, statusCounts, type RunFinish, type RunRecord, type RunRow, type RunStart,
  type RunStatus, type RunStore,
} from '../run-store.js';

export class SqliteRunStore implements RunStore {
  constructor(private readonly db: Db, readonly owner: string) {}

  async start(r: RunStart): Promise<void> {
    this.db.prepare(
      `INSERT INTO runs (id, preset, epochs, dataset, platform, channel_id, user_id, status, started_at, owner, heartbeat_at)
       VALUES (@id, @preset, @epochs, @dataset, @platform, @channelId, @userId, 'running', @startedAt, @owner, @now)`,
    ).run({ ...r, owner: this.owner, now: new Date().toISOString() });
  }

  async finish(id: string, f: RunFinish): Promise<void> {
    const progress = f.progress === undefined ? null : JSON.stringify(f.progress);
    this.db.prepare(
      `UPDATE runs SET status = ?, message = ?, checkpoint_dir = ?, best_val_loss = ?, finished_at = ?, progress = COALESCE(?, progress)
       WHERE id = ?`,
    ).run(f.status, f.message ?? null, f.checkpointDir ?? null, f.bestValLoss ?? null, new Date().toISOString(), progress, id);
  }

  async setProgress(id: string, progress: TrainingProgress): Promise<void> {
    this.db.prepare('UPDATE runs SET progress = ?, heartbeat_at = ? WHERE id = ?').run(JSON.stringify(progress), new Date().toISOString(), id);
  }

  async touch(id: string): Promise<void> {
    this.db.prepare('UPDATE runs SET heartbeat_at = ? WHERE id = ?').run(new Date().toISOString(), id);
  }

  async get(id: string): Promise<RunRecord | null> {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return r ? runFromRow(r) : null;
  }

  async recent(limit = 5): Promise<RunRecord[]> {
    return (this.db.prepare('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as RunRow[]).map(runFromRow);
  }

  async running(opts: { staleAfterMs?: number; now?: Date } = {}): Promise<RunRecord | null> {
    const r = this.db.prepare(
      `SELECT * FROM runs WHERE status = 'running' AND heartbeat_at >= ? ORDER BY started_at DESC LIMIT 1`,
    ).get(staleCutoff(opts)) as RunRow | undefined;
    return r ? runFromRow(r) : null;
  }

  async failOrphans(opts: { staleAfterMs?: number; now?: Date } = {}): Promise<number> {
    return this.db.prepare(
      `UPDATE runs SET status = 'failed', message = ?, finished_at = ?
       WHERE status = 'running' AND (owner IS NULL OR owner = ? OR heartbeat_at IS NULL OR heartbeat_at < ?)`,
    ).run(ORPHAN_MESSAGE, new Date().toISOString(), this.owner, staleCutoff(opts)).changes;
  }

  async countByStatus(): Promise<Record<RunStatus, number>> {
    return statusCounts(this.db.prepare('SELECT status, COUNT(*) AS n FROM runs GROUP BY status').all() as { status: RunStatus; n: number }[]);
  }

  async markServed(name: string): Promise<void> {
    this.db.prepare('INSERT OR IGNORE INTO published_models (name, published_at) VALUES (?, ?)').run(name, new Date().toISOString());
  }

  async setPublished(name: string, published: boolean): Promise<void> {
    if (published) {
      this.db.prepare(
        `INSERT INTO published_models (name, published_at) VALUES (?, ?)
         ON CONFLICT(name) DO UPDATE SET published_at = excluded.published_at`,
      ).run(name, new Date().toISOString());
    } else {
      this.db.prepare('DELETE FROM published_models WHERE name = ?').run(name);
    }
  }

  async isPublished(name: string): Promise<boolean> {
    return Boolean(this.db.prepare('SELECT 1 FROM published_models WHERE name = ?').get(name));
  }

  async publishedNames(): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT name FROM published_models').all() as { name: string }[]).map((r) => r.name));
  }
}
