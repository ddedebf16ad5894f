/** The feedback table in SQLite. */
import type { Db } from './database.js';
import {
  feedbackFromRow, feedbackKind, modelStats, type FeedbackEvent, type FeedbackInput, type FeedbackKind, type FeedbackRow,
  type FeedbackStore, type ModelStats,
} from '../feedback-store.js';

export class SqliteFeedbackStore implements FeedbackStore {
  constructor(private readonly db: Db) {}

  async record(e: FeedbackInput): Promise<boolean> {
    const imageIndex = e.imageIndex ?? null;
    return this.db.transaction(() => {
      const last = this.db.prepare(
        `SELECT added FROM feedback WHERE generation_id = ? AND user_id = ? AND reaction = ? AND image_index IS ?
         ORDER BY id DESC LIMIT 1`,
      ).get(e.generationId, e.userId, e.reaction, imageIndex) as { added: number } | undefined;
      const present = last?.added === 1;
      if (present === e.added) return false;
      this.db.prepare(
        `INSERT INTO feedback (generation_id, image_index, platform, user_id, reaction, kind, added, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(e.generationId, imageIndex, e.platform, e.userId, e.reaction, feedbackKind(e.reaction), e.added ? 1 : 0,
        (e.at ?? new Date()).toISOString());
      return true;
    })();
  }

  async lastId(): Promise<number> {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM feedback').get() as { n: number }).n;
  }

  async after(cursor: number, limit = 10_000): Promise<{ id: number; kind: FeedbackKind; added: boolean }[]> {
    return (this.db.prepare('SELECT id, kind, added FROM feedback WHERE id > ? ORDER BY id LIMIT ?').all(cursor, limit) as { id: number; kind: FeedbackKind; added: number }[])
      .map((r) => ({ id: r.id, kind: r.kind, added: r.added === 1 }));
  }

  async list(since?: string): Promise<FeedbackEvent[]> {
    const rows = (since
      ? this.db.prepare('SELECT * FROM feedback WHERE created_at >= ? ORDER BY id').all(since)
      : this.db.prepare('SELECT * FROM feedback ORDER BY id').all()) as FeedbackRow[];
    return rows.map(feedbackFromRow);
  }

  async stats(since?: string): Promise<ModelStats[]> {
    const cutoff = since ?? '';
    const gens = this.db.prepare(
      'SELECT model, COUNT(*) AS n FROM generations WHERE created_at >= ? GROUP BY model ORDER BY model',
    ).all(cutoff) as { model: string; n: number }[];
    const current = this.db.prepare(
      `SELECT g.model AS model, f.kind AS kind, COUNT(*) AS n
       FROM feedback f JOIN generations g ON g.id = f.generation_id
       WHERE g.created_at >= ? AND f.added = 1 AND f.id = (
         SELECT MAX(f2.id) FROM feedback f2 WHERE f2.generation_id = f.generation_id AND f2.user_id = f.user_id
           AND f2.reaction = f.reaction AND f2.image_index IS f.image_index)
       GROUP BY g.model, f.kind`,
    ).all(cutoff) as { model: string; kind: FeedbackKind; n: number }[];
    return modelStats(gens, current);
  }
}
