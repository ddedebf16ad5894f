/**
 * The generation worker of scaled mode (`npm run worker`, or in the ingress with LOCAL_WORKER=1): takes
 * `generate` jobs from PostgreSQL with Graphile Worker, decodes the jobs it holds together, renders the PNGs,
 * records the generation and delivers the reply itself through the platform's REST API.
 *
 * Graphile Worker runs up to `concurrency` jobs at once; each job's task submits its generation to one
 * in-process {@link ImagineQueue} whose batch step is the core's own (batch-sampler.ts), so jobs taken together
 * are decoded in one sampler call (micro-batching) exactly as the single-process bot does.
 *
 * Delivery is at least once, so the task is idempotent: a request already delivered, cancelled or failed is
 * skipped; the generation id derives from the request id and a retry finds it recorded. A task that throws is
 * retried by Graphile Worker (max_attempts 3, set at admission); the third attempt (a worker died or failed
 * twice) apologises instead. A UserError (model not servable, bot not in the channel) is not retried: the user
 * is told at once.
 *
 * A database restart: the task's own writes wait for the database to come back (worker-db-wait.ts), so Graphile
 * Worker can record the job's end; should its runner still end (the database went away between our last write
 * and its own), a new runner is started and the old one's jobs are freed by the heartbeat sweepers.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { JobHelpers } from 'graphile-worker';
import { childLogger } from '../log.js';
import { isUserError } from '../bot/core/errors.js';
import type { GenerationJob, GenerationOutput } from '../bot/core/batch-sampler.js';
import type { ImageRenderer } from '../bot/core/deps.js';
import { generationSummary } from '../bot/core/generation-summary.js';
import type { ReplyDelivery, ReplyTarget } from '../bot/core/jobs-types.js';
import { ImagineQueue, type BatchWorker } from '../bot/core/queue.js';
import type { GenerationRecord } from '../bot/core/store/index.js';
import type { ImagineReply, Platform } from '../bot/core/types.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { GENERATE_TASK, type GenerationJobPayload } from './schema.js';
import { startSupervisedRunner, type SupervisedRunner } from './supervised-runner.js';
import { listenForModelChanges, type ModelListener } from './worker-model-listener.js';
import { claimRequest, finishRequest, generationIdFor, linkGeneration, noteAttemptError } from './worker-requests.js';
import { untilDatabaseAnswers, waitForDatabase } from './worker-db-wait.js';
import { createWebJobDelivery, storeReply } from './worker-web-delivery.js';
import { isDatabaseUnavailable } from '../util/postgres.js';

const log = childLogger('generation-worker');

/** Attempts before the apology: the first and one retry (a job's third attempt apologises). */
const ATTEMPTS_BEFORE_APOLOGY = 2;

/** Where the worker records generations (the store's generations, async; the lead wires the real one). */
export interface GenerationRecorder {
  /**
   * Stores a generation. A retried job may call it again with the same id (when a worker died between this and
   * linking it to its request): that call must either do nothing or reject with a unique violation.
   */
  insert(record: GenerationRecord): Promise<unknown>;
  /** Ties a platform message to the generation (reactions on it count as feedback). */
  attachMessage(generationId: string, messageRef: string, imageIndex?: number): Promise<unknown>;
}

