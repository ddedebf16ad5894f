/**
 * kill -9 of a worker mid-batch: its jobs stay locked by its Graphile worker ids; once its heartbeat is stale,
 * another worker's sweeper frees them and that worker decodes and delivers each of them, once, on the second
 * attempt.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { createBatchSampler } from '../../src/bot/core/batch-sampler.js';
import { startGenerationWorker } from '../../src/jobs/generation-worker.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { FakeSamplers, HashEmbedder, sharpRenderer } from '../bot/core/helpers.js';
import { MemoryRecorder, eventually, migratedDatabase, queueRequests, settledRequests } from './worker-helpers.js';

/** Spawns tests/jobs/worker-child.ts; resolves once it printed `line`. */
function spawnWorker(env: Record<string, string>): { child: ChildProcess; printed(line: string): Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/jobs/worker-child.ts'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout! });
  const seen = new Set<string>();
  const waiters: { line: string; resolve: () => void }[] = [];
  lines.on('line', (l) => {
    seen.add(l.trim());
    for (const w of waiters.filter((x) => x.line === l.trim())) w.resolve();
  });
  return {
    child,
    printed: (line) => (seen.has(line) ? Promise.resolve() : new Promise<void>((resolve, reject) => {
      waiters.push({ line, resolve });
      child.once('exit', (code) => reject(new Error(`worker child exited (${code}) before printing ${line}`)));
    })),
  };
}

describe('a worker killed with SIGKILL mid-batch', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  it('has its jobs finished by another worker, each delivered once', async () => {
    const { url, pool } = await migratedDatabase(server, 'kill');
    const web = { actor: { platform: 'web' as const, workspaceId: 'local', channelId: 'playground', userId: 'you' }, target: { platform: 'web' as const } };
    const ids = await queueRequests(pool, Array.from({ length: 4 }, (_, i) => ({ ...web, job: { prompt: `field ${i}`, seeds: [i] } })));
    const doomed = spawnWorker({ DATABASE_URL: url, HANG: '1', WORKER_ID: 'doomed' });
    let survivor: Awaited<ReturnType<typeof startGenerationWorker>> | null = null;
    try {
      await doomed.printed('sampling');
      await settledRequests(pool, ids, ['running']); // the doomed worker holds all four, mid-batch
      // The heartbeat lists the Graphile ids its jobs are locked by (written by the beat that follows a new id).
      const listed = async () => {
        const { rows: beats } = await pool.query<{ graphile_worker_ids: string[] }>(`select graphile_worker_ids from worker_heartbeats where worker_id = 'doomed'`);
        const { rows: locks } = await pool.query<{ locked_by: string }>('select distinct locked_by from graphile_worker.jobs where locked_by is not null');
        return locks.length > 0 && locks.every((l) => beats[0]?.graphile_worker_ids.includes(l.locked_by));
      };
      const until = Date.now() + 10_000;
      while (!(await listed()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.ok(await listed(), 'the heartbeat lists the ids its jobs are locked by');

      const samplers = new FakeSamplers();
      survivor = await startGenerationWorker({
        pool, runBatch: createBatchSampler({ embedder: new HashEmbedder(), samplers }).runBatch, renderer: sharpRenderer,
        recorder: new MemoryRecorder(), deliveries: {}, concurrency: 8, workerId: 'survivor',
        pollIntervalMs: 200, heartbeat: { intervalMs: 200, sweepMs: 300, staleMs: 1500 },
      });
      doomed.child.kill('SIGKILL');
      await once(doomed.child, 'exit');

      const finished = await settledRequests(pool, ids, ['delivered', 'failed'], 30_000);
      assert.deepEqual(finished.map((r) => [r.status, r.attempts]), ids.map(() => ['delivered', 2]));
      assert.equal(survivor.stats().delivered, 4);
      assert.equal(samplers.calls.flatMap((c) => c.seeds).length, 4, 'each job decoded once by the survivor');
      const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from generation_results where request_id = any($1)', [ids]);
      assert.equal(rows[0].n, 4);
      await eventually(async () => (await pool.query('select 1 from graphile_worker.jobs')).rowCount === 0, 'no job left');
    } finally {
      if (doomed.child.exitCode === null && doomed.child.signalCode === null) doomed.child.kill('SIGKILL');
      await survivor?.stop();
      await pool.end();
    }
  });
});
