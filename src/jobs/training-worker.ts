/**
 * The training worker of scaled mode (`npm run worker -- --train`, on the training host): takes `train` jobs
 * (training-jobs.ts) with Graphile Worker, one at a time, and runs each with the in-process TrainingRunner (its
 * `cvae train --json-events` child, host lock file, checkpoint registration in DATA_DIR/checkpoints on the shared
 * volume). Its sink stores each progress update in the run row and each epoch image in `training_images`, and
 * NOTIFYs the ingresses. It LISTENs for stop requests (and re-checks them every `stopCheckMs`, in case a
 * notification was lost) and stops the child, which saves a checkpoint first.
 *
 * Runs are owned by a stable owner id (`<host>:train` by default): a worker killed mid-run leaves its run
 * 'running'; when it starts again it fails that run at once (RunStore.failOrphans), and other processes fail it
 * once its heartbeat is stale. Its job has max_attempts 1, so it is never started a second time; the heartbeat
 * sweeper of a live training worker unlocks the dead one's `train` jobs (and so the `training` queue).
 * A graceful stop (SIGTERM) stops the run going (checkpoint first; the run ends 'stopped') before it leaves.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { JobHelpers } from 'graphile-worker';
import { childLogger } from '../log.js';
import { isUserError } from '../bot/core/errors.js';
import type { RunStore } from '../bot/core/store/run-store.js';
import { TrainingRunner, type TrainingRunnerOptions } from '../bot/core/training-runner.js';
import type { TrainingProgress } from '../bot/core/training-progress.js';
import type { TrainingProgressSink } from '../bot/core/types.js';
import { WorkerHeartbeat } from './heartbeat.js';
import { listenOnChannels, type ChannelListener } from './pg-listener.js';
import { startSupervisedRunner, type SupervisedRunner } from './supervised-runner.js';
import { untilDatabaseAnswers } from './worker-db-wait.js';
import {
  STOPPED_BEFORE_START, TRAIN_TASK, TRAINING_STOP_CHANNEL, acknowledgeStop, migrateTrainingJobs, notifyTrainingProgress,
  stopRequested, storeTrainingImage, type TrainJobPayload,
} from './training-jobs.js';

const log = childLogger('training-worker');

export interface TrainingWorkerDeps {
  /** A pool on the scaled-mode database (migrateJobs done); at least 4 connections. */
  pool: pg.Pool;
  /** The shared store's runs, opened with the stable owner of this training host (e.g. `<host>:train`). */
  runs: RunStore;
  /** TrainingRunner settings (catalog = the checkpoint registry on the shared volume, checkPreset, dirs, env...). */
  runner: Omit<TrainingRunnerOptions, 'runs'>;
  /** This process's id in worker_heartbeats (default `<host>-train-<pid>-<random>`). */
  workerId?: string;
  /** Heartbeat timings (ms; defaults 2000, 5000, 10000). */
  heartbeat?: { intervalMs?: number; sweepMs?: number; staleMs?: number };
  /** How often Graphile Worker polls for jobs that became due (ms, default 2000). */
  pollIntervalMs?: number;
  /** How often a run's stop request is re-checked without a notification (ms, default 5000). */
  stopCheckMs?: number;
}

/** A running training worker. */
export interface TrainingWorker {
  readonly workerId: string;
  /** The runner of the run going (tests, health). */
  readonly runner: TrainingRunner;
  /** Graceful: stops the run going (checkpoint first), takes no new job, leaves the heartbeat table. */
  stop(): Promise<void>;
}

