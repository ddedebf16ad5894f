/**
 * Training as a job (scaled mode): an ingress's ClusterTrainingRunner queues the run, a training worker
 * (`startWorkerApp({ train: true })`, in process) runs it with the real `train` child on a tiny synthetic set,
 * progress and epoch images reach the starting ingress's sink, another ingress sees the progress in
 * `/train status`, refuses a second start and stops the run: the worker stops the child, which saves a
 * checkpoint, the run ends 'stopped' and its checkpoint is registered in DATA_DIR/checkpoints.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startWorkerApp, type RunningTrainingWorkerApp } from '../../src/app.js';
import { openBotStore, type BotStore } from '../../src/bot/core/store/index.js';
import type { TrainingImage, TrainingProgress } from '../../src/bot/core/training-progress.js';
import type { Actor, TrainingProgressSink } from '../../src/bot/core/types.js';
import {
  ClusterTrainingRunner, createClusterTrainingRunner, notifyTrainingProgress, storeTrainingImage, TRAIN_TASK,
} from '../../src/jobs/training-jobs.js';
import { CheckpointRegistry } from '../../src/model/registry.js';
import { getPreset } from '../../src/model/presets.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedDatabase } from './worker-helpers.js';

const admin: Actor = { platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId: 'boss' };

/** A sink that records what it gets and lets a test await a condition on it (no polling). */
function recordingSink() {
  const updates: TrainingProgress[] = [];
  const images: TrainingImage[] = [];
  let waiters: (() => void)[] = [];
  const changed = () => { const w = waiters; waiters = []; for (const f of w) f(); };
  const sink: TrainingProgressSink = {
    update: async (p) => { updates.push(p); changed(); },
    image: async (i) => { images.push(i); changed(); },
  };
  async function until(what: string, pred: () => boolean, timeoutMs = 180_000): Promise<void> {
    const deadline = setTimeout(() => changed(), timeoutMs);
    try {
      const end = Date.now() + timeoutMs;
      while (!pred()) {
        assert.ok(Date.now() < end, `timed out waiting for ${what}; updates: ${JSON.stringify(updates.map((u) => u.state))}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    } finally {
      clearTimeout(deadline);
    }
  }
  return { sink, updates, images, until };
}

describe('training as a job', { timeout: 300_000 }, () => {
  let server: TestPostgres;
  const cleanup: (() => Promise<unknown> | unknown)[] = [];

  before(async () => { server = await startTestPostgres(); });
  after(async () => {
    for (const f of cleanup.reverse()) await f();
    await server?.stop();
  });

  async function ingress(url: string, pool: pg.Pool, owner: string, minUpdateIntervalMs = 0): Promise<{ store: BotStore; runner: ClusterTrainingRunner }> {
    const store = await openBotStore({ databaseUrl: url, pool, owner });
    const runner = await createClusterTrainingRunner({ pool, runs: store.runs, checkPreset: (n) => { getPreset(n); }, minUpdateIntervalMs, stopConfirmMs: 20_000 });
    cleanup.push(() => runner.close());
    return { store, runner };
  }

  it('runs on the training worker: progress and images reach the starting ingress, another ingress sees and stops it', async () => {
    const { url, pool } = await migratedDatabase(server, 'train');
    cleanup.push(() => pool.end());
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-job-'));
    cleanup.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const a = await ingress(url, pool, 'ingress-a');
    const b = await ingress(url, pool, 'ingress-b');

    // No training worker yet: a polite refusal, nothing recorded or queued.
    const early = recordingSink();
    await assert.rejects(a.runner.start(admin, { preset: 'tiny', epochs: 5 }, early.sink), /No training worker is running.*npm run worker -- --train/);
    assert.equal((await a.store.runs.recent(5)).length, 0);
    assert.equal((await pool.query('select 1 from graphile_worker.jobs')).rowCount, 0);
    await assert.rejects(a.runner.start(admin, { preset: 'no-such-preset' }, early.sink), /preset/i);

    const worker: RunningTrainingWorkerApp = await startWorkerApp({
      train: true,
      env: { ...process.env, DATABASE_URL: url, DATA_DIR: dataDir },
      training: {
        extraArgs: ['--synthetic', '48', '--batch-size', '8'], minUpdateIntervalMs: 0, owner: 'test-host:train',
        heartbeat: { intervalMs: 200, sweepMs: 1000, staleMs: 3000 }, pollIntervalMs: 200, stopCheckMs: 1000,
      },
    });
    cleanup.push(() => worker.stop());

    const seen = recordingSink();
    const started = await a.runner.start(admin, { preset: 'tiny', epochs: 500 }, seen.sink);
    const runId = /^Started training run `(tiny-[\w-]+)` \(preset `tiny`, 500 epochs\)/.exec(started)?.[1];
    assert.ok(runId, started);
    const { rows: [job] } = await pool.query('select task_identifier, queue_name, max_attempts from graphile_worker.jobs where key = $1', [runId]);
    assert.deepEqual(job, { task_identifier: TRAIN_TASK, queue_name: 'training', max_attempts: 1 });

    // One run at a time across the cluster: the other ingress refuses.
    await assert.rejects(b.runner.start(admin, { preset: 'tiny', epochs: 1 }, recordingSink().sink), new RegExp(`A training run \\(\`${runId}\`\\) is already going`));

    // Progress, then the first epoch's sample grid and loss curve, reach the sink of the ingress that started it.
    await seen.until('a training step', () => seen.updates.some((u) => u.state === 'training'));
    await seen.until('the first epoch images', () => seen.images.some((i) => i.kind === 'samples') && seen.images.some((i) => i.kind === 'loss-curve'));
    assert.ok(seen.updates.every((u) => u.runId === runId));
    for (const img of seen.images) assert.deepEqual(img.png.subarray(0, 4), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    assert.equal(seen.images[0].epoch, 1);

    // The worker owns the run (its stable owner), and the other ingress reads the stored progress.
    const row = (await b.store.runs.get(runId))!;
    assert.equal(row.owner, 'test-host:train');
    assert.equal(row.status, 'running');
    assert.match(await b.runner.status(), new RegExp(`Training run \`${runId}\`: (epoch \\d+/500, step \\d+|epoch \\d+/500 done)`));
    assert.equal(worker.trainer.runner.currentRunId, runId);

    // Stop from the other ingress: the worker confirms and stops the child, which saves a checkpoint.
    assert.equal(await b.runner.stop(), `Stopping training run \`${runId}\`: it saves a checkpoint first.`);
    assert.match(await b.runner.stop(), /already stopping|No training run is going/);
    await a.runner.idle();
    const final = seen.updates.at(-1)!;
    assert.equal(final.state, 'finished', JSON.stringify(final));
    assert.equal(final.state === 'finished' && final.reason, 'stopped');
    assert.equal(final.state === 'finished' && final.registered, runId);

    const run = (await a.store.runs.get(runId))!;
    assert.equal(run.status, 'stopped');
    assert.ok(run.checkpointDir && fs.existsSync(run.checkpointDir), `checkpoint ${run.checkpointDir}`);
    const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
    assert.ok((await registry.list()).some((m) => m.name === runId), 'the checkpoint is registered in the shared registry');
    assert.match(await b.runner.status(), new RegExp(`No training run is going. Last run \`${runId}\`: stopped`));
    assert.equal(a.runner.busy, false);
  });

  it('`src/worker.ts --train` (npm run worker -- --train) takes a run; SIGTERM stops it with a checkpoint and exits 0', async () => {
    const { url, pool } = await migratedDatabase(server, 'trainp');
    cleanup.push(() => pool.end());
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-proc-'));
    cleanup.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const a = await ingress(url, pool, 'ingress-a');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts', '--train'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', DATABASE_URL: url, DATA_DIR: dataDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    cleanup.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    // Ready once it beats as a training worker (a start before that is refused politely, as tested above).
    const deadline = Date.now() + 60_000;
    while ((await pool.query(`select 1 from worker_heartbeats where role = 'train'`)).rowCount === 0) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the training worker did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seen = recordingSink();
    const runId = /`(tiny-[\w-]+)`/.exec(await a.runner.start(admin, { preset: 'tiny', epochs: 200, dataset: 'synthetic' }, seen.sink))![1];
    await seen.until('a training step', () => seen.updates.some((u) => u.state === 'training'));
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    await a.runner.idle();
    const final = seen.updates.at(-1)!;
    assert.deepEqual(final.state === 'finished' && [final.reason, final.registered], ['stopped', runId], JSON.stringify(final));
    const run = (await a.store.runs.get(runId))!;
    assert.equal(run.status, 'stopped');
    assert.ok(run.checkpointDir?.startsWith(path.join(dataDir, 'checkpoints')) && fs.existsSync(run.checkpointDir), run.checkpointDir ?? 'none');
    assert.equal((await pool.query('select 1 from worker_heartbeats')).rowCount, 0, 'it left the heartbeat table');
    assert.equal((await pool.query('select 1 from graphile_worker.jobs where key = $1', [runId])).rowCount, 0, 'its job completed');
  });

  it('throttles the edits sent to the sink (the final one always goes) while every ingress sees the stored progress', async () => {
    const { url, pool } = await migratedDatabase(server, 'traint');
    cleanup.push(() => pool.end());
    const a = await ingress(url, pool, 'ingress-a', 60_000);
    const b = await ingress(url, pool, 'ingress-b');
    await pool.query(`insert into worker_heartbeats (worker_id, role) values ('trainer', 'train')`);
    const seen = recordingSink();
    const runId = /`(tiny-[\w-]+)`/.exec(await a.runner.start(admin, { preset: 'tiny', epochs: 2 }, seen.sink))![1];
    // What a training worker does: each progress update stored, then NOTIFY; an epoch image stored (and notified).
    const losses = { total: 900, bce: 880, kl: 19, ssim: 0.1 };
    const ref = { runId, preset: 'tiny', epochs: 2 };
    for (const step of [1, 2, 3]) {
      await b.store.runs.setProgress(runId, { ...ref, state: 'training', fraction: step / 8, epoch: 1, step, totalSteps: 8, losses, imagesPerSec: 10, etaSec: 5 });
      await notifyTrainingProgress(pool, runId);
    }
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    await storeTrainingImage(pool, runId, { kind: 'samples', epoch: 1, epochs: 2, valLoss: 850, best: true, png });
    // The image arrives after the steps were read (one read at a time per run): the step edits were held back.
    await seen.until('the epoch image', () => seen.images.length === 1);
    assert.deepEqual(seen.images[0], { kind: 'samples', epoch: 1, epochs: 2, valLoss: 850, best: true, png });
    // One edit went out at once (the queued run, or the first step read), nothing more within the interval.
    assert.equal(seen.updates.length, 1, JSON.stringify(seen.updates));
    assert.equal(a.runner.progress()?.state, 'training');
    assert.match(await b.runner.status(), new RegExp(`Training run \`${runId}\`: epoch 1/2, step 3/8`));
    assert.equal(a.runner.currentRunId, runId);

    await b.store.runs.finish(runId, { status: 'completed', bestValLoss: 800, checkpointDir: '/ckpt/best',
      progress: { ...ref, state: 'finished', reason: 'completed', epochsCompleted: 2, bestValLoss: 800, registered: runId, fraction: 1 } });
    await notifyTrainingProgress(pool, runId);
    await a.runner.idle();
    assert.equal(seen.updates.length, 2, JSON.stringify(seen.updates));
    assert.equal(seen.updates[1].state, 'finished');
    assert.equal(a.runner.busy, false);
  });

  it('stops a run still waiting for a worker without starting it', async () => {
    const { url, pool } = await migratedDatabase(server, 'trainq');
    cleanup.push(() => pool.end());
    const a = await ingress(url, pool, 'ingress-a');
    // A training worker that beats but takes nothing (e.g. busy starting up).
    await pool.query(`insert into worker_heartbeats (worker_id, role) values ('idle-trainer', 'train')`);
    const seen = recordingSink();
    const started = await a.runner.start(admin, { preset: 'tiny', epochs: 3 }, seen.sink);
    const runId = /`(tiny-[\w-]+)`/.exec(started)![1];
    assert.match(await a.runner.status(), /waiting for the training worker/);
    assert.equal(await a.runner.stop(), `Stopped training run \`${runId}\` before the training worker started it.`);
    await a.runner.idle();
    const final = seen.updates.at(-1)!;
    assert.deepEqual(final.state === 'finished' && [final.reason, final.registered], ['stopped', null]);
    assert.ok(seen.updates.slice(0, -1).every((u) => u.state === 'starting'), JSON.stringify(seen.updates));
    assert.equal((await a.store.runs.get(runId))!.status, 'stopped');
    assert.equal((await pool.query('select 1 from graphile_worker.jobs where key = $1', [runId])).rowCount, 0, 'the job is gone');

    // A waiting run refuses a second start; once its run has gone stale (no worker took it for minutes), the next
    // start fails it and drops its job.
    const second = /`(tiny-[\w-]+)`/.exec(await a.runner.start(admin, { preset: 'tiny' }, recordingSink().sink))![1];
    await assert.rejects(a.runner.start(admin, { preset: 'tiny' }, recordingSink().sink), new RegExp(`\\(\`${second}\`\\) is already going`));
    await pool.query(`update runs set heartbeat_at = $1 where id = $2`, [new Date(Date.now() - 3_600_000).toISOString(), second]);
    const third = /`(tiny-[\w-]+)`/.exec(await a.runner.start(admin, { preset: 'tiny' }, recordingSink().sink))![1];
    const { rows } = await pool.query<{ key: string }>('select key from graphile_worker.jobs order by id');
    assert.deepEqual(rows.map((r) => r.key), [third]);
    assert.equal((await a.store.runs.get(second))!.status, 'failed');
  });

  it('a restarted training worker fails the run it died with at once and never runs its job again', async () => {
    const { url, pool } = await migratedDatabase(server, 'traink');
    cleanup.push(() => pool.end());
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-kill-'));
    cleanup.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const a = await ingress(url, pool, 'ingress-a');
    await pool.query(`insert into worker_heartbeats (worker_id, role) values ('doomed', 'train')`);
    const started = await a.runner.start(admin, { preset: 'tiny', epochs: 3 }, recordingSink().sink);
    const runId = /`(tiny-[\w-]+)`/.exec(started)![1];
    // As a worker killed mid-run leaves it: claimed by the host's trainer, heartbeat fresh, job locked and attempted.
    await pool.query(`update runs set owner = 'test-host:train' where id = $1`, [runId]);
    await pool.query(`update graphile_worker._private_jobs set locked_at = now() - interval '1 minute', locked_by = 'dead-graphile-worker', attempts = 1 where key = $1`, [runId]);
    await pool.query(`update graphile_worker._private_job_queues set locked_at = now() - interval '1 minute', locked_by = 'dead-graphile-worker' where queue_name = 'training'`);
    await pool.query(`delete from worker_heartbeats`);

    const worker = await startWorkerApp({
      train: true, env: { ...process.env, DATABASE_URL: url, DATA_DIR: dataDir },
      training: { owner: 'test-host:train', heartbeat: { intervalMs: 100, sweepMs: 200, staleMs: 500 }, pollIntervalMs: 100 },
    });
    cleanup.push(() => worker.stop());
    const run = (await a.store.runs.get(runId))!;
    assert.equal(run.status, 'failed');
    assert.match(run.message ?? '', /stopped while this run was going/);
    // Its sweeper frees the dead worker's lock (and the training queue); max_attempts 1 keeps the job from running again.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { rows: [j] } = await pool.query('select locked_by, attempts, max_attempts from graphile_worker.jobs where key = $1', [runId]);
      if (j && j.locked_by === null) { assert.deepEqual([j.attempts, j.max_attempts], [1, 1]); break; }
      assert.ok(Date.now() < deadline, `the dead worker's lock was not freed: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(worker.trainer.runner.busy, false);
    assert.equal((await a.store.runs.get(runId))!.status, 'failed');
    // With the dead run failed and the queue freed, a new run is queued and taken by the worker (which fails it at
    // once here: this data dir has no dataset, and its answer reaches the sink).
    const next = recordingSink();
    assert.match(await a.runner.start(admin, { preset: 'tiny', epochs: 1 }, next.sink), /Started training run/);
    await a.runner.idle();
    const final = next.updates.at(-1)!;
    assert.equal(final.state, 'failed');
    assert.match(final.state === 'failed' ? final.message : '', /no dataset yet/);
  });
});
