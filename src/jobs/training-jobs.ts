/**
 * Training as a job (scaled mode, DATABASE_URL set): the ingress side, and what it shares with the training worker.
 *
 * {@link ClusterTrainingRunner} replaces the in-process TrainingRunner on an ingress, with the same public shape
 * ({@link TrainingControl}). `start` checks the request, then in ONE transaction (serialised across ingresses by an
 * advisory lock) refuses when no training worker is alive or a run is going anywhere, records the run and adds the
 * Graphile Worker job `train` (queue `training`: the cluster runs one at a time; job key = run id; max_attempts 1,
 * so a run whose worker died is never started a second time: it is failed by the run-store orphan rules instead).
 *
 * The training worker (training-worker.ts) runs the job with TrainingRunner, stores each progress update
 * (runs.setProgress) and each epoch image (`training_images`, the latest epochs only) and NOTIFYs
 * {@link TRAINING_PROGRESS_CHANNEL} with the run id. Every ingress LISTENs: it keeps the latest progress (for
 * /metrics and `busy`), and the ingress that started the run forwards the progress (throttled to one edit per
 * `minUpdateIntervalMs`, the final one always) and the images to the sink it was given. `/train status` reads the
 * stored progress, so it works on any ingress. `stop` records the request in `training_controls` and NOTIFYs
 * {@link TRAINING_STOP_CHANNEL}; the worker stops the child (checkpoint first) and confirms (`stop_acked_at`).
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { childLogger } from '../log.js';
import { UserError, isUserError } from '../bot/core/errors.js';
import type { RunRecord, RunStore } from '../bot/core/store/run-store.js';
import { staleCutoff } from '../bot/core/store/run-store.js';
import type { TrainingControl } from '../bot/core/training-runner.js';
import {
  formatTrainingProgress, trainingEnded, type TrainingImage, type TrainingProgress,
} from '../bot/core/training-progress.js';
import type { Actor, TrainingProgressSink } from '../bot/core/types.js';
import { isValidName } from '../util/names.js';
import { DATABASE_UNAVAILABLE_MESSAGE, inTransaction, isDatabaseUnavailable } from '../util/postgres.js';
import { listenOnChannels, type ChannelListener } from './pg-listener.js';
import { LOCK_NAMESPACE, LOCK_SCHEMA } from './schema.js';

const log = childLogger('training-jobs');

/** The Graphile Worker task of a training run. */
export const TRAIN_TASK = 'train';
/** Graphile Worker queue of training jobs: its jobs run one at a time, cluster-wide. */
export const TRAINING_QUEUE = 'training';
/** NOTIFY channel: a run's progress, images or stop confirmation changed (payload: the run id). */
export const TRAINING_PROGRESS_CHANNEL = 'cvae_training_progress';
/** NOTIFY channel: an admin asked to stop a run (payload: the run id). */
export const TRAINING_STOP_CHANNEL = 'cvae_training_stop';
/** Second advisory-lock key under {@link LOCK_NAMESPACE}: training starts, one at a time across ingresses. */
export const LOCK_TRAINING = 3;

/** What a `train` job carries (the run row holds the same; the job is self-contained). */
export interface TrainJobPayload {
  runId: string;
  actor: Actor;
  preset: string;
  epochs: number | null;
  dataset: string | null;
}

/**
 * Owner of a run recorded by an ingress until a training worker claims it: not the ingress's own owner id, whose
 * RunStore.failOrphans would take the waiting run for one the ingress died with. A waiting run is failed only
 * when its heartbeat goes stale (no worker took it for RUN_STALE_AFTER_MS).
 */
export const QUEUED_RUN_OWNER = 'training-queue';

/** Message of a run stopped while its job was still waiting for the worker. */
export const STOPPED_BEFORE_START = 'stopped before it started';

const NO_TRAINING_WORKER = 'No training worker is running, so I cannot start a run. Start one on the training host with '
  + '`npm run worker -- --train` (the same DATABASE_URL as the bot), then try again.';

