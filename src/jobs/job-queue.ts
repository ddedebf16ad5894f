/**
 * The ingress side of scaled mode: turns a chat request into a durable generation job in PostgreSQL.
 *
 * `submit` resolves the ask (validation as the in-process core does; reroll and variations read the parent
 * generation), then in ONE transaction: de-duplicates on the platform request key, enforces the per-user limit
 * (an advisory lock on the user, so it holds across ingress replicas), admits by predicted wait (admission.ts,
 * serialised by a second advisory lock so concurrent ingresses cannot overshoot the bound together), inserts the
 * `generation_requests` row and adds the Graphile Worker job whose key is the request id. Either all of that is
 * committed or none of it. `cancel` takes a job that no worker has locked off the queue, atomically.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { childLogger } from '../log.js';
import { MAX_SEED } from '../model/latent.js';
import { NotAllowedError, UserError, isUserError } from '../bot/core/errors.js';
import { validateCount, validateModelName, validatePrompt, validateSeed } from '../bot/core/prompt.js';
import type { GenerationAsk, JobReceipt, JobSubmitter, ReplyTarget } from '../bot/core/jobs-types.js';
import type { Actor } from '../bot/core/types.js';
import { DATABASE_UNAVAILABLE_MESSAGE, inTransaction, isDatabaseUnavailable } from '../util/postgres.js';
import { decideAdmission } from './admission.js';
import {
  GENERATE_TASK, LOCK_ADMISSION, LOCK_NAMESPACE, LOCK_USER_NAMESPACE,
  type GenerationJobPayload, type RequestStatus, type ResolvedGenerationJob,
} from './schema.js';

const log = childLogger('job-queue');

/** What reroll and variations need of the generation they start from. */
export interface ParentGeneration {
  prompt: string;
  seeds: number[];
  model: string;
  variationSeed: number | null;
}

export interface JobQueueOptions {
  /** A pool on the scaled-mode database (schema from migrateJobs). */
  pool: pg.Pool;
  /** Reads a stored generation (reroll, variations); null when there is none. */
  getGeneration(id: string): Promise<ParentGeneration | null>;
  /** Bot admins may cancel anyone's request. */
  isAdmin(actor: Actor): boolean | Promise<boolean>;
  /**
   * Refuses (UserError) a model this actor may not use, e.g. an unpublished one for a non-admin. Called for
   * every request that names a model; absent: any model.
   */
  checkModel?(actor: Actor, model: string): Promise<void>;
  /** Most images per request (default 4). */
  maxCount?: number;
  /** Jobs of one user running at once (default 1); with perUserWaiting, the most a user has queued or running. */
  perUserRunning?: number;
  /** Jobs of one user waiting (default 3). */
  perUserWaiting?: number;
  /** Refuse past this predicted wait, seconds (ADMISSION_MAX_WAIT_S, default 60). */
  maxWaitS?: number;
  /** A worker counts as live when its heartbeat is this recent, seconds (default 10). */
  liveWorkerWindowS?: number;
  /** Throughput assumed for a live worker that has not measured its own yet, images/s (default 4). */
  unmeasuredImagesPerS?: number;
  /** Graphile Worker attempts per job: the first and up to two retries (default 3). */
  maxAttempts?: number;
}

/** Numbers for /metrics. */
export interface JobQueueStats {
  /** Requests waiting for a worker. */
  queued: number;
  /** Requests a worker is drawing. */
  running: number;
  /** Images of the queued and running requests. */
  imagesInQueue: number;
  /** Generation workers whose heartbeat is recent. */
  liveWorkers: number;
  /** Summed measured throughput of the live workers (images/s; a worker that has not measured counts 0). */
  imagesPerS: number;
}

const ACTIVE = `status in ('queued', 'running')`;

/** The ingress's {@link JobSubmitter} over PostgreSQL and Graphile Worker. */
export class JobQueue implements JobSubmitter {
  private readonly pool: pg.Pool;
  private readonly o: Required<Omit<JobQueueOptions, 'pool' | 'getGeneration' | 'isAdmin' | 'checkModel'>>;

  constructor(private readonly deps: JobQueueOptions) {
    this.pool = deps.pool;
    this.o = {
      maxCount: deps.maxCount ?? 4,
      perUserRunning: deps.perUserRunning ?? 1,
      perUserWaiting: deps.perUserWaiting ?? 3,
      maxWaitS: deps.maxWaitS ?? 60,
      liveWorkerWindowS: deps.liveWorkerWindowS ?? 10,
      unmeasuredImagesPerS: deps.unmeasuredImagesPerS ?? 4,
      maxAttempts: deps.maxAttempts ?? 3,
    };
  }

  async submit(actor: Actor, ask: GenerationAsk, target: ReplyTarget, requestKey: string): Promise<JobReceipt> {
    if (typeof requestKey !== 'string' || requestKey.length === 0 || requestKey.length > 200) {
      throw new Error('submit: requestKey must be a non-empty string of at most 200 characters');
    }
    return this.guard('submit', async () => {
      const job = await this.resolve(actor, ask);
      return this.enqueue(actor, job, target, requestKey);
    });
  }

