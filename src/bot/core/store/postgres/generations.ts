/** The generations table in PostgreSQL: the SQLite store's queries, with `position` for rowid and upserts for OR REPLACE. */
import type pg from 'pg';
import type { Platform } from '../../types.js';
import {
  generationFromRow, generationParams, prunableGenerationsSql, type GenerationPosition, type GenerationRecord, type GenerationRow, type GenerationStore,
} from '../generation-store.js';
import { inTransaction } from '../../../../util/postgres.js';

const COLUMNS = ['id', 'platform', 'workspaceId', 'channelId', 'userId', 'kind', 'parentId', 'prompt', 'seeds', 'count',
  'variationSeed', 'model', 'clipModel', 'latencyMs', 'messageRef', 'createdAt'] as const;

export class PgGenerationStore implements GenerationStore {
  constructor(private readonly pool: pg.Pool) {}

  async insert(g: GenerationRecord): Promise<boolean> {
    const p = generationParams(g);
    const r = await this.pool.query(
      `INSERT INTO generations (id, platform, workspace_id, channel_id, user_id, kind, parent_id, prompt, seeds, count,
         variation_seed, model, clip_model, latency_ms, message_ref, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ON CONFLICT (id) DO NOTHING`,
      COLUMNS.map((c) => p[c] ?? null),
    );
    return r.rowCount === 1;
  }

  async get(id: string): Promise<GenerationRecord | null> {
    return getWith(this.pool, id);
  }

  async attachMessage(id: string, messageRef: string, imageIndex?: number): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const g = (await c.query<{ platform: string }>('SELECT platform FROM generations WHERE id = $1', [id])).rows[0];
      if (!g) return false;
      if (imageIndex === undefined) await c.query('UPDATE generations SET message_ref = $1 WHERE id = $2', [messageRef, id]);
      await c.query(
        `INSERT INTO generation_messages (platform, message_ref, generation_id, image_index, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (platform, message_ref) DO UPDATE
           SET generation_id = excluded.generation_id, image_index = excluded.image_index, created_at = excluded.created_at`,
        [g.platform, messageRef, id, imageIndex ?? null, new Date().toISOString()],
      );
      return true;
    });
  }

  async byMessage(platform: Platform, messageRef: string): Promise<{ generation: GenerationRecord; imageIndex: number | null } | null> {
    const link = (await this.pool.query<{ generation_id: string; image_index: number | null }>(
      'SELECT generation_id, image_index FROM generation_messages WHERE platform = $1 AND message_ref = $2', [platform, messageRef],
    )).rows[0];
    if (!link) return null;
    const g = await getWith(this.pool, link.generation_id);
    return g ? { generation: g, imageIndex: link.image_index } : null;
  }

  async lastPosition(): Promise<number> {
    return Number((await this.pool.query<{ n: string }>('SELECT COALESCE(MAX(position), 0) AS n FROM generations')).rows[0].n);
  }

  async after(cursor: number, limit = 10_000): Promise<GenerationPosition[]> {
    const rows = (await this.pool.query<{ position: string; platform: string; kind: GenerationPosition['kind']; model: string; latencyMs: number }>(
      'SELECT position, platform, kind, model, latency_ms AS "latencyMs" FROM generations WHERE position > $1 ORDER BY position LIMIT $2',
      [cursor, limit],
    )).rows;
    return rows.map((r) => ({ ...r, position: Number(r.position) }));
  }

  async list(since?: string): Promise<GenerationRecord[]> {
    const rows = (since
      ? await this.pool.query<GenerationRow>('SELECT * FROM generations WHERE created_at >= $1 ORDER BY created_at COLLATE "C", id COLLATE "C"', [since])
      : await this.pool.query<GenerationRow>('SELECT * FROM generations ORDER BY created_at COLLATE "C", id COLLATE "C"')).rows;
    return rows.map(generationFromRow);
  }

  async removeBefore(cutoff: string, opts: { dryRun?: boolean } = {}): Promise<{ generations: number; feedback: number }> {
    const old = prunableGenerationsSql(() => '$1');
    if (opts.dryRun) {
      const [g, f] = await Promise.all([
        this.pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM generations WHERE id IN (${old})`, [cutoff]),
        this.pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM feedback WHERE generation_id IN (${old})`, [cutoff]),
      ]);
      return { generations: Number(g.rows[0].n), feedback: Number(f.rows[0].n) };
    }
    return inTransaction(this.pool, async (c) => {
      const feedback = (await c.query(`DELETE FROM feedback WHERE generation_id IN (${old})`, [cutoff])).rowCount ?? 0;
      await c.query(`DELETE FROM generation_messages WHERE generation_id IN (${old})`, [cutoff]);
      const generations = (await c.query(`DELETE FROM generations WHERE id IN (${old})`, [cutoff])).rowCount ?? 0;
      return { generations, feedback };
    });
  }
}

async function getWith(q: pg.Pool | pg.PoolClient, id: string): Promise<GenerationRecord | null> {
  const r = (await q.query<GenerationRow>('SELECT * FROM generations WHERE id = $1', [id])).rows[0];
  return r ? generationFromRow(r) : null;
}
