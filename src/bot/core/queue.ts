/**
 * The generation queue. Requests that arrive together (within a short window, or while the sampler is busy)
 * are run as one batch by the worker; a per-user limit (default 1 running + 3 waiting) and a global bound
 * refuse politely when exceeded. `GenerationQueue` is the interface a shared queue (e.g. Redis/BullMQ with
 * several GPU workers) would implement instead of the in-process {@link ImagineQueue}.
 */
import { UserError } from './errors.js';
import { childLogger } from '../../log.js';

const log = childLogger('imagine-queue');

/** One queued request. */
export interface QueueJob<T> {
  /** Who asked (for per-user limits), e.g. `discord:123`. */
  userKey: string;
  /** Jobs with the same batch key can share one worker call (e.g. the model name). */
  batchKey: string;
  /** Size of the job in images (bounds a batch). */
  size: number;
  payload: T;
}

export interface QueueHooks {
  /** Called when the job has to wait, with its position (1 = next); called again when the position changes. */
  onQueued?(position: number): void | Promise<void>;
}

/** A generation queue: submit a job, get its result when its batch has run. */
export interface GenerationQueue<T, R> {
  submit(job: QueueJob<T>, hooks?: QueueHooks): Promise<R>;
  /** Jobs waiting and running now. */
  stats(): { waiting: number; running: number };
  /** Refuses new jobs and waits for running ones. */
  close(): Promise<void>;
}

/** Runs one batch: results in the order of the payloads. */
export type BatchWorker<T, R> = (payloads: T[], batchKey: string) => Promise<R[]>;

export interface ImagineQueueOptions {
  /** Collect requests this long before starting a batch when idle (ms, default 25). */
  batchWindowMs?: number;
  /** Most images in one worker call (default 16). */
  maxBatchSize?: number;
  /** Jobs of one user in a running batch (default 1). */
  perUserRunning?: number;
  /** Jobs of one user waiting (default 3). */
  perUserWaiting?: number;
  /** Most jobs waiting in all (default 50). */
  maxWaiting?: number;
}

interface Entry<T, R> {
  job: QueueJob<T>;
  hooks?: QueueHooks;
  lastPosition?: number;
  resolve(r: R): void;
  reject(e: unknown): void;
}

/** In-process queue with batching and limits; one batch runs at a time. */
export class ImagineQueue<T, R> implements GenerationQueue<T, R> {
  private readonly waiting: Entry<T, R>[] = [];
  private running: Entry<T, R>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private closed = false;
  private readonly o: Required<ImagineQueueOptions>;

  constructor(private readonly worker: BatchWorker<T, R>, options: ImagineQueueOptions = {}) {
    this.o = { batchWindowMs: 25, maxBatchSize: 16, perUserRunning: 1, perUserWaiting: 3, maxWaiting: 50, ...options };
  }

  submit(job: QueueJob<T>, hooks?: QueueHooks): Promise<R> {
    if (this.closed) return Promise.reject(new UserError('The bot is shutting down; please try again in a minute.'));
    const mineWaiting = this.waiting.filter((e) => e.job.userKey === job.userKey).length;
    const mineRunning = this.running.filter((e) => e.job.userKey === job.userKey).length;
    if (mineWaiting >= this.o.perUserWaiting && mineRunning + mineWaiting >= this.o.perUserRunning + this.o.perUserWaiting) {
      log.info({ userKey: job.userKey, mineWaiting, mineRunning }, 'per-user queue limit');
      return Promise.reject(new UserError(
        `You already have ${mineRunning + mineWaiting} images on the way (the limit is ${this.o.perUserRunning} running and ${this.o.perUserWaiting} waiting). Please wait for them before asking for more.`));
    }
    if (this.waiting.length >= this.o.maxWaiting) {
      log.warn({ waiting: this.waiting.length }, 'global queue full');
      return Promise.reject(new UserError('The bot is very busy right now; please try again in a minute.'));
    }
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<T, R> = { job, hooks, resolve, reject };
      this.waiting.push(entry);
      if (this.busy) this.notifyPositions();
      else this.schedule();
    });
  }

  stats() {
    return { waiting: this.waiting.length, running: this.running.length };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const e of this.waiting.splice(0)) e.reject(new UserError('The bot is shutting down; please try again in a minute.'));
    await this.busy;
  }

  /** Starts a batch after the batch window unless one is pending or running. */
  private schedule(): void {
    if (this.timer || this.busy || this.waiting.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.busy = this.drain().finally(() => { this.busy = null; });
    }, this.o.batchWindowMs);
  }

  /** Runs batches until nothing waits; jobs that come in while the worker is busy form the next batch. */
  private async drain(): Promise<void> {
    while (this.waiting.length) {
      const batch = this.takeBatch();
      this.notifyPositions();
      await this.runBatch(batch);
    }
  }

  /** Takes the next batch: the oldest job's batch key, at most perUserRunning per user, up to maxBatchSize images. */
  private takeBatch(): Entry<T, R>[] {
    const first = this.waiting[0];
    if (!first) return [];
    const key = first.job.batchKey;
    const perUser = new Map<string, number>();
    const batch: Entry<T, R>[] = [];
    let size = 0;
    for (const e of this.waiting) {
      if (e.job.batchKey !== key) continue;
      const n = perUser.get(e.job.userKey) ?? 0;
      if (n >= this.o.perUserRunning) continue;
      if (batch.length > 0 && size + e.job.size > this.o.maxBatchSize) break;
      batch.push(e);
      perUser.set(e.job.userKey, n + 1);
      size += e.job.size;
    }
    for (const e of batch) this.waiting.splice(this.waiting.indexOf(e), 1);
    return batch;
  }

  private async runBatch(batch: Entry<T, R>[]): Promise<void> {
    this.running = batch;
    const key = batch[0].job.batchKey;
    log.debug({ jobs: batch.length, batchKey: key, waiting: this.waiting.length }, 'running batch');
    try {
      const results = await this.worker(batch.map((e) => e.job.payload), key);
      batch.forEach((e, i) => e.resolve(results[i]));
    } catch (err) {
      for (const e of batch) e.reject(err);
    } finally {
      this.running = [];
    }
  }

  private notifyPositions(): void {
    this.waiting.forEach((e, i) => {
      const position = i + 1;
      if (e.lastPosition === position || !e.hooks?.onQueued) return;
      e.lastPosition = position;
      Promise.resolve()
        .then(() => e.hooks!.onQueued!(position))
        .catch((err) => log.warn({ err }, 'onQueued hook failed'));
    });
  }
}
