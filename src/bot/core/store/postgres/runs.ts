/** The runs and published_models tables in PostgreSQL: the SQLite store's queries (ON CONFLICT DO NOTHING for OR IGNORE). */
import type pg from 'pg';
import type { TrainingProgress } from '../../training-progress.js';
import {
  ORPHAN_MESSAGE, runFromRow, staleCutoff, statusCounts, type RunFinish, type RunRecord, type RunRow, type RunStart,
  type RunStatus, type RunStore,
} from '../run-store.js';

export class PgRunStore implements RunStore {
  constructor(private readonly pool: pg.Pool, readonly owner: string) {}

  async start(r: RunStart): Promise<void> {
    await this.pool.query(
      `INSERT INTO runs (id, preset, epochs, dataset, platform, channel_id, user_id, status, started_at, owner, heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10)`,
      [r.id, r.preset, r.epochs, r.dataset, r.platform, r.channelId, r.userId, r.startedAt, this.owner, new Date().toISOString()],
    );
  }

  async finish(id: string, f: RunFinish): Promise<void> {
    const progress = f.progress === undefined ? null : JSON.stringify(f.progress);
    await this.pool.query(
      `UPDATE runs SET status = $1, message = $2, checkpoint_dir = $3, best_val_loss = $4, finished_at = $5, progress = COALESCE($6::jsonb, progress)
       WHERE id = $7`,
      [f.status, f.message ?? null, f.checkpointDir ?? null, f.bestValLoss ?? null, new Date().toISOString(), progress, id],
    );
  }

  async setProgress(id: string, progress: TrainingProgress): Promise<void> {
    await this.pool.query('UPDATE runs SET progress = $1::jsonb, heartbeat_at = $2 WHERE id = $3', [JSON.stringify(progress), new Date().toISOString(), id]);
  }

  async touch(id: string): Promise<void> {
    await this.pool.query('UPDATE runs SET heartbeat_at = $1 WHERE id = $2', [new Date().toISOString(), id]);
  }

  async get(id: string): Promise<RunRecord | null> {
    const r = (await this.pool.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id])).rows[0];
    return r ? runFromRow(r) : null;
  }

  async recent(limit = 5): Promise<RunRecord[]> {
    return (await this.pool.query<RunRow>('SELECT * FROM runs ORDER BY started_at DESC LIMIT $1', [limit])).rows.map(runFromRow);
  }

  async running(opts: { staleAfterMs?: number; now?: Date } = {}): Promise<RunRecord | null> {
    const r = (await this.pool.query<RunRow>(
      `SELECT * FROM runs WHERE status = 'running' AND heartbeat_at >= $1 ORDER BY started_at DESC LIMIT 1`, [staleCutoff(opts)],
    )).rows[0];
    return r ? runFromRow(r) : null;
  }

  async failOrphans(opts: { staleAfterMs?: number; now?: Date } = {}): Promise<number> {
    return (await this.pool.query(
      `UPDATE runs SET status = 'failed', message = $1, finished_at = $2
       WHERE status = 'running' AND (owner IS NULL OR owner = $3 OR heartbeat_at IS NULL OR heartbeat_at < $4)`,
      [ORPHAN_MESSAGE, new Date().toISOString(), this.owner, staleCutoff(opts)],
    )).rowCount ?? 0;
  }

  async countByStatus(): Promise<Record<RunStatus, number>> {
    return statusCounts((await this.pool.query<{ status: RunStatus; n: string }>('SELECT status, COUNT(*) AS n FROM runs GROUP BY status')).rows);
  }

  async markServed(name: string): Promise<void> {
    await this.pool.query('INSERT INTO published_models (name, published_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [name, new Date().toISOString()]);
  }

  async setPublished(name: string, published: boolean): Promise<void> {
    if (published) {
      await this.pool.query(
        `INSERT INTO published_models (name, published_at) VALUES ($1, $2)
         ON CONFLICT(name) DO UPDATE SET published_at = excluded.published_at`,
        [name, new Date().toISOString()],
      );
    } else {
      await this.pool.query('DELETE FROM published_models WHERE name = $1', [name]);
    }
  }

  async isPublished(name: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM published_models WHERE name = $1', [name])).rowCount! > 0;
  }

  async publishedNames(): Promise<Set<string>> {
    return new Set((await this.pool.query<{ name: string }>('SELECT name FROM published_models')).rows.map((r) => r.name));
  }
}
