/** Generations: one row per /imagine, reroll or variations reply. */
import type { Db } from './database.js';
import type { Platform } from '../types.js';

export type GenerationKind = 'imagine' | 'reroll' | 'variations';

export interface GenerationRecord {
  id: string;
  platform: Platform;
  workspaceId: string;
  channelId: string;
  userId: string;
  kind: GenerationKind;
  parentId: string | null;
  prompt: string;
  seeds: number[];
  /** Seed of the embedding perturbation of a variations reply (null otherwise). */
  variationSeed: number | null;
  model: string;
  clipModel: string;
  latencyMs: number;
  messageRef: string | null;
  createdAt: string;
}

interface Row {
  id: string; platform: string; workspace_id: string; channel_id: string; user_id: string; kind: string;
  parent_id: string | null; prompt: string; seeds: string; count: number; variation_seed: number | null;
  model: string; clip_model: string; latency_ms: number; message_ref: string | null; created_at: string;
}

function fromRow(r: Row): GenerationRecord {
  return {
    id: r.id, platform: r.platform as Platform, workspaceId: r.workspace_id, channelId: r.channel_id, userId: r.user_id,
    kind: r.kind as GenerationKind, parentId: r.parent_id, prompt: r.prompt, seeds: JSON.parse(r.seeds) as number[],
    variationSeed: r.variation_seed, model: r.model, clipModel: r.clip_model, latencyMs: r.latency_ms,
    messageRef: r.message_ref, createdAt: r.created_at,
  };
}

/** Reads and writes the generations table. */
export class GenerationStore {
  constructor(private readonly db: Db) {}

  /** Inserts a generation. */
  insert(g: GenerationRecord): void {
    this.db.prepare(
      `INSERT INTO generations (id, platform, workspace_id, channel_id, user_id, kind, parent_id, prompt, seeds, count,
         variation_seed, model, clip_model, latency_ms, message_ref, created_at)
       VALUES (@id, @platform, @workspaceId, @channelId, @userId, @kind, @parentId, @prompt, @seeds, @count,
         @variationSeed, @model, @clipModel, @latencyMs, @messageRef, @createdAt)`,
    ).run({ ...g, seeds: JSON.stringify(g.seeds), count: g.seeds.length });
  }

  /** The generation with this id, or null. */
  get(id: string): GenerationRecord | null {
    const r = this.db.prepare('SELECT * FROM generations WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /**
   * Links a platform message that shows this generation (the grid when `imageIndex` is undefined, else one image).
   * Returns false when the generation is unknown.
   */
  attachMessage(id: string, messageRef: string, imageIndex?: number): boolean {
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

  /** The generation shown by a platform message (and the image index when it shows one image), or null. */
  byMessage(platform: Platform, messageRef: string): { generation: GenerationRecord; imageIndex: number | null } | null {
    const link = this.db.prepare('SELECT generation_id, image_index FROM generation_messages WHERE platform = ? AND message_ref = ?')
      .get(platform, messageRef) as { generation_id: string; image_index: number | null } | undefined;
    if (!link) return null;
    const g = this.get(link.generation_id);
    return g ? { generation: g, imageIndex: link.image_index } : null;
  }

  /** The position of the newest generation in insertion order (0 when there is none): a cursor for {@link after}. */
  lastPosition(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(rowid), 0) AS n FROM generations').get() as { n: number }).n;
  }

  /** Up to `limit` generations inserted after position `cursor`, oldest first, with their positions (for /metrics). */
  after(cursor: number, limit = 10_000): { position: number; platform: string; kind: GenerationKind; model: string; latencyMs: number }[] {
    return this.db.prepare(
      'SELECT rowid AS position, platform, kind, model, latency_ms AS latencyMs FROM generations WHERE rowid > ? ORDER BY rowid LIMIT ?',
    ).all(cursor, limit) as { position: number; platform: string; kind: GenerationKind; model: string; latencyMs: number }[];
  }

  /** Generations created at or after `since` (ISO time), oldest first. */
  list(since?: string): GenerationRecord[] {
    const rows = (since
      ? this.db.prepare('SELECT * FROM generations WHERE created_at >= ? ORDER BY created_at, id').all(since)
      : this.db.prepare('SELECT * FROM generations ORDER BY created_at, id').all()) as Row[];
    return rows.map(fromRow);
  }
}