  async cancel(actor: Actor, requestId: string): Promise<string> {
    return this.guard('cancel', () => this.tx(async (c) => {
      const { rows: [row] } = await c.query<{ user_key: string; status: RequestStatus }>(
        'select user_key, status from generation_requests where request_id = $1 for update', [requestId]);
      if (!row) throw new UserError('I cannot find that request any more; there is nothing to cancel.');
      if (row.user_key !== userKeyOf(actor) && !(await this.deps.isAdmin(actor))) {
        log.info({ requestId, platform: actor.platform, userId: actor.userId }, 'cancel refused: not the asker');
        throw new NotAllowedError('Only the person who asked (or a bot admin) can cancel this request.');
      }
      switch (row.status) {
        case 'running': return 'Too late to cancel: your images are already being drawn.';
        case 'delivered': return 'Too late to cancel: your images were already delivered.';
        case 'cancelled': return 'That request was already cancelled.';
        case 'failed': return 'That request already ended, so there is nothing to cancel.';
        case 'queued': break;
      }
      // complete_jobs deletes only a job no worker has locked; a locked one has started.
      const { rows: jobs } = await c.query<{ id: string; locked_at: Date | null }>(
        'select id, locked_at from graphile_worker.jobs where key = $1', [requestId]);
      if (jobs.length > 0) {
        const { rowCount } = await c.query('select id from graphile_worker.complete_jobs($1::bigint[])', [jobs.map((j) => j.id)]);
        if (!rowCount) return 'Too late to cancel: your images are already being drawn.';
      }
      await c.query(`update generation_requests set status = 'cancelled', finished_at = now() where request_id = $1`, [requestId]);
      log.info({ requestId, platform: actor.platform, userId: actor.userId }, 'request cancelled');
      return 'Cancelled: your request was taken off the queue.';
    }), 'The bot cannot reach its database right now, so nothing was cancelled. Please try again in a minute.');
  }

  /** Where a queued request stands (1 = next); null when it is not waiting (running, finished, unknown). */
  async position(requestId: string): Promise<number | null> {
    return this.guard('position', async () => {
      const { rows: [r] } = await this.pool.query<{ n: number | null }>(
        `select (select count(*)::int + 1 from generation_requests o where o.status = 'queued' and o.seq < g.seq) as n
         from generation_requests g where g.request_id = $1 and g.status = 'queued'`, [requestId]);
      return r?.n ?? null;
    });
  }

  /** Queue and worker numbers for /metrics. */
  async stats(): Promise<JobQueueStats> {
    return this.guard('stats', async () => {
      const [{ rows: [q] }, { rows: [w] }] = await Promise.all([
        this.pool.query<{ queued: number; running: number; images: number }>(
          `select count(*) filter (where status = 'queued')::int as queued, count(*) filter (where status = 'running')::int as running,
             coalesce(sum(images), 0)::int as images
           from generation_requests where ${ACTIVE}`),
        this.pool.query<{ n: number; ips: number }>(
          `select count(*)::int as n, coalesce(sum(greatest(images_per_s, 0)), 0)::float8 as ips
           from worker_heartbeats where role = 'generate' and seen_at > now() - make_interval(secs => $1)`, [this.o.liveWorkerWindowS]),
      ]);
      return { queued: q.queued, running: q.running, imagesInQueue: q.images, liveWorkers: w.n, imagesPerS: w.ips };
    });
  }

  /** Validates the ask and fixes everything a worker needs (seeds drawn here, so a retry draws the same images). */
  private async resolve(actor: Actor, ask: GenerationAsk): Promise<ResolvedGenerationJob> {
    let job: ResolvedGenerationJob;
    if (ask.kind === 'imagine') {
      const o = ask.options;
      const prompt = validatePrompt(o.prompt);
      const count = validateCount(o.count, this.o.maxCount);
      const seed = validateSeed(o.seed) ?? randomSeed();
      const model = o.model ? validateModelName(o.model) : null;
      job = { prompt, seeds: seedsFrom(seed, count), variationSeed: null, model, kind: 'imagine', parentId: null };
    } else {
      const id = ask.generationId;
      const g = typeof id === 'string' && id.length > 0 && id.length <= 64 ? await this.deps.getGeneration(id) : null;
      if (!g) throw new UserError('I cannot find that generation any more. Please run `/imagine` again.');
      job = ask.kind === 'reroll'
        ? { prompt: g.prompt, seeds: seedsFrom(randomSeed(), g.seeds.length), variationSeed: null, model: g.model, kind: 'reroll', parentId: id }
        : { prompt: g.prompt, seeds: g.seeds, variationSeed: randomSeed(), model: g.model, kind: 'variations', parentId: id };
    }
    if (job.model !== null && this.deps.checkModel) await this.deps.checkModel(actor, job.model);
    return job;
  }

