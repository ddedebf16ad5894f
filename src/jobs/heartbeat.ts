/**
 * A worker process's presence in `worker_heartbeats`, and the sweeper that frees the jobs of dead ones.
 *
 * Every `intervalMs` (2 s) the process upserts its row: seen_at, its measured throughput (images/s, an
 * exponentially weighted mean over its decoded batches; admission divides the queue by the sum over live
 * workers) and the Graphile Worker ids it runs jobs under. Every `sweepMs` (5 s) it also frees the jobs of
 * processes that stopped beating: a job of one of our tasks locked for longer than `staleMs` (10 s) by a
 * Graphile worker id that no live heartbeat lists is unlocked with `graphile_worker.force_unlock_workers`, so
 * another worker retries it at once instead of after Graphile's 4-hour lock timeout (a kill -9, a lost host).
 * Rows not seen for a minute are deleted. A graceful stop deletes the process's own row. After a database
 * outage a process sweeps only once it has beaten again for a whole stale window, so that live workers whose
 * rows went stale during the outage are not taken for dead.
 */
import type pg from 'pg';
import { childLogger } from '../log.js';
import { GENERATE_TASK, type WorkerRole } from './schema.js';

const log = childLogger('worker-heartbeat');

/** Weight of the newest batch in the throughput mean. */
const EWMA_ALPHA = 0.3;

/** The throughput after a batch of `images` decoded in `ms`: an exponentially weighted mean of images/s. */
export function nextImagesPerS(previous: number | null, images: number, ms: number, alpha = EWMA_ALPHA): number | null {
  if (images <= 0 || !(ms > 0)) return previous;
  const rate = images / (ms / 1000);
  return previous === null ? rate : alpha * rate + (1 - alpha) * previous;
}

/**
 * What a worker delivers when loaded: images finished per second of busy wall time (while it holds at least one
 * job), decode, rendering and posting included. Decode time alone would overstate it several times over (the
 * posts take longer than the decode), and admission would then promise waits the workers cannot keep.
 */
export class BusyThroughput {
  private inHand = 0;
  private busySince = 0;
  private busyMs = 0;
  private images = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A job is taken. */
  begin(): void {
    if (this.inHand++ === 0) this.busySince = this.now();
  }

  /** A job ends, with the images it delivered (0 when it failed). */
  end(images: number): void {
    this.images += images;
    if (this.inHand > 0 && --this.inHand === 0) this.busyMs += this.now() - this.busySince;
  }

  /**
   * Images and busy ms since the last take; null when there is nothing to count, or while jobs are in hand and
   * under `minMs` of busy time has passed (keep counting: a short window is noise).
   */
  take(minMs = 500): { images: number; ms: number } | null {
    const now = this.now();
    const ms = this.busyMs + (this.inHand > 0 ? now - this.busySince : 0);
    if (ms <= 0 || (this.inHand > 0 && ms < minMs)) return null;
    if (this.inHand > 0) this.busySince = now;
    const out = { images: this.images, ms };
    this.images = 0;
    this.busyMs = 0;
    return out;
  }
}

export interface WorkerHeartbeatOptions {
  pool: pg.Pool;
  /** This process's id (the row's key). */
  workerId: string;
  role: WorkerRole;
  /** The decoder engine, for operators (e.g. `onnx-cpu`, `onnx-webgpu`, `tfjs-node-gpu`). */
  engine?: string;
  /** Beat every this many ms (default 2000). */
  intervalMs?: number;
  /** Sweep every this many ms (default 5000). */
  sweepMs?: number;
  /** A process not seen for this long is dead; its locked jobs are freed (default 10000). */
  staleMs?: number;
  /** The Graphile tasks whose jobs the sweeper may free (default `generate`): never another role's long jobs. */
  sweptTasks?: string[];
}

/** One process's heartbeat and sweeper; see the module comment. */
export class WorkerHeartbeat {
  private readonly graphileIds = new Set<string>();
  private rate: number | null = null;
  private beatTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private pending: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Since when this process's beats have succeeded without a gap (null: the last one failed). */
  private healthySince: number | null = null;
  private readonly o: Required<WorkerHeartbeatOptions>;

  constructor(options: WorkerHeartbeatOptions) {
    this.o = { engine: '', intervalMs: 2000, sweepMs: 5000, staleMs: 10_000, sweptTasks: [GENERATE_TASK], ...options };
  }

  get workerId(): string { return this.o.workerId; }

  /** The measured throughput (null until the first batch). */
  imagesPerS(): number | null { return this.rate; }

