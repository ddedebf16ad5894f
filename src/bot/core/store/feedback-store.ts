/**
 * Feedback: reactions on generation messages. Every add and remove is an event row; adding a reaction that is
 * already there (or removing one that is not) is ignored, so the same reaction twice counts once.
 * The contract both stores (SQLite, PostgreSQL) keep.
 */
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

/** One reaction add or remove to record. */
export interface FeedbackInput {
  generationId: string;
  imageIndex?: number | null;
  platform: Platform;
  userId: string;
  reaction: string;
  added: boolean;
  at?: Date;
}

/** Reads and writes the feedback table. */
export interface FeedbackStore {
  /**
   * Records an add or remove. Resolves false (and writes nothing) when it would not change the reaction's state:
   * a second add of a reaction that is there, or a remove of one that is not.
   */
  record(e: FeedbackInput): Promise<boolean>;
  /** The id of the newest feedback event (0 when there is none): a cursor for {@link after}. */
  lastId(): Promise<number>;
  /** Up to `limit` feedback events recorded after id `cursor`, oldest first (for /metrics). */
  after(cursor: number, limit?: number): Promise<{ id: number; kind: FeedbackKind; added: boolean }[]>;
  /** Feedback events at or after `since` (ISO time), oldest first. */
  list(since?: string): Promise<FeedbackEvent[]>;
  /** Per model: generations and the reactions currently in place (adds not later removed). */
  stats(since?: string): Promise<ModelStats[]>;
}

/** A feedback row as both databases return it (PostgreSQL's ids come back as strings). */
export interface FeedbackRow {
  id: number | string; generation_id: string; image_index: number | null; platform: string; user_id: string;
  reaction: string; kind: string; added: number; created_at: string;
}

export function feedbackFromRow(r: FeedbackRow): FeedbackEvent {
  return {
    id: Number(r.id), generationId: r.generation_id, imageIndex: r.image_index, platform: r.platform as Platform,
    userId: r.user_id, reaction: r.reaction, kind: r.kind as FeedbackKind, added: Number(r.added) === 1, createdAt: r.created_at,
  };
}

/** The per-model stats from the generation counts and the counts of reactions in place by model and kind. */
export function modelStats(gens: { model: string; n: number | string }[], current: { model: string; kind: string; n: number | string }[]): ModelStats[] {
  return gens.map(({ model, n }) => {
    const count = (k: FeedbackKind) => Number(current.find((c) => c.model === model && c.kind === k)?.n ?? 0);
    const up = count('up');
    const down = count('down');
    return { model, generations: Number(n), up, down, favourite: count('favourite'), upRatio: up + down ? up / (up + down) : null };
  });
}