/**
 * Our training tables, created if missing (idempotent; safe from every process at start, after migrateJobs):
 * `training_controls` (who started a run, stop requested / confirmed) and `training_images` (each epoch's sample
 * grid and loss curve, kept for the latest epochs of the newest run only).
 */
export async function migrateTrainingJobs(pool: pg.Pool): Promise<void> {
  await inTransaction(pool, async (c) => {
    await c.query('select pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCK_SCHEMA]);
    await c.query(`create table if not exists training_controls (
      run_id text primary key,
      origin text,
      stop_requested_at timestamptz,
      stop_acked_at timestamptz,
      created_at timestamptz not null default now())`);
    await c.query(`create table if not exists training_images (
      id bigint generated always as identity primary key,
      run_id text not null,
      kind text not null check (kind in ('samples', 'loss-curve')),
      epoch int not null,
      epochs int not null,
      val_loss double precision not null,
      best boolean not null,
      png bytea not null,
      created_at timestamptz not null default now())`);
    await c.query('create index if not exists training_images_run on training_images (run_id, id)');
  });
}

/** Tells every ingress that the run's progress (or images, or stop state) changed. */
export async function notifyTrainingProgress(pool: pg.Pool | pg.PoolClient, runId: string): Promise<void> {
  await pool.query('select pg_notify($1, $2)', [TRAINING_PROGRESS_CHANNEL, runId]);
}

/** Stores an epoch image of a run (dropping images of older runs and epochs) and notifies. */
export async function storeTrainingImage(pool: pg.Pool, runId: string, image: TrainingImage): Promise<void> {
  await pool.query(
    `insert into training_images (run_id, kind, epoch, epochs, val_loss, best, png) values ($1, $2, $3, $4, $5, $6, $7)`,
    [runId, image.kind, image.epoch, image.epochs, image.valLoss, image.best, image.png]);
  // Small: the newest run's last two epochs (an ingress reads them within moments of the notification).
  await pool.query('delete from training_images where run_id <> $1 or epoch < $2', [runId, image.epoch - 1]);
  await notifyTrainingProgress(pool, runId);
}

/** The images of a run stored after image `afterId`, oldest first. */
async function imagesAfter(pool: pg.Pool, runId: string, afterId: number): Promise<{ id: number; image: TrainingImage }[]> {
  const { rows } = await pool.query<{ id: string; kind: TrainingImage['kind']; epoch: number; epochs: number; val_loss: number; best: boolean; png: Buffer }>(
    'select id, kind, epoch, epochs, val_loss, best, png from training_images where run_id = $1 and id > $2 order by id', [runId, afterId]);
  return rows.map((r) => ({ id: Number(r.id), image: { kind: r.kind, epoch: r.epoch, epochs: r.epochs, valLoss: r.val_loss, best: r.best, png: r.png } }));
}

/** Whether an admin asked to stop the run. */
export async function stopRequested(pool: pg.Pool, runId: string): Promise<boolean> {
  const { rows } = await pool.query('select 1 from training_controls where run_id = $1 and stop_requested_at is not null', [runId]);
  return rows.length > 0;
}

/** The worker confirms a stop request (the ingress that asked answers with it). */
export async function acknowledgeStop(pool: pg.Pool, runId: string): Promise<void> {
  await pool.query('update training_controls set stop_acked_at = now() where run_id = $1 and stop_acked_at is null', [runId]);
  await notifyTrainingProgress(pool, runId);
}

/** The final progress of a run that ended without the worker's final progress (stopped while queued, failed as an orphan). */
export function finalProgressOf(run: RunRecord): TrainingProgress {
  if (run.progress && trainingEnded(run.progress)) return run.progress;
  const ref = { runId: run.id, preset: run.preset, epochs: run.epochs, fraction: run.progress?.fraction ?? 0 };
  if (run.status === 'failed' || run.status === 'running') return { ...ref, state: 'failed', message: run.message ?? 'unknown error' };
  return { ...ref, state: 'finished', reason: run.status, epochsCompleted: 0, bestValLoss: run.bestValLoss, registered: null };
}

export interface ClusterTrainingRunnerOptions {
  /** A pool on the scaled-mode database (the PostgreSQL store's `pool`); migrateJobs done. */
  pool: pg.Pool;
  /** The store's runs (the same database). */
  runs: RunStore;
  /** Checks a preset name, throwing a UserError listing the names when unknown (e.g. getPreset). */
  checkPreset?: (name: string) => void;
  /** Minimum time between status edits sent to a sink (default 15000 ms; the final update always goes). */
  minUpdateIntervalMs?: number;
  /** A training worker counts as live when its heartbeat is this recent, seconds (default 10). */
  liveWorkerWindowS?: number;
  /** How long `stop` waits for the worker to confirm, ms (default 5000). */
  stopConfirmMs?: number;
  /** How often the runs this ingress watches are re-read even without a notification, ms (default 10000). */
  pollMs?: number;
  now?: () => number;
}

/** A run started from this ingress: its sink gets the progress. */
interface Watch {
  runId: string;
  sink: TrainingProgressSink;
  lastUpdateAt: number;
  lastSent: string | null;
  pending: TrainingProgress | null;
  pendingTimer: NodeJS.Timeout | null;
  lastImageId: number;
  chain: Promise<void>;
  ended: boolean;
  done: Promise<void>;
  resolveDone: () => void;
}

/** The ingress's training runner in scaled mode; see the module comment. Create with {@link createClusterTrainingRunner}. */
export class ClusterTrainingRunner implements TrainingControl {
  private readonly o: Required<Omit<ClusterTrainingRunnerOptions, 'checkPreset'>> & Pick<ClusterTrainingRunnerOptions, 'checkPreset'>;
  private readonly watches = new Map<string, Watch>();
  /** The latest progress of the run going (any ingress's), as last read. */
  private known: TrainingProgress | null = null;
  private listener: ChannelListener | null = null;
  private poller: NodeJS.Timeout | null = null;
  private refreshes = new Map<string, Promise<void>>();
  private closed = false;

  constructor(opts: ClusterTrainingRunnerOptions) {
    this.o = {
      minUpdateIntervalMs: 15_000, liveWorkerWindowS: 10, stopConfirmMs: 5000, pollMs: 10_000, now: Date.now,
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as ClusterTrainingRunnerOptions),
    };
  }

  /** LISTENs for progress and reads the run going now. Called by {@link createClusterTrainingRunner}. */
  async open(): Promise<this> {
    await migrateTrainingJobs(this.o.pool);
    this.listener = listenOnChannels({
      connection: this.o.pool.options, channels: [TRAINING_PROGRESS_CHANNEL], applicationName: 'cvae-training-listener',
      onNotification: (_channel, runId) => this.refresh(runId),
      onReconnect: () => this.refreshAll(),
    });
    await this.listener.ready;
    this.poller = setInterval(() => this.refreshAll(), this.o.pollMs);
    this.poller.unref();
    const going = await this.o.runs.running().catch(() => null);
    if (going) this.known = going.progress ?? startingOf(going);
    return this;
  }

  /** Stops listening. Runs go on on the training worker; their sinks here get nothing more. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    await this.listener?.stop();
    for (const w of this.watches.values()) this.endWatch(w);
    await Promise.all([...this.refreshes.values()]);
  }

  get busy(): boolean {
    return this.known !== null && !trainingEnded(this.known);
  }

  get currentRunId(): string | null {
    return this.busy ? this.known!.runId : null;
  }

  progress(): TrainingProgress | null {
    return this.busy ? this.known : null;
  }

  /** Resolves when the runs started from this ingress have ended and their final update was sent. */
  async idle(): Promise<void> {
    await Promise.all([...this.watches.values()].map((w) => w.done));
  }

  async start(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink): Promise<string> {
    const preset = opts.preset.trim();
    if (!isValidName(preset)) throw new UserError('Preset names use letters, digits, `.`, `-` and `_`.');
    this.o.checkPreset?.(preset);
    if (opts.epochs !== undefined && (!Number.isInteger(opts.epochs) || opts.epochs < 1 || opts.epochs > 1000)) {
      throw new UserError('Epochs must be a whole number from 1 to 1000.');
    }
    const dataset = opts.dataset?.trim() ? opts.dataset.trim() : null;
    if (dataset !== null && (!isValidName(dataset) || dataset.includes('..'))) {
      throw new UserError('Dataset names use letters, digits, `.`, `-` and `_` (a folder under the data dir\'s `datasets/`).');
    }
    const id = `${preset}-${new Date(this.o.now()).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}-${crypto.randomBytes(2).toString('hex')}`;
    const orphans = await this.guard(() => this.o.runs.failOrphans());
    if (orphans) log.warn({ orphans }, 'marked training runs of a process that died as failed');
    const payload: TrainJobPayload = { runId: id, actor, preset, epochs: opts.epochs ?? null, dataset };
    await this.guard(() => this.tx(async (c) => {
      // One start at a time across every ingress: the checks below cannot go stale before commit.
      await c.query('select pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCK_TRAINING]);
      const { rows: [going] } = await c.query<{ id: string }>(
        `select id from runs where status = 'running' and heartbeat_at >= $1 order by started_at desc limit 1`, [staleCutoff()]);
      if (going) throw new UserError(`A training run (\`${going.id}\`) is already going. Use \`/train status\` or \`/train stop\`.`);
      // A job still waiting whose run is no longer going (failed as stale meanwhile) is dropped; a live one refuses.
      const { rows: queued } = await c.query<{ id: string; key: string | null; live: boolean }>(
        `select j.id, j.key, coalesce(r.status = 'running', false) as live from graphile_worker.jobs j left join runs r on r.id = j.key
         where j.task_identifier = $1 and j.locked_at is null and j.attempts < j.max_attempts`, [TRAIN_TASK]);
      const live = queued.find((q) => q.live);
      if (live) throw new UserError(`A training run (\`${live.key}\`) is waiting to start. Use \`/train status\` or \`/train stop\`.`);
      if (queued.length) await c.query('select graphile_worker.complete_jobs($1::bigint[])', [queued.map((q) => q.id)]);
      const { rows: [workers] } = await c.query<{ n: number }>(
        `select count(*)::int as n from worker_heartbeats where role = 'train' and seen_at > now() - make_interval(secs => $1)`,
        [this.o.liveWorkerWindowS]);
      if (workers.n === 0) throw new UserError(NO_TRAINING_WORKER);
      const now = new Date(this.o.now()).toISOString();
      await c.query(
        `insert into runs (id, preset, epochs, dataset, platform, channel_id, user_id, status, started_at, owner, heartbeat_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10)`,
        [id, preset, payload.epochs, dataset, actor.platform, actor.channelId, actor.userId, now, QUEUED_RUN_OWNER, new Date().toISOString()]);
      await c.query('insert into training_controls (run_id, origin) values ($1, $2)', [id, this.o.runs.owner]);
      await c.query('select graphile_worker.add_job($1, $2::json, queue_name := $3, job_key := $4, max_attempts := 1)',
        [TRAIN_TASK, JSON.stringify(payload), TRAINING_QUEUE, id]);
    }));
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => { resolveDone = r; });
    this.watches.set(id, {
      runId: id, sink, lastUpdateAt: Number.NEGATIVE_INFINITY, lastSent: null, pending: null, pendingTimer: null, lastImageId: 0,
      chain: Promise.resolve(), ended: false, done, resolveDone,
    });
    this.known = startingOf({ id, preset, epochs: payload.epochs });
    this.refresh(id); // the worker may have taken it already
    log.info({ runId: id, preset, epochs: opts.epochs, dataset, platform: actor.platform, userId: actor.userId }, 'training run queued for the training worker');
    return `Started training run \`${id}\` (preset \`${preset}\`${opts.epochs ? `, ${opts.epochs} epochs` : ''}). Progress will appear here.`;
  }

  async status(): Promise<string> {
    const going = await this.guard(() => this.o.runs.running());
    if (going) {
      const stopping = await this.guard(() => stopRequested(this.o.pool, going.id));
      const text = going.progress ? formatTrainingProgress(going.progress) : `Training run \`${going.id}\` is waiting for the training worker to start it.`;
      return stopping ? `${text}\nStopping: it saves a checkpoint first.` : text;
    }
    const last = (await this.guard(() => this.o.runs.recent(1)))[0];
    if (!last) return 'No training run is going, and none has run yet.';
    return `No training run is going. Last run \`${last.id}\`: ${last.status}${last.bestValLoss != null ? `, best val loss ${last.bestValLoss.toFixed(1)}` : ''}${last.message ? ` (${last.message})` : ''}.`;
  }

  async stop(): Promise<string> {
    const going = await this.guard(() => this.o.runs.running());
    if (!going) return 'No training run is going.';
    const runId = going.id;
    const outcome = await this.guard(() => this.tx(async (c): Promise<'unstarted' | 'asked' | 'already'> => {
      // A job no worker has taken yet is taken off the queue (complete_jobs skips a locked one).
      const { rows: jobs } = await c.query<{ id: string }>('select id from graphile_worker.jobs where key = $1 and locked_at is null', [runId]);
      if (jobs.length) {
        const { rowCount } = await c.query('select id from graphile_worker.complete_jobs($1::bigint[])', [jobs.map((j) => j.id)]);
        if (rowCount) {
          await c.query(`update runs set status = 'stopped', message = $1, finished_at = $2 where id = $3 and status = 'running'`,
            [STOPPED_BEFORE_START, new Date().toISOString(), runId]);
          await notifyTrainingProgress(c, runId);
          return 'unstarted';
        }
      }
      const { rowCount } = await c.query(
        `insert into training_controls (run_id, stop_requested_at) values ($1, now())
         on conflict (run_id) do update set stop_requested_at = now() where training_controls.stop_requested_at is null`, [runId]);
      if (!rowCount) return 'already';
      await c.query('select pg_notify($1, $2)', [TRAINING_STOP_CHANNEL, runId]);
      return 'asked';
    }));
    log.info({ runId, outcome }, 'training run stop requested');
    if (outcome === 'unstarted') return `Stopped training run \`${runId}\` before the training worker started it.`;
    if (outcome === 'already') return `Training run \`${runId}\` is already stopping.`;
    if (await this.waitForStopConfirmation(runId)) return `Stopping training run \`${runId}\`: it saves a checkpoint first.`;
    return `Asked training run \`${runId}\` to stop, but the training worker has not confirmed yet; it stops the run (checkpoint first) `
      + 'as soon as it hears. Check with `/train status`.';
  }

  /** Polls `stop_acked_at` until the worker confirms or {@link ClusterTrainingRunnerOptions.stopConfirmMs} passes. */
  private async waitForStopConfirmation(runId: string): Promise<boolean> {
    const deadline = Date.now() + this.o.stopConfirmMs;
    for (;;) {
      const { rows } = await this.o.pool.query<{ acked: boolean; status: string | null }>(
        `select c.stop_acked_at is not null as acked, r.status from training_controls c left join runs r on r.id = c.run_id where c.run_id = $1`,
        [runId]).catch(() => ({ rows: [] as { acked: boolean; status: string | null }[] }));
      if (rows[0]?.acked || (rows[0]?.status && rows[0].status !== 'running')) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Re-reads every run watched here and the run going. */
  private refreshAll(): void {
    for (const id of this.watches.keys()) this.refresh(id);
    if (this.known && !this.watches.has(this.known.runId)) this.refresh(this.known.runId);
    void this.o.runs.running().then((r) => { if (r && r.id !== this.known?.runId) this.refresh(r.id); }, () => undefined);
  }

  /** Reads the run's stored progress and images (one read per run at a time; a notification meanwhile reads again). */
  private refresh(runId: string): void {
    if (this.closed) return;
    const prev = this.refreshes.get(runId) ?? Promise.resolve();
    const next = prev.then(() => this.read(runId)).catch((err: unknown) =>
      log.warn({ runId, reason: (err as Error).message }, 'could not read training progress; the next notification reads it again'));
    this.refreshes.set(runId, next);
    void next.finally(() => { if (this.refreshes.get(runId) === next) this.refreshes.delete(runId); });
  }

  private async read(runId: string): Promise<void> {
    const run = await this.o.runs.get(runId);
    if (!run) return;
    const ended = run.status !== 'running';
    const progress = ended ? finalProgressOf(run) : run.progress ?? startingOf(run);
    // The run going for everyone here (a newer run replaces an older one).
    if (!this.known || this.known.runId === runId || !ended) this.known = progress;
    const w = this.watches.get(runId);
    if (!w || w.ended) return;
    const images = await imagesAfter(this.o.pool, runId, w.lastImageId);
    for (const { id, image } of images) {
      w.lastImageId = id;
      this.enqueue(w, () => w.sink.image(image));
    }
    if (ended) {
      if (w.pendingTimer) clearTimeout(w.pendingTimer);
      w.pendingTimer = null;
      w.ended = true;
      this.enqueue(w, () => w.sink.update(progress));
      void w.chain.then(() => { this.watches.delete(runId); w.resolveDone(); });
      return;
    }
    this.setStatus(w, progress);
  }

  /** Sends now if the interval has passed since the last update, else later (the latest then); repeats are dropped. */
  private setStatus(w: Watch, progress: TrainingProgress): void {
    const text = JSON.stringify(progress);
    if (text === w.lastSent && !w.pending) return;
    const wait = w.lastUpdateAt + this.o.minUpdateIntervalMs - this.o.now();
    if (wait <= 0 && !w.pendingTimer) {
      w.lastUpdateAt = this.o.now();
      w.lastSent = text;
      this.enqueue(w, () => w.sink.update(progress));
      return;
    }
    w.pending = progress;
    if (!w.pendingTimer) {
      w.pendingTimer = setTimeout(() => {
        w.pendingTimer = null;
        const p = w.pending;
        w.pending = null;
        if (w.ended || !p) return;
        w.lastUpdateAt = this.o.now();
        w.lastSent = JSON.stringify(p);
        this.enqueue(w, () => w.sink.update(p));
      }, Math.max(wait, 0));
      w.pendingTimer.unref();
    }
  }

  private endWatch(w: Watch): void {
    if (w.pendingTimer) clearTimeout(w.pendingTimer);
    w.pendingTimer = null;
    w.ended = true;
    this.watches.delete(w.runId);
    w.resolveDone();
  }

  /** Sends to the sink in order; a failing sink is logged, never fatal. */
  private enqueue(w: Watch, fn: () => Promise<void>): void {
    w.chain = w.chain.then(fn).catch((err) => log.warn({ err, runId: w.runId }, 'training progress sink failed'));
  }

  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.o.pool, fn);
  }


  /** A database outage becomes a polite UserError; UserErrors pass. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isUserError(err) && isDatabaseUnavailable(err)) throw new UserError(DATABASE_UNAVAILABLE_MESSAGE, { cause: err });
      throw err;
    }
  }
}

/** Builds the ingress's training runner and starts listening (see {@link ClusterTrainingRunnerOptions}). */
export async function createClusterTrainingRunner(opts: ClusterTrainingRunnerOptions): Promise<ClusterTrainingRunner> {
  return new ClusterTrainingRunner(opts).open();
}

function startingOf(r: Pick<RunRecord, 'id' | 'preset' | 'epochs'>): TrainingProgress {
  return { state: 'starting', runId: r.id, preset: r.preset, epochs: r.epochs, fraction: 0, resolution: null, trainSize: null };
}