export interface GenerationWorkerDeps {
  /** A pool on the scaled-mode database, schema migrated (migrateJobs). Graphile Worker and our queries share it. */
  pool: pg.Pool;
  /** Decodes a batch: `createBatchSampler({ embedder, samplers }).runBatch`. */
  runBatch: BatchWorker<GenerationJob, GenerationOutput>;
  renderer: ImageRenderer;
  recorder: GenerationRecorder;
  /** Reply deliveries by platform; `web` defaults to {@link createWebJobDelivery} on `pool`. */
  deliveries: Partial<Record<Platform, ReplyDelivery>>;
  /** Jobs held at once, decoded together (WORKER_CONCURRENCY, default 16). */
  concurrency?: number;
  /** Micro-batching: how long an idle worker collects jobs (ms, default 25) and the most images per sampler call (default 16). */
  batch?: { batchWindowMs?: number; maxBatchSize?: number };
  /** This process's id in worker_heartbeats (default host-pid-random). */
  workerId?: string;
  /** The decoder engine, shown in worker_heartbeats (e.g. `onnx-cpu`). */
  engine?: string;
  /**
   * The served model changed (another process ran `/model use`): drop cached samplers. null: it may have
   * changed while the listener was reconnecting. Absent: no LISTEN.
   */
  onModelChanged?: (name: string | null) => void;
  /** Heartbeat timings (ms; defaults 2000, 5000, 10000; tests shorten them). */
  heartbeat?: { intervalMs?: number; sweepMs?: number; staleMs?: number };
  /** How often Graphile Worker polls for jobs that became due (ms, default 2000): retries and freed jobs. */
  pollIntervalMs?: number;
}

/** Counters of one worker process. */
export interface GenerationWorkerStats {
  /** Requests delivered. */
  delivered: number;
  /** Requests answered with an apology. */
  failed: number;
  /** Attempts that threw (retried by Graphile Worker). */
  retried: number;
  /** Attempts that found the request already finished or cancelled. */
  skipped: number;
  /** Sampler calls and the images they decoded. */
  batches: number;
  images: number;
  /** Measured throughput (EWMA), null before the first batch. */
  imagesPerS: number | null;
  /** Jobs waiting for and in the running batch. */
  waiting: number;
  running: number;
}

/** A running worker. */
export interface GenerationWorker {
  readonly workerId: string;
  /** Graceful: takes no new job, finishes the jobs it holds (the running batch), then leaves the heartbeat table. */
  stop(): Promise<void>;
  stats(): GenerationWorkerStats;
}

/** The apology after the last attempt. */
function apologyFor(prompt: string, reason: string): string {
  return `Sorry, I could not make the images for “${prompt}”: ${reason}`;
}

const GAVE_UP = 'the generation failed twice. Please try again in a minute.';