  /** The Graphile worker ids this process has run jobs under. */
  graphileWorkerIds(): string[] { return [...this.graphileIds]; }

  /** Adds a Graphile worker id (from `worker:create` or `helpers.job.locked_by`) to the next beat. */
  addGraphileWorkerId(id: string | null | undefined): void {
    if (!id || this.graphileIds.has(id)) return;
    this.graphileIds.add(id);
    if (this.beatTimer) this.schedule(() => this.beat()); // listed soon, not only at the next tick
  }

  /**
   * Stops listing Graphile worker ids (a job runner that ended): jobs still locked by them are then freed by
   * the sweepers after the stale window, like a dead process's.
   */
  forgetGraphileWorkerIds(ids: Iterable<string>): void {
    for (const id of ids) this.graphileIds.delete(id);
  }

  /** Counts `images` finished in `ms` of busy time in the throughput. */
  recordBatch(images: number, ms: number): void {
    this.rate = nextImagesPerS(this.rate, images, ms);
  }

  /** Jobs taken and finished, for the throughput written at each beat. */
  readonly busy = new BusyThroughput();

  /** Writes the first beat, then beats and sweeps on timers. */
  async start(): Promise<void> {
    await this.beat();
    this.beatTimer = setInterval(() => this.schedule(() => this.beat()), this.o.intervalMs);
    this.sweepTimer = setInterval(() => this.schedule(() => this.sweep()), this.o.sweepMs);
    this.beatTimer.unref();
    this.sweepTimer.unref();
  }

  /** Upserts this process's row. */
  async beat(): Promise<void> {
    if (this.stopped) return;
    const window = this.busy.take();
    if (window) this.recordBatch(window.images, window.ms);
    await this.o.pool.query(
      `insert into worker_heartbeats (worker_id, role, seen_at, images_per_s, graphile_worker_ids, engine)
       values ($1, $2, now(), $3, $4, $5)
       on conflict (worker_id) do update set seen_at = now(), images_per_s = excluded.images_per_s,
         graphile_worker_ids = excluded.graphile_worker_ids, engine = excluded.engine`,
      [this.o.workerId, this.o.role, this.rate, this.graphileWorkerIds(), this.o.engine || null]).catch((err: unknown) => {
      this.healthySince = null;
      throw err;
    });
    this.healthySince ??= Date.now();
  }

  /**
   * Frees the jobs of dead workers (see the module comment) and deletes rows gone for a minute. Returns the
   * Graphile worker ids whose jobs were freed.
   */
  async sweep(): Promise<string[]> {
    // After a database outage every process's row is stale at once: sweep only once this one has beaten for a
    // whole stale window, by when every live process has beaten again too.
    if (this.healthySince === null || Date.now() - this.healthySince < this.o.staleMs) return [];
    const staleS = this.o.staleMs / 1000;
    const { rows } = await this.o.pool.query<{ locked_by: string }>(
      `select distinct j.locked_by from graphile_worker.jobs j
       where j.locked_by is not null and j.task_identifier = any($1::text[])
         and j.locked_at < now() - make_interval(secs => $2)
         and not exists (select 1 from worker_heartbeats h
                         where h.seen_at > now() - make_interval(secs => $2) and j.locked_by = any(h.graphile_worker_ids))`,
      [this.o.sweptTasks, staleS]);
    const dead = rows.map((r) => r.locked_by);
    if (dead.length) {
      await this.o.pool.query('select graphile_worker.force_unlock_workers($1::text[])', [dead]);
      log.warn({ graphileWorkerIds: dead }, 'freed the jobs of workers that stopped beating; another worker retries them');
    }
    await this.o.pool.query(`delete from worker_heartbeats where seen_at < now() - make_interval(secs => $1)`, [Math.max(60, staleS * 6)]);
    return dead;
  }

  /** Stops beating and sweeping and deletes this process's row (a graceful stop: it holds no jobs any more). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.beatTimer) clearInterval(this.beatTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.beatTimer = this.sweepTimer = null;
    await this.pending;
    await this.o.pool.query('delete from worker_heartbeats where worker_id = $1', [this.o.workerId])
      .catch((err: Error) => log.warn({ reason: err.message }, 'could not delete the heartbeat row; it expires by itself'));
  }

  /** Runs beats and sweeps one at a time; a failure (database down) is logged and the next tick tries again. */
  private schedule(fn: () => Promise<unknown>): void {
    if (this.stopped) return;
    this.pending = this.pending.then(fn).catch((err: Error) => log.warn({ reason: err.message }, 'heartbeat or sweep failed; retrying at the next tick'));
  }
}