  private async enqueue(actor: Actor, job: ResolvedGenerationJob, target: ReplyTarget, requestKey: string): Promise<JobReceipt> {
    const userKey = userKeyOf(actor);
    const images = job.seeds.length;
    const outcome = await this.tx(async (c): Promise<JobReceipt> => {
      // Per user, one admission at a time across every ingress: the count below cannot go stale before commit.
      await c.query('select pg_advisory_xact_lock($1, hashtext($2))', [LOCK_USER_NAMESPACE, userKey]);
      const first = await this.existing(c, requestKey);
      if (first) return first;
      const { rows: [mine] } = await c.query<{ n: number }>(
        `select count(*)::int as n from generation_requests where user_key = $1 and ${ACTIVE}`, [userKey]);
      const limit = this.o.perUserRunning + this.o.perUserWaiting;
      if (mine.n >= limit) {
        log.info({ userKey, active: mine.n }, 'per-user queue limit');
        throw new UserError(`You already have ${mine.n} images on the way (the limit is ${this.o.perUserRunning} running and ${this.o.perUserWaiting} waiting). Please wait for them before asking for more.`);
      }
      // One admission at a time in all: the queue ahead read here is the queue this request joins.
      await c.query('select pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCK_ADMISSION]);
      const [{ rows: [q] }, { rows: workers }] = await Promise.all([
        c.query<{ images: number; queued: number }>(
          `select coalesce(sum(images), 0)::int as images, count(*) filter (where status = 'queued')::int as queued
           from generation_requests where ${ACTIVE}`),
        c.query<{ images_per_s: number | null }>(
          `select images_per_s from worker_heartbeats where role = 'generate' and seen_at > now() - make_interval(secs => $1)`,
          [this.o.liveWorkerWindowS]),
      ]);
      const decision = decideAdmission({
        imagesAhead: q.images, images, maxWaitS: this.o.maxWaitS, unmeasuredImagesPerS: this.o.unmeasuredImagesPerS,
        workers: workers.map((w) => ({ imagesPerS: w.images_per_s })),
      });
      if (!decision.admit) {
        log.info({ userKey, reason: decision.reason, imagesAhead: q.images, imagesPerS: decision.imagesPerS,
          predictedWaitS: Number.isFinite(decision.predictedWaitS) ? decision.predictedWaitS : null }, 'request refused at admission');
        throw new UserError(decision.message);
      }
      const requestId = crypto.randomBytes(12).toString('base64url');
      const position = q.queued + 1;
      const predictedWaitS = Math.max(1, Math.ceil(decision.predictedWaitS));
      const inserted = await c.query(
        `insert into generation_requests (request_id, request_key, user_key, platform, actor, target, job, images, position, predicted_wait_s)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (request_key) do nothing`,
        [requestId, requestKey, userKey, actor.platform, actor, target, job, images, position, predictedWaitS]);
      if (inserted.rowCount === 0) {
        // The same key from another user's lock (not a retry of this user's request): whoever committed first wins.
        const again = await this.existing(c, requestKey);
        if (again) return again;
        throw new Error('request key conflict without a row');
      }
      const payload: GenerationJobPayload = { requestId, actor, target, job };
      await c.query('select graphile_worker.add_job($1, $2::json, job_key := $3, max_attempts := $4)',
        [GENERATE_TASK, JSON.stringify(payload), requestId, this.o.maxAttempts]);
      log.info({ requestId, userKey, kind: job.kind, images, position, predictedWaitS, imagesPerS: decision.imagesPerS }, 'request queued');
      return { requestId, position, predictedWaitS, duplicate: false };
    });
    return outcome;
  }

  /** The receipt of a request already made with this key (duplicate: true), or null. */
  private async existing(c: pg.PoolClient, requestKey: string): Promise<JobReceipt | null> {
    const { rows: [r] } = await c.query<{ request_id: string; position: number; predicted_wait_s: number }>(
      'select request_id, position, predicted_wait_s from generation_requests where request_key = $1', [requestKey]);
    if (!r) return null;
    log.info({ requestId: r.request_id }, 'duplicate request: no second job');
    return { requestId: r.request_id, position: r.position, predictedWaitS: r.predicted_wait_s, duplicate: true };
  }

  /** Runs `fn` in one transaction on one connection: committed whole or rolled back whole. */
  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /** A database outage becomes a polite UserError; UserErrors pass; anything else is a bug and is thrown as is. */
  private async guard<T>(op: string, fn: () => Promise<T>, unavailableMessage = DATABASE_UNAVAILABLE_MESSAGE): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUserError(err)) throw err;
      if (isDatabaseUnavailable(err)) {
        log.warn({ op, reason: (err as Error).message }, 'database unavailable');
        throw new UserError(unavailableMessage, { cause: err });
      }
      throw err;
    }
  }
}

/** Builds the ingress's job queue. */
export function createJobQueue(options: JobQueueOptions): JobQueue {
  return new JobQueue(options);
}

/** The key per-user limits count by (as the in-process queue does). */
export function userKeyOf(actor: Actor): string {
  return `${actor.platform}:${actor.userId}`;
}

function randomSeed(): number {
  return crypto.randomInt(0, MAX_SEED - 16);
}

function seedsFrom(base: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => (base + i) % (MAX_SEED + 1));
}
