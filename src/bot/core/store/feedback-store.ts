/**
 * Feedback: reactions on generation messages. Every add and remove is an event row; adding a reaction that is
 * already there (or removing one that is not) is ignored, so the same reaction twice counts once.
 */
import type { Db } from './database.js';
import type { Platform } from '../types.js';

export type FeedbackKind = 'up' | 'down' | 'favourite' | 'other';

const KINDS: Record<string, FeedbackKind> = {
  '👍': 'up', '+1': 'up', thumbsup: 'up', '👎': 'down', '-1': 'down', thumbsdown: 'down',
  '⭐': 'favourite', star: 'favourite', '🌟': 'favourite', star2: 'favourite',
};

/** What a reaction means: 👍 up, 👎 down, ⭐ favourite (unicode or Slack names, skin tones ignored), else other. */
export function feedbackKind(reaction: string): FeedbackKind {
  const base = reaction.replace(/::skin-tone-\d$/, '').replace(/[\u{1F3FB}-\u{1F3FF}\uFE0F]/gu, '');
  return KINDS[base] ?? 'other';
}

export interface FeedbackEvent {
  id: number;
  generationId: string;
  imageIndex: number | null;
  platform: Platform;
  userId: string;
  reaction: string;
  kind: FeedbackKind;
  added: boolean;
  createdAt: string;
}

export interface ModelStats {
  model: string;
  generations: number;
  up: number;
  down: number;
  favourite: number;
  /** up / (up + down), null when neither. */
  upRatio: number | null;
}

interface Row {
  id: number; generation_id: string; image_index: number | null; platform: string; user_id: string;
  reaction: string; kind: string; added: number; created_at: string;
}

/** Reads and writes the feedback table. */
export class FeedbackStore {
  constructor(private readonly db: Db) {}

  /**
   * Records an add or remove. Returns false (and writes nothing) when it would not change the reaction's state:
   * a second add of a reaction that is there, or a remove of one that is not.
   */
  record(e: { generationId: string; imageIndex?: number | null; platform: Platform; userId: string; reaction: string; added: boolean; at?: Date }): boolean {
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

  /** The id of the newest feedback event (0 when there is none): a cursor for {@link after}. */
  lastId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM feedback').get() as { n: number }).n;
  }

  /** Up to `limit` feedback events recorded after id `cursor`, oldest first (for /metrics). */
  after(cursor: number, limit = 10_000): { id: number; kind: FeedbackKind; added: boolean }[] {
    return (this.db.prepare('SELECT id, kind, added FROM feedback WHERE id > ? ORDER BY id LIMIT ?').all(cursor, limit) as { id: number; kind: FeedbackKind; added: number }[])
      .map((r) => ({ id: r.id, kind: r.kind, added: r.added === 1 }));
  }

  /** Feedback events at or after `since` (ISO time), oldest first. */
  list(since?: string): FeedbackEvent[] {
    const rows = (since
      ? this.db.prepare('SELECT * FROM feedback WHERE created_at >= ? ORDER BY id').all(since)
      : this.db.prepare('SELECT * FROM feedback ORDER BY id').all()) as Row[];
    return rows.map((r) => ({
      id: r.id, generationId: r.generation_id, imageIndex: r.image_index, platform: r.platform as Platform,
      userId: r.user_id, reaction: r.reaction, kind: r.kind as FeedbackKind, added: r.added === 1, createdAt: r.created_at,
    }));
  }

  /** Per model: generations and the reactions currently in place (adds not later removed). */
  stats(since?: string): ModelStats[] {
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
    return gens.map(({ model, n }) => {
      const count = (k: FeedbackKind) => current.find((c) => c.model === model && c.kind === k)?.n ?? 0;
      const up = count('up');
      const down = count('down');
      return { model, generations: n, up, down, favourite: count('favourite'), upRatio: up + down ? up / (up + down) : null };
    });
  }
}
