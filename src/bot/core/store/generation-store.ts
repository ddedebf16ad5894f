/** Generations: one row per /imagine, reroll or variations reply. The contract both stores (SQLite, PostgreSQL) keep. */
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

/** A generation as /metrics counts it, with its position in insertion order. */
export interface GenerationPosition {
  position: number;
  platform: string;
  kind: GenerationKind;
  model: string;
  latencyMs: number;
}

/** Reads and writes the generations table (and the messages that show them). */
export interface GenerationStore {
  /**
   * Inserts a generation. Safe to retry with the same id: a second insert of an id changes nothing and
   * resolves false (true when this call inserted it).
   */
  insert(g: GenerationRecord): Promise<boolean>;
  /** The generation with this id, or null. */
  get(id: string): Promise<GenerationRecord | null>;
  /**
   * Links a platform message that shows this generation (the grid when `imageIndex` is undefined, else one image).
   * Resolves false when the generation is unknown.
   */
  attachMessage(id: string, messageRef: string, imageIndex?: number): Promise<boolean>;
  /** The generation shown by a platform message (and the image index when it shows one image), or null. */
  byMessage(platform: Platform, messageRef: string): Promise<{ generation: GenerationRecord; imageIndex: number | null } | null>;
  /** The position of the newest generation in insertion order (0 when there is none): a cursor for {@link after}. */
  lastPosition(): Promise<number>;
  /** Up to `limit` generations inserted after position `cursor`, oldest first, with their positions (for /metrics). */
  after(cursor: number, limit?: number): Promise<GenerationPosition[]>;
  /** Generations created at or after `since` (ISO time), oldest first. */
  list(since?: string): Promise<GenerationRecord[]>;
  /**
   * Removes the generations created before `cutoff` (ISO time) with their reactions and message links, in one
   * transaction; with `dryRun` only counts them. An old generation a kept one was made from (its reroll or
   * variations, at any depth) stays: the kept one references it. Resolves how many generations and reactions (would) go.
   */
  removeBefore(cutoff: string, opts?: { dryRun?: boolean }): Promise<{ generations: number; feedback: number }>;
}

/** A generations row as both databases return it (PostgreSQL's counts may come back as strings). */
export interface GenerationRow {
  id: string; platform: string; workspace_id: string; channel_id: string; user_id: string; kind: string;
  parent_id: string | null; prompt: string; seeds: string; count: number; variation_seed: number | string | null;
  model: string; clip_model: string; latency_ms: number; message_ref: string | null; created_at: string;
}

/** The record of a generations row. */
export function generationFromRow(r: GenerationRow): GenerationRecord {
  return {
    id: r.id, platform: r.platform as Platform, workspaceId: r.workspace_id, channelId: r.channel_id, userId: r.user_id,
    kind: r.kind as GenerationKind, parentId: r.parent_id, prompt: r.prompt, seeds: JSON.parse(r.seeds) as number[],
    variationSeed: r.variation_seed === null ? null : Number(r.variation_seed), model: r.model, clipModel: r.clip_model,
    latencyMs: Number(r.latency_ms), messageRef: r.message_ref, createdAt: r.created_at,
  };
}

/**
 * The ids of the generations created before a cutoff that no newer generation descends from: what pruning removes.
 * The same SQL for both databases; `param` is how the dialect writes the cutoff parameter (used twice).
 */
export function prunableGenerationsSql(param: (n: 1 | 2) => string): string {
  return `WITH RECURSIVE kept_ancestor(id) AS (
      SELECT parent_id FROM generations WHERE created_at >= ${param(1)} AND parent_id IS NOT NULL
      UNION
      SELECT g.parent_id FROM generations g JOIN kept_ancestor k ON g.id = k.id WHERE g.parent_id IS NOT NULL
    )
    SELECT id FROM generations WHERE created_at < ${param(2)} AND id NOT IN (SELECT id FROM kept_ancestor)`;
}

/** The named parameters of an insert (seeds as JSON, count from the seeds). */
export function generationParams(g: GenerationRecord): Record<string, unknown> {
  return { ...g, seeds: JSON.stringify(g.seeds), count: g.seeds.length };
}
