/**
 * Scaled mode's `web` reply target (the local playground, which waits for its own request): the worker stores
 * the finished reply in `generation_results`, keyed by the request; finishing the request NOTIFYs
 * `cvae_job_done` with its id (worker-requests.ts), and the ingress reads the outcome with {@link readJobOutcome}.
 */
import type pg from 'pg';
import type { DeliveredMessage, ReplyDelivery, ReplyTarget } from '../bot/core/jobs-types.js';
import type { ImagineReply } from '../bot/core/types.js';
import type { RequestStatus } from './schema.js';

/** The JSON part of a stored reply (the PNGs go to bytea columns). */
type StoredReply = Omit<ImagineReply, 'grid' | 'images'>;

/**
 * The `web` {@link ReplyDelivery}. `deliver` finds the request by the generation it made (the worker links
 * them before delivering) and stores the reply; it posts nothing, so it reports no messages. `apologise` stores
 * nothing: the worker fails the request with the apology as its error, which {@link readJobOutcome} returns.
 */
export function createWebJobDelivery(pool: pg.Pool): ReplyDelivery {
  return {
    async deliver(target: ReplyTarget, reply: ImagineReply): Promise<DeliveredMessage[]> {
      if (target.platform !== 'web') throw new Error(`the web delivery got a ${target.platform} reply target`);
      await storeReply(pool, reply, { withGrid: true });
      return [];
    },
    async apologise(): Promise<void> {
      // The request's error (set by the worker when it fails it) is the apology the ingress shows.
    },
  };
}

/**
 * Stores a generation's reply and per-image PNGs under the request that made it. Every generation's images are
 * kept (chat targets too, without the grid), so an ingress answers "Image N" without a decoder of its own.
 */
export async function storeReply(pool: pg.Pool, reply: ImagineReply, opts: { withGrid: boolean }): Promise<void> {
  const stored: StoredReply = {
    generationId: reply.generationId, prompt: reply.prompt, seeds: reply.seeds, model: reply.model, userId: reply.userId, text: reply.text,
  };
  const res = await pool.query(
    `insert into generation_results (request_id, reply, grid, images)
     select request_id, $2::jsonb, $3, $4 from generation_requests where generation_id = $1
     on conflict (request_id) do update set reply = excluded.reply, grid = excluded.grid, images = excluded.images`,
    [reply.generationId, JSON.stringify(stored), opts.withGrid ? reply.grid : null, reply.images]);
  if (!res.rowCount) throw new Error(`no generation request made generation ${reply.generationId}`);
}

/** The stored PNG of image `index` of a generation made by a worker, or null (not stored, or pruned). */
export async function readStoredImage(pool: pg.Pool, generationId: string, index: number): Promise<Buffer | null> {
  const { rows } = await pool.query<{ png: Buffer | null }>(
    `select g.images[$2::int + 1] as png from generation_results g join generation_requests r on r.request_id = g.request_id
     where r.generation_id = $1`, [generationId, index]);
  return rows[0]?.png ?? null;
}

/** Where a request stands, as the ingress that waits on it reads it. */
export type JobOutcome =
  /** `reply` is null for a request delivered to a chat platform (only `web` targets store theirs). */
  | { status: 'delivered'; reply: ImagineReply | null }
  | { status: 'failed' | 'cancelled'; message: string | null }
  | { status: 'queued' | 'running' };

/** Reads the outcome of a request (after `cvae_job_done`); null for an unknown request id. */
export async function readJobOutcome(pool: pg.Pool, requestId: string): Promise<JobOutcome | null> {
  const { rows } = await pool.query<{ status: RequestStatus; error: string | null; reply: StoredReply | null; grid: Buffer | null; images: Buffer[] | null }>(
    `select r.status, r.error, g.reply, g.grid, g.images
     from generation_requests r left join generation_results g on g.request_id = r.request_id
     where r.request_id = $1`, [requestId]);
  const row = rows[0];
  if (!row) return null;
  if (row.status === 'delivered') {
    if (!row.reply || !row.grid) return { status: 'delivered', reply: null };
    return { status: 'delivered', reply: { ...row.reply, grid: row.grid, images: row.images ?? [] } };
  }
  if (row.status === 'failed' || row.status === 'cancelled') return { status: row.status, message: row.error };
  return { status: row.status };
}
