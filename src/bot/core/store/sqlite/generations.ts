/** The generations table in SQLite. */
import type { Db } from './database.js';
import type { Platform } from '../../types.js';
import {
  generationFromRow, generationParams, prunableGenerationsSql, type GenerationPosition, type GenerationRecord, type GenerationRow, type GenerationStore,
} from '../generation-store.js';

export class SqliteGenerationStore implements GenerationStore {
  constructor(private readonly db: Db) {}

  async insert(g: GenerationRecord): Promise<boolean> {
    return this.db.prepare(
      `INSERT INTO generations (id, platform, workspace_id, channel_id, user_id, kind, parent_id, prompt, seeds, count,
         variation_seed, model, clip_model, latency_ms, message_ref, created_at)
       VALUES (@id, @platform, @workspaceId, @channelId, @userId, @kind, @parentId, @prompt, @seeds, @count,
         @variationSeed, @model, @clipModel, @latencyMs, @messageRef, @createdAt)
       ON CONFLICT (id) DO NOTHING`,
    ).run(generationParams(g)).changes === 1;
  }

  async get(id: string): Promise<GenerationRecord | null> {
    return this.getNow(id);
  }

  private getNow(id: string): GenerationRecord | null {
    const r = this.db.prepare('SELECT * FROM generations WHERE id = ?').get(id) as GenerationRow | undefined;
    return r ? generationFromRow(r) : null;
  }

  async attachMessage(id: string, messageRef: string, imageIndex?: number): Promise<boolean> {
    return this.db.transaction(() => {
      const g = this.db.prepare('SELECT platform FROM generations WHERE id = ?').get(id) as { platform: string } | undefined;
      if (!g) return false;
      if (imageIndex === undefined) this.db.prepare('UPDATE generations SET message_ref = ? WHERE id = ?').run(messageRef, id);
      this.db.prepare(
        `INSERT OR REPLACE INTO generation_messages (platform, message_ref, generation_id, image_index, created_at) VALUES (?, ?, ?, ?, ?)`,
      ).run(g.platform, messageRef, id, imageIndex ?? null, new Date().toISOString());
      return true;
    })();
  }

  async byMessage(platform: Platform, messageRef: string): Promise<{ generation: GenerationRecord; imageIndex: number | null } | null> {
    const link = this.db.prepare('SELECT generation_id, image_index FROM generation_messages WHERE platform = ? AND message_ref = ?')
      .get(platform, messageRef) as { generation_id: string; image_index: number | null } | undefined;
    if (!link) return null;
    const g = this.getNow(link.generation_id);
    return g ? { generation: g, imageIndex: link.image_index } : null;
  }

  async lastPosition(): Promise<number> {
    return (this.db.prepare('SELECT COALESCE(MAX(rowid), 0) AS n FROM generations').get() as { n: number }).n;
  }

  async after(cursor: number, limit = 10_000): Promise<GenerationPosition[]> {
    return this.db.prepare(
      'SELECT rowid AS position, platform, kind, model, latency_ms AS latencyMs FROM generations WHERE rowid > ? ORDER BY rowid LIMIT ?',
    ).all(cursor, limit) as GenerationPosition[];
  }

  async list(since?: string): Promise<GenerationRecord[]> {
    const rows = (since
      ? this.db.prepare('SELECT * FROM generations WHERE created_at >= ? ORDER BY created_at, id').all(since)
      : this.db.prepare('SELECT * FROM generations ORDER BY created_at, id').all()) as GenerationRow[];
    return rows.map(generationFromRow);
  }

  async removeBefore(cutoff: string, opts: { dryRun?: boolean } = {}): Promise<{ generations: number; feedback: number }> {
    const old = prunableGenerationsSql(() => '?');
    if (opts.dryRun) {
      return {
        generations: (this.db.prepare(`SELECT COUNT(*) AS n FROM generations WHERE id IN (${old})`).get(cutoff, cutoff) as { n: number }).n,
        feedback: (this.db.prepare(`SELECT COUNT(*) AS n FROM feedback WHERE generation_id IN (${old})`).get(cutoff, cutoff) as { n: number }).n,
      };
    }
    return this.db.transaction(() => {
      const feedback = this.db.prepare(`DELETE FROM feedback WHERE generation_id IN (${old})`).run(cutoff, cutoff).changes;
      this.db.prepare(`DELETE FROM generation_messages WHERE generation_id IN (${old})`).run(cutoff, cutoff);
      const generations = this.db.prepare(`DELETE FROM generations WHERE id IN (${old})`).run(cutoff, cutoff).changes;
      return { generations, feedback };
    })();
  }
}
