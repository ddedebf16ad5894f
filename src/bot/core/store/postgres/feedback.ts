/** The feedback table in PostgreSQL: the SQLite store's queries (`IS NOT DISTINCT FROM` for SQLite's `IS`). */
import type pg from 'pg';
import {
  feedbackFromRow, feedbackKind, modelStats, type FeedbackEvent, type FeedbackInput, type FeedbackKind, type FeedbackRow,
  type FeedbackStore, type ModelStats,
} from '../feedback-store.js';
import { inTransaction } from '../../../../util/postgres.js';

export class PgFeedbackStore implements FeedbackStore {
  constructor(private readonly pool: pg.Pool) {}

  async record(e: FeedbackInput): Promise<boolean> {
    const imageIndex = e.imageIndex ?? null;
    return inTransaction(this.pool, async (c) => {
      // Several ingress replicas may record the same reaction at once (a platform retry): one at a time per reaction.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [JSON.stringify(['feedback', e.generationId, e.userId, e.reaction])]);
      const last = (await c.query<{ added: number }>(
        `SELECT added FROM feedback WHERE generation_id = $1 AND user_id = $2 AND reaction = $3 AND image_index IS NOT DISTINCT FROM $4
         ORDER BY id DESC LIMIT 1`,
        [e.generationId, e.userId, e.reaction, imageIndex],
      )).rows[0];
      const present = last?.added === 1;
      if (present === e.added) return false;
      await c.query(
        `INSERT INTO feedback (generation_id, image_index, platform, user_id, reaction, kind, added, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [e.generationId, imageIndex, e.platform, e.userId, e.reaction, feedbackKind(e.reaction), e.added ? 1 : 0, (e.at ?? new Date()).toISOString()],
      );
      return true;
    });
  }

  async lastId(): Promise<number> {
    return Number((await this.pool.query<{ n: string }>('SELECT COALESCE(MAX(id), 0) AS n FROM feedback')).rows[0].n);
  }

  async after(cursor: number, limit = 10_000): Promise<{ id: number; kind: FeedbackKind; added: boolean }[]> {
    const rows = (await this.pool.query<{ id: string; kind: FeedbackKind; added: number }>(
      'SELECT id, kind, added FROM feedback WHERE id > $1 ORDER BY id LIMIT $2', [cursor, limit],
    )).rows;
    return rows.map((r) => ({ id: Number(r.id), kind: r.kind, added: r.added === 1 }));
  }

  async list(since?: string): Promise<FeedbackEvent[]> {
    const rows = (since
      ? await this.pool.query<FeedbackRow>('SELECT * FROM feedback WHERE created_at >= $1 ORDER BY id', [since])
      : await this.pool.query<FeedbackRow>('SELECT * FROM feedback ORDER BY id')).rows;
    return rows.map(feedbackFromRow);
  }

  async stats(since?: string): Promise<ModelStats[]> {
    const cutoff = since ?? '';
    const [gens, current] = await Promise.all([
      this.pool.query<{ model: string; n: string }>(
        'SELECT model, COUNT(*) AS n FROM generations WHERE created_at >= $1 GROUP BY model ORDER BY model COLLATE "C"', [cutoff],
      ),
      this.pool.query<{ model: string; kind: FeedbackKind; n: string }>(
        `SELECT g.model AS model, f.kind AS kind, COUNT(*) AS n
         FROM feedback f JOIN generations g ON g.id = f.generation_id
         WHERE g.created_at >= $1 AND f.added = 1 AND f.id = (
           SELECT MAX(f2.id) FROM feedback f2 WHERE f2.generation_id = f.generation_id AND f2.user_id = f.user_id
             AND f2.reaction = f.reaction AND f2.image_index IS NOT DISTINCT FROM f.image_index)
         GROUP BY g.model, f.kind`,
        [cutoff],
      ),
    ]);
    return modelStats(gens.rows, current.rows);
  }
}
