/**
 * What a generation worker reads and writes of `generation_requests` (src/jobs/schema.ts): claiming a request for
 * an attempt, linking the generation it made, and finishing it. Finishing NOTIFYs {@link JOB_DONE_CHANNEL} with
 * the request id in the same transaction, so an ingress waiting on a request (the playground's `web` target)
 * wakes exactly when the outcome is committed.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../util/postgres.js';
import { JOB_DONE_CHANNEL, type RequestStatus } from './schema.js';

/** The id of the generation a request makes: derived from the request id, so a retried job cannot record a second one. */
export function generationIdFor(requestId: string): string {
  // Same shape as the ids of the in-process core (8 bytes, base64url).
  return crypto.createHash('sha256').update(`generation:${requestId}`).digest().subarray(0, 8).toString('base64url');
}

/** A request claimed for an attempt. */
export interface ClaimedRequest {
  /** When the request was admitted (its latency counts from here). */
  createdAt: Date;
  /** Set when an earlier attempt already recorded the generation. */
  generationId: string | null;
}

/** Why an attempt does nothing: the request is already answered, cancelled or failed, or unknown. */
export type ClaimRefusal = { skip: Exclude<RequestStatus, 'queued' | 'running'> | 'missing' };

/**
 * Marks the request running for this attempt (a retry finds it running already). Refuses when it has reached
 * an end (delivered, cancelled, failed): Graphile Worker delivers a job at least once, so the task must be
 * idempotent.
 */
export async function claimRequest(pool: pg.Pool, requestId: string, attempt: number): Promise<ClaimedRequest | ClaimRefusal> {
  const { rows } = await pool.query<{ created_at: Date; generation_id: string | null }>(
    `update generation_requests set status = 'running', attempts = $2, started_at = coalesce(started_at, now())
     where request_id = $1 and status in ('queued', 'running')
     returning created_at, generation_id`, [requestId, attempt]);
  if (rows[0]) return { createdAt: rows[0].created_at, generationId: rows[0].generation_id };
  const found = await pool.query<{ status: RequestStatus }>('select status from generation_requests where request_id = $1', [requestId]);
  const status = found.rows[0]?.status;
  return { skip: status === undefined || status === 'queued' || status === 'running' ? 'missing' : status };
}

/** Links the recorded generation to its request (before delivery, so a retry knows it is recorded). */
export async function linkGeneration(pool: pg.Pool, requestId: string, generationId: string): Promise<void> {
  await pool.query('update generation_requests set generation_id = $2 where request_id = $1', [requestId, generationId]);
}

/** Keeps the error of a failed attempt (for operators; the user sees an apology only after the last one). */
export async function noteAttemptError(pool: pg.Pool, requestId: string, message: string): Promise<void> {
  await pool.query('update generation_requests set error = $2 where request_id = $1', [requestId, message.slice(0, 1000)]);
}

/**
 * Finishes a request as delivered or failed (`error`: what the user was told) and NOTIFYs its id on
 * {@link JOB_DONE_CHANNEL}, in one transaction. A request cancelled meanwhile stays cancelled.
 */
export async function finishRequest(pool: pg.Pool, requestId: string, status: 'delivered' | 'failed', error: string | null = null): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query(
      `update generation_requests set status = $2, error = coalesce($3, error), finished_at = now()
       where request_id = $1 and status in ('queued', 'running')`, [requestId, status, error]);
    await client.query('select pg_notify($1, $2)', [JOB_DONE_CHANNEL, requestId]);
  });
}

/**
 * Retention of scaled mode's request log: finished requests (delivered, failed, cancelled) older than `cutoff`
 * go, with the replies and PNGs kept for them (generation_results cascades). Waiting and running ones stay.
 * Returns how many went (or would go, with `dryRun`); 0 on a database without the job tables.
 */
export async function pruneFinishedRequests(pool: pg.Pool, cutoff: string, opts: { dryRun?: boolean } = {}): Promise<number> {
  const { rows: [t] } = await pool.query<{ t: string | null }>(`select to_regclass('generation_requests')::text as t`);
  if (!t?.t) return 0;
  const where = `status in ('delivered', 'failed', 'cancelled') and coalesce(finished_at, created_at) < $1`;
  if (opts.dryRun) {
    const { rows: [n] } = await pool.query<{ n: string }>(`select count(*) as n from generation_requests where ${where}`, [cutoff]);
    return Number(n.n);
  }
  return (await pool.query(`delete from generation_requests where ${where}`, [cutoff])).rowCount ?? 0;
}
