/**
 * A Graphile Worker job runner that is replaced when it ends unexpectedly. Graphile Worker 0.18 records a job's
 * end without waiting for it; completions and failures go through its batcher (delay 0), which on a database
 * error ends the runner instead of leaving an unhandled rejection. While the worker is not stopping, the ended
 * runner's Graphile ids are dropped from the heartbeat (so the sweepers free the jobs it held) and, once the
 * database answers, a fresh runner takes its place. Shared by the generation and the training worker.
 */
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { run, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import { childLogger } from '../log.js';
import type { WorkerHeartbeat } from './heartbeat.js';
import { graphileLogger } from './schema.js';
import { waitForDatabase } from './worker-db-wait.js';

const log = childLogger('job-runner');

export interface SupervisedRunnerOptions {
  pool: pg.Pool;
  /** Lists the Graphile worker ids of each runner, so other workers' sweepers know they are alive. */
  heartbeat: WorkerHeartbeat;
  concurrency: number;
  /** How often to look for jobs due later (retries), ms (default 2000). */
  pollIntervalMs?: number;
  taskList: TaskList;
  /** True once the worker is stopping: an ending runner is then expected, not replaced. */
  stopping(): boolean;
  /** For the log, e.g. `job runner`, `training job runner`. */
  name: string;
}

/** The runner in place now (it changes when one is replaced). */
export interface SupervisedRunner {
  current(): Runner;
}

/** Starts the first runner (its failure rejects) and keeps one running until the worker stops. */
export async function startSupervisedRunner(opts: SupervisedRunnerOptions): Promise<SupervisedRunner> {
  async function startRunner(): Promise<{ runner: Runner; ids: Set<string> }> {
    const ids = new Set<string>();
    const events: WorkerEvents = new EventEmitter();
    events.on('worker:create', ({ worker }) => {
      ids.add(worker.workerId);
      opts.heartbeat.addGraphileWorkerId(worker.workerId);
    });
    const runner = await run({
      pgPool: opts.pool, concurrency: opts.concurrency, noHandleSignals: true, logger: graphileLogger(), events,
      pollInterval: opts.pollIntervalMs ?? 2000,
      parsedCronItems: [], // no cron: otherwise it looks for a ./crontab file
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      taskList: opts.taskList,
    });
    return { runner, ids };
  }

  function watch(current: { runner: Runner; ids: Set<string> }): void {
    const restart = async (reason: unknown) => {
      if (opts.stopping()) return;
      log.error({ reason: (reason as Error)?.message ?? 'ended' }, `the ${opts.name} stopped unexpectedly; starting a new one`);
      // Jobs it still holds are freed by the sweepers once its ids are no longer listed as alive.
      opts.heartbeat.forgetGraphileWorkerIds(current.ids);
      for (;;) {
        await waitForDatabase(opts.pool);
        if (opts.stopping()) return;
        try {
          const next = await startRunner();
          if (opts.stopping()) { await next.runner.stop().catch(() => undefined); return; }
          active = next;
          watch(next);
          return;
        } catch (err) {
          log.warn({ reason: (err as Error).message }, `could not start a new ${opts.name} yet`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    current.runner.promise.then(() => restart(null), restart);
  }

  let active = await startRunner();
  watch(active);
  return { current: () => active.runner };
}
