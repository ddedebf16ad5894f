/**
 * Helpers for the generation-worker tests: a migrated database, jobs queued as the ingress queues them (a
 * generation_requests row + graphile_worker.add_job with the GenerationJobPayload, max_attempts 3), a recording
 * ReplyDelivery and an in-memory GenerationRecorder.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { createPgPool } from '../../src/util/postgres.js';
import { GENERATE_TASK, migrateJobs, type GenerationJobPayload, type ResolvedGenerationJob } from '../../src/jobs/schema.js';
import type { DeliveredMessage, ReplyDelivery, ReplyTarget } from '../../src/bot/core/jobs-types.js';
import type { Actor, ImagineReply } from '../../src/bot/core/types.js';
import type { GenerationRecord } from '../../src/bot/core/store/index.js';
import type { GenerationRecorder } from '../../src/jobs/generation-worker.js';
import type { TestPostgres } from '../helpers/postgres.js';

/** A fresh migrated database and a pool on it. */
export async function migratedDatabase(server: TestPostgres, prefix = 'worker'): Promise<{ url: string; pool: pg.Pool }> {
  const url = await server.createDatabase(prefix);
  const pool = createPgPool(url, { applicationName: 'test', max: 20 });
  await migrateJobs(pool);
  return { url, pool };
}

export function slackActor(userId: string): Actor {
  return { platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId };
}

/** What {@link queueRequest} queues. */
export interface QueuedRequest {
  actor?: Actor;
  target?: ReplyTarget;
  job?: Partial<ResolvedGenerationJob>;
}

/**
 * Queues requests as the ingress does (one transaction: the request rows and their Graphile jobs), so every job
 * is available at once. Returns the request ids in order.
 */
export async function queueRequests(pool: pg.Pool, requests: QueuedRequest[]): Promise<string[]> {
  const client = await pool.connect();
  const ids: string[] = [];
  try {
    await client.query('begin');
    for (const [i, r] of requests.entries()) {
      const requestId = crypto.randomBytes(12).toString('base64url');
      const actor = r.actor ?? slackActor(`U${i}`);
      const target: ReplyTarget = r.target ?? { platform: 'slack', channelId: actor.channelId };
      const job: ResolvedGenerationJob = { prompt: `cows ${i}`, seeds: [i * 10], variationSeed: null, model: null, kind: 'imagine', parentId: null, ...r.job };
      await client.query(
        `insert into generation_requests (request_id, request_key, user_key, platform, actor, target, job, images, position, predicted_wait_s)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)`,
        [requestId, `key-${requestId}`, `${actor.platform}:${actor.userId}`, actor.platform, actor, target, job, job.seeds.length, i + 1]);
      const payload: GenerationJobPayload = { requestId, actor, target, job };
      await client.query('select graphile_worker.add_job($1, $2::json, job_key := $3, max_attempts := 3)', [GENERATE_TASK, JSON.stringify(payload), requestId]);
      ids.push(requestId);
    }
    await client.query('commit');
  } finally {
    client.release();
  }
  return ids;
}

export async function queueRequest(pool: pg.Pool, r: QueuedRequest = {}): Promise<string> {
  return (await queueRequests(pool, [r]))[0];
}

/** A request's row. */
export async function requestRow(pool: pg.Pool, requestId: string): Promise<{ status: string; attempts: number; generation_id: string | null; error: string | null }> {
  const { rows } = await pool.query('select status, attempts, generation_id, error from generation_requests where request_id = $1', [requestId]);
  return rows[0];
}

/** Polls until `fn` is truthy (the worker runs elsewhere: its effects are in the database). */
export async function eventually<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until every request has reached one of `statuses`. */
export async function settledRequests(pool: pg.Pool, ids: string[], statuses = ['delivered', 'failed', 'cancelled'], timeoutMs = 30_000) {
  return eventually(async () => {
    const { rows } = await pool.query<{ request_id: string; status: string; attempts: number }>(
      'select request_id, status, attempts from generation_requests where request_id = any($1)', [ids]);
    return rows.length === ids.length && rows.every((r) => statuses.includes(r.status)) ? rows : null;
  }, `requests to reach ${statuses.join('/')}`, timeoutMs);
}

/** A ReplyDelivery that records what it is asked to post; `failures` makes the next deliveries throw. */
export class RecordingDelivery implements ReplyDelivery {
  delivered: { target: ReplyTarget; reply: ImagineReply }[] = [];
  apologies: { target: ReplyTarget; text: string }[] = [];
  /** Errors thrown by the next deliver() calls, in order. */
  failures: Error[] = [];
  private seq = 0;

  async deliver(target: ReplyTarget, reply: ImagineReply): Promise<DeliveredMessage[]> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.delivered.push({ target, reply });
    return [{ messageRef: `msg-${++this.seq}` }, { messageRef: `msg-${++this.seq}`, imageIndex: 0 }];
  }

  async apologise(target: ReplyTarget, text: string): Promise<void> {
    this.apologies.push({ target, text });
  }
}

/** An in-memory recorder that refuses a second insert of an id as PostgreSQL does (23505). */
export class MemoryRecorder implements GenerationRecorder {
  records = new Map<string, GenerationRecord>();
  inserts = 0;
  attached: { id: string; ref: string; imageIndex?: number }[] = [];

  async insert(record: GenerationRecord): Promise<void> {
    this.inserts++;
    if (this.records.has(record.id)) throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    this.records.set(record.id, record);
  }

  async attachMessage(id: string, ref: string, imageIndex?: number): Promise<void> {
    this.attached.push(imageIndex === undefined ? { id, ref } : { id, ref, imageIndex });
  }
}