/** Starts a training worker; see the module comment. */
export async function startTrainingWorker(deps: TrainingWorkerDeps): Promise<TrainingWorker> {
  const workerId = deps.workerId ?? `${os.hostname()}-train-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const { pool, runs } = deps;
  await migrateTrainingJobs(pool);
  // The end of a run is recorded even across a database restart (else a finished run would be failed as an orphan).
  // Object.create keeps every other RunStore method (and its `this`) as is.
  const durableRuns: RunStore = Object.create(runs, {
    finish: { value: (id: string, f: Parameters<RunStore['finish']>[1]) => untilDatabaseAnswers(pool, 'record the end of the run', () => runs.finish(id, f)) },
  });
  // Progress stored often (every 2 s at most) so `/train status` on any ingress is fresh; the ingress throttles chat edits.
  const runner = new TrainingRunner({ minUpdateIntervalMs: 2000, ...deps.runner, runs: durableRuns });
  const heartbeat = new WorkerHeartbeat({ pool, workerId, role: 'train', sweptTasks: [TRAIN_TASK], ...deps.heartbeat });
  let stopping: Promise<void> | null = null;

  const orphans = await runs.failOrphans();
  if (orphans) log.warn({ orphans, owner: runs.owner }, 'marked training runs this host was training when it stopped as failed');

  /** Stops the run if it is the one going (idempotent: TrainingRunner answers "already stopping"). */
  async function stopRun(runId: string, why: string): Promise<void> {
    if (runner.currentRunId !== runId) return;
    await acknowledgeStop(pool, runId).catch((err: Error) => log.warn({ runId, reason: err.message }, 'could not confirm the stop'));
    const answer = await runner.stop();
    log.info({ runId, why, answer }, 'training run stop');
  }

  const listener: ChannelListener = listenOnChannels({
    connection: pool.options, channels: [TRAINING_STOP_CHANNEL], applicationName: 'cvae-training-stop-listener',
    onNotification: (_channel, runId) => { void stopRun(runId, 'stop requested'); },
    onReconnect: () => { void checkStop(); },
  });
  await listener.ready;

  async function checkStop(): Promise<void> {
    const runId = runner.currentRunId;
    if (runId && await stopRequested(pool, runId).catch(() => false)) await stopRun(runId, 'stop request found');
  }
  const stopChecker = setInterval(() => { void checkStop(); }, deps.stopCheckMs ?? 5000);
  stopChecker.unref();

  /** The sink of a run: progress into the run row, images into training_images, each followed by a NOTIFY. */
  function sinkFor(runId: string): TrainingProgressSink {
    return {
      async update(progress: TrainingProgress) {
        try {
          await runs.setProgress(runId, progress);
          await notifyTrainingProgress(pool, runId);
        } catch (err) {
          log.warn({ runId, reason: (err as Error).message }, 'could not store training progress');
        }
      },
      async image(image) {
        try {
          await storeTrainingImage(pool, runId, image);
        } catch (err) {
          log.warn({ runId, reason: (err as Error).message }, 'could not store a training image');
        }
      },
    };
  }

  async function finishUnstarted(runId: string, status: 'stopped' | 'failed', message: string): Promise<void> {
    const now = new Date().toISOString();
    await pool.query(`update runs set status = $1, message = $2, finished_at = $3 where id = $4 and status = 'running'`, [status, message, now, runId]);
    await notifyTrainingProgress(pool, runId);
  }

  async function train(raw: unknown, helpers: JobHelpers): Promise<void> {
    const p = raw as TrainJobPayload;
    if (!p || typeof p.runId !== 'string' || typeof p.preset !== 'string' || !p.actor) {
      log.error({ jobId: helpers.job.id }, 'train job without a valid payload; dropped');
      return;
    }
    heartbeat.addGraphileWorkerId(helpers.job.locked_by);
    if (stopping) {
      await finishUnstarted(p.runId, 'failed', 'the training worker stopped before it could start the run; please start it again');
      return;
    }
    // Runs this host died with are failed before this one is claimed (claimed, it has our owner too).
    const orphans = await runs.failOrphans();
    if (orphans) log.warn({ orphans }, 'marked training runs of a process that died as failed');
    const { rowCount } = await pool.query(
      `update runs set owner = $1, heartbeat_at = $2 where id = $3 and status = 'running'`, [runs.owner, new Date().toISOString(), p.runId]);
    if (!rowCount) {
      log.info({ runId: p.runId }, 'training run no longer waiting (stopped or failed before it started); nothing to do');
      return;
    }
    if (await stopRequested(pool, p.runId)) {
      await finishUnstarted(p.runId, 'stopped', STOPPED_BEFORE_START);
      return;
    }
    try {
      await runner.start(p.actor, { preset: p.preset, epochs: p.epochs ?? undefined, dataset: p.dataset ?? undefined }, sinkFor(p.runId), { runId: p.runId });
    } catch (err) {
      const message = isUserError(err) ? err.message : `could not start: ${(err as Error).message}`;
      log.warn({ runId: p.runId, reason: message }, 'training run could not start');
      const failed: TrainingProgress = { state: 'failed', runId: p.runId, preset: p.preset, epochs: p.epochs, fraction: 0, message };
      await runs.finish(p.runId, { status: 'failed', message, progress: failed });
      await notifyTrainingProgress(pool, p.runId);
      return;
    }
    // A stop asked between the claim and the child's start (by an admin, or this worker stopping).
    if (stopping) await runner.stop();
    else await checkStop();
    await runner.idle();
    await notifyTrainingProgress(pool, p.runId).catch(() => undefined);
    log.info({ runId: p.runId }, 'training job done');
  }

  await heartbeat.start();
  // Train jobs one at a time; a runner that ends while the worker is not stopping is replaced, and its jobs are
  // freed by the sweepers (never retried: max_attempts 1).
  let supervised: SupervisedRunner;
  try {
    supervised = await startSupervisedRunner({
      pool, heartbeat, concurrency: 1, pollIntervalMs: deps.pollIntervalMs,
      taskList: { [TRAIN_TASK]: train }, stopping: () => stopping !== null, name: 'training job runner',
    });
  } catch (err) {
    clearInterval(stopChecker);
    await listener.stop();
    await heartbeat.stop();
    throw err;
  }
  log.info({ workerId, owner: runs.owner }, 'training worker started');

  async function stop(): Promise<void> {
    log.info({ workerId, runId: runner.currentRunId }, 'training worker stopping');
    // No new job from here; the run going is stopped (checkpoint first, run 'stopped') and its job completes.
    const graphileStopped = supervised.current().stop();
    if (runner.busy) await runner.stop();
    await graphileStopped.catch((err: Error) => log.warn({ reason: err.message }, 'the job runner did not stop cleanly'));
    await runner.idle();
    clearInterval(stopChecker);
    await listener.stop();
    await heartbeat.stop();
    log.info({ workerId }, 'training worker stopped');
  }

  return {
    workerId,
    runner,
    stop: () => (stopping ??= stop()),
  };
}