/** Starts a generation worker; see the module comment. */
export async function startGenerationWorker(deps: GenerationWorkerDeps): Promise<GenerationWorker> {
  const workerId = deps.workerId ?? `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const concurrency = deps.concurrency ?? 16;
  const deliveries: Partial<Record<Platform, ReplyDelivery>> = { web: createWebJobDelivery(deps.pool), ...deps.deliveries };
  const counts = { delivered: 0, failed: 0, retried: 0, skipped: 0, batches: 0, images: 0 };
  const heartbeat = new WorkerHeartbeat({ pool: deps.pool, workerId, role: 'generate', engine: deps.engine, ...deps.heartbeat });

  const timedBatch: BatchWorker<GenerationJob, GenerationOutput> = async (jobs, key) => {
    const t0 = performance.now();
    const out = await deps.runBatch(jobs, key);
    const images = out.reduce((n, o) => n + o.images.length, 0);
    log.debug({ images, ms: Math.round(performance.now() - t0) }, 'decoded a batch');
    counts.batches++;
    counts.images += images;
    return out;
  };
  // Admission has enforced the per-user and global limits already: this queue only batches what the worker holds.
  const queue = new ImagineQueue<GenerationJob, GenerationOutput>(timedBatch, {
    batchWindowMs: deps.batch?.batchWindowMs, maxBatchSize: deps.batch?.maxBatchSize,
    perUserRunning: concurrency, perUserWaiting: concurrency, maxWaiting: concurrency,
  });

  /** Answers the request with an apology (best effort: the platform may refuse) and fails it. */
  async function giveUp(p: GenerationJobPayload, delivery: ReplyDelivery | undefined, text: string): Promise<void> {
    if (delivery) {
      await delivery.apologise(p.target, text).catch((err: Error) =>
        log.warn({ requestId: p.requestId, platform: p.target.platform, reason: err.message }, 'could not post the apology'));
    }
    await db('fail the request', () => finishRequest(deps.pool, p.requestId, 'failed', text));
    counts.failed++;
  }

  /** A database write of a task: waits out a database restart instead of failing the attempt. */
  function db<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return untilDatabaseAnswers(deps.pool, what, fn);
  }

  async function generate(raw: unknown, helpers: JobHelpers): Promise<void> {
    const p = raw as GenerationJobPayload;
    if (!p || typeof p.requestId !== 'string' || !p.job || !p.target || !p.actor) {
      log.error({ jobId: helpers.job.id }, 'generate job without a valid payload; dropped');
      return;
    }
    heartbeat.addGraphileWorkerId(helpers.job.locked_by);
    const attempt = helpers.job.attempts;
    const claim = await db('claim the request', () => claimRequest(deps.pool, p.requestId, attempt));
    if ('skip' in claim) {
      counts.skipped++;
      log.info({ requestId: p.requestId, status: claim.skip, attempt }, 'request already finished; nothing to do');
      return;
    }
    const delivery = deliveries[p.target.platform];
    if (!delivery) {
      log.error({ requestId: p.requestId, platform: p.target.platform },
        `this worker cannot answer ${p.target.platform} requests (its settings are missing); the request is failed`);
      await db('fail the request', () => finishRequest(deps.pool, p.requestId, 'failed', `no worker can deliver to ${p.target.platform}`));
      counts.failed++;
      return;
    }
    if (attempt > ATTEMPTS_BEFORE_APOLOGY) {
      log.warn({ requestId: p.requestId, attempt, lastError: helpers.job.last_error }, 'request failed twice; apologising');
      await giveUp(p, delivery, apologyFor(p.job.prompt, GAVE_UP));
      return;
    }
    let delivered = 0;
    heartbeat.busy.begin();
    try {
      await render(p, claim, delivery);
      delivered = p.job.seeds.length;
    } catch (err) {
      if (isUserError(err)) {
        log.info({ requestId: p.requestId, reason: err.message }, 'request refused by the model or the platform');
        await giveUp(p, delivery, apologyFor(p.job.prompt, err.message));
        return;
      }
      counts.retried++;
      log.warn({ requestId: p.requestId, attempt, err }, 'generation attempt failed; Graphile Worker retries it');
      // Graphile Worker records the failure as soon as this returns: not while the database is down.
      if (isDatabaseUnavailable(err)) await waitForDatabase(deps.pool);
      await noteAttemptError(deps.pool, p.requestId, (err as Error).message ?? String(err)).catch(() => undefined);
      throw err;
    } finally {
      heartbeat.busy.end(delivered);
    }
  }

  async function render(p: GenerationJobPayload, claim: { createdAt: Date; generationId: string | null }, delivery: ReplyDelivery): Promise<void> {
    const { job, actor, target } = p;
    const out = await queue.submit({
      userKey: `${actor.platform}:${actor.userId}`, batchKey: job.model ?? '', size: job.seeds.length,
      payload: { prompt: job.prompt, seeds: job.seeds, variationSeed: job.variationSeed },
    });
    const [grid, images] = await Promise.all([
      deps.renderer.grid(out.images, out.resolution),
      Promise.all(out.images.map((img) => deps.renderer.image(img, out.resolution))),
    ]);
    const generationId = claim.generationId ?? generationIdFor(p.requestId);
    const record: GenerationRecord = {
      id: generationId, platform: actor.platform, workspaceId: actor.workspaceId, channelId: actor.channelId, userId: actor.userId,
      kind: job.kind, parentId: job.parentId, prompt: job.prompt, seeds: job.seeds, variationSeed: job.variationSeed,
      model: out.model, clipModel: out.clipModel, latencyMs: Math.max(0, Date.now() - claim.createdAt.getTime()), messageRef: null,
      createdAt: new Date().toISOString(),
    };
    if (!claim.generationId) {
      await recordOnce(record);
      await db('link the generation', () => linkGeneration(deps.pool, p.requestId, generationId));
    }
    const reply: ImagineReply = {
      generationId, prompt: job.prompt, seeds: job.seeds, model: out.model, userId: actor.userId, grid, images,
      text: generationSummary(record),
    };
    if (target.platform !== 'web') {
      // Kept for "Image N" buttons, which any ingress answers from here (a web reply stores itself in deliver).
      await storeReply(deps.pool, reply, { withGrid: false }).catch((err: Error) =>
        log.warn({ generationId, reason: err.message }, 'could not keep the images; Image N buttons will ask to reroll'));
    }
    // Visible to the user: a crash from here on must not make a retry post the images again (at-least-once
    // delivery narrowed to the moment between the platform's answer and this update).
    const posted = () => db('mark the request delivered', () => finishRequest(deps.pool, p.requestId, 'delivered'));
    const delivered = await delivery.deliver(target, reply, posted);
    // Posted: from here on a failure must not make a retry post it again.
    for (const m of delivered) {
      await deps.recorder.attachMessage(generationId, m.messageRef, m.imageIndex).catch((err: Error) =>
        log.warn({ generationId, messageRef: m.messageRef, reason: err.message }, 'could not record the message; reactions on it will not count'));
    }
    await db('finish the request', () => finishRequest(deps.pool, p.requestId, 'delivered'));
    counts.delivered++;
    log.info({ generationId, requestId: p.requestId, kind: job.kind, platform: actor.platform, workspaceId: actor.workspaceId,
      channelId: actor.channelId, userId: actor.userId, prompt: job.prompt, seeds: job.seeds, model: out.model,
      latencyMs: record.latencyMs, target: describeTarget(target) }, 'generation');
  }

  /** Inserts the record; a second insert of the same id (a retry after a crash) is not an error. */
  async function recordOnce(record: GenerationRecord): Promise<void> {
    try {
      await deps.recorder.insert(record);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      log.info({ generationId: record.id }, 'generation recorded by an earlier attempt');
    }
  }

  await heartbeat.start();
  let listener: ModelListener | null = null;
  if (deps.onModelChanged) {
    listener = listenForModelChanges({ connection: deps.pool.options, onModelChanged: deps.onModelChanged });
    await listener.ready;
  }
  let stopping: Promise<void> | null = null;

  let supervised: SupervisedRunner;
  try {
    supervised = await startSupervisedRunner({
      pool: deps.pool, heartbeat, concurrency, pollIntervalMs: deps.pollIntervalMs,
      taskList: { [GENERATE_TASK]: generate }, stopping: () => stopping !== null, name: 'job runner',
    });
  } catch (err) {
    await listener?.stop();
    await heartbeat.stop();
    throw err;
  }
  log.info({ workerId, concurrency, engine: deps.engine, platforms: Object.keys(deliveries) }, 'generation worker started');

  async function stop(): Promise<void> {
    log.info({ workerId }, 'generation worker stopping: finishing the jobs it holds');
    // Graphile Worker stops taking jobs and waits for the running tasks, whose batch the queue finishes.
    await supervised.current().stop().catch((err: Error) => log.warn({ reason: err.message }, 'the job runner did not stop cleanly'));
    await queue.close();
    await listener?.stop();
    await heartbeat.stop();
    log.info({ workerId, ...counts }, 'generation worker stopped');
  }

  return {
    workerId,
    stop: () => (stopping ??= stop()),
    stats: () => ({ ...counts, imagesPerS: heartbeat.imagesPerS(), ...queue.stats() }),
  };
}

/** A unique-key violation from PostgreSQL (23505) or SQLite. */
function isDuplicateKey(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The target for logs, without the interaction token. */
function describeTarget(target: ReplyTarget): Record<string, unknown> {
  if (target.platform === 'discord') return { platform: 'discord', channelId: target.channelId };
  return { ...target };
}
