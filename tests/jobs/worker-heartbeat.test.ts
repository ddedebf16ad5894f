/**
 * Worker heartbeats and the sweeper, on a real PostgreSQL: the throughput is an exponentially weighted mean of
 * decoded batches; a beat lists the Graphile worker ids; the sweeper frees the jobs locked by a process that
 * stopped beating (and only those, and only generate jobs); a graceful stop deletes the row.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BusyThroughput, WorkerHeartbeat, nextImagesPerS } from '../../src/jobs/heartbeat.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedDatabase, queueRequests } from './worker-helpers.js';

describe('images/s', () => {
  it('starts at the first batch\'s rate and then moves 30% of the way to each new one', () => {
    assert.equal(nextImagesPerS(null, 8, 2000), 4);
    assert.equal(nextImagesPerS(4, 16, 1000), 0.3 * 16 + 0.7 * 4);
    assert.equal(nextImagesPerS(4, 0, 1000), 4, 'an empty batch measures nothing');
    assert.equal(nextImagesPerS(null, 4, 0), null);
  });
});

describe('busy throughput', () => {
  it('counts images over the time jobs were in hand, overlapping jobs once, idle time not at all', () => {
    let t = 0;
    const b = new BusyThroughput(() => t);
    b.begin(); // 0 ms
    t = 200; b.begin(); // two in hand
    t = 1000; b.end(4);
    t = 1500; b.end(4); // busy 0..1500
    t = 10_000; // idle: not counted
    b.begin();
    t = 10_500; b.end(2); // busy 500 ms more
    assert.deepEqual(b.take(), { images: 10, ms: 2000 });
    assert.equal(b.take(), null, 'nothing since');
  });

  it('waits for enough busy time, and cuts a window while jobs are still in hand', () => {
    let t = 0;
    const b = new BusyThroughput(() => t);
    b.begin();
    t = 300;
    assert.equal(b.take(), null, 'under 500 ms: keep counting');
    t = 800; b.end(3); b.begin();
    t = 1000;
    assert.deepEqual(b.take(), { images: 3, ms: 1000 });
    t = 1600; b.end(1);
    assert.deepEqual(b.take(), { images: 1, ms: 600 }, 'the next window starts where the last was cut');
    b.begin();
    t = 1700; b.end(2);
    assert.deepEqual(b.take(), { images: 2, ms: 100 }, 'idle again: a short window counts');
  });
});

describe('worker heartbeat and sweeper', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  it('beats with its Graphile ids and throughput, and deletes its row on stop', async () => {
    const { pool } = await migratedDatabase(server, 'beat');
    const hb = new WorkerHeartbeat({ pool, workerId: 'w-1', role: 'generate', engine: 'onnx-cpu', intervalMs: 50, sweepMs: 60_000 });
    try {
      await hb.start();
      hb.addGraphileWorkerId('worker-aaa');
      hb.recordBatch(10, 1000);
      await hb.beat();
      const { rows } = await pool.query('select role, images_per_s, graphile_worker_ids, engine from worker_heartbeats where worker_id = $1', ['w-1']);
      assert.deepEqual(rows, [{ role: 'generate', images_per_s: 10, graphile_worker_ids: ['worker-aaa'], engine: 'onnx-cpu' }]);
      await hb.stop();
      assert.equal((await pool.query('select 1 from worker_heartbeats')).rowCount, 0);
    } finally {
      await hb.stop();
      await pool.end();
    }
  });

  it('frees the generate jobs locked by workers no live heartbeat lists, once it has itself beaten for a stale window', async () => {
    const { pool } = await migratedDatabase(server, 'sweep');
    const hb = new WorkerHeartbeat({ pool, workerId: 'sweeper', role: 'generate', intervalMs: 60_000, sweepMs: 60_000, staleMs: 300 });
    try {
      const [deadJob, liveJob, freshJob] = await queueRequests(pool, [{}, {}, {}]);
      await pool.query(`select graphile_worker.add_job('train', '{}'::json, job_key := 'train-1')`);
      const lock = (key: string, by: string, ago: string) => pool.query(
        `update graphile_worker._private_jobs set locked_by = $2, locked_at = now() - $3::interval where key = $1`, [key, by, ago]);
      await lock(deadJob, 'worker-dead', '1 minute');
      await lock(liveJob, 'worker-live', '1 minute');
      await lock(freshJob, 'worker-new', '0 seconds'); // just locked by a process that has not beaten yet
      await lock('train-1', 'worker-trainer', '1 hour'); // a long training job of another role
      await pool.query(`insert into worker_heartbeats (worker_id, role, seen_at, graphile_worker_ids) values
        ('gone', 'generate', now() - interval '1 minute', '{worker-dead}'),
        ('alive', 'generate', now(), '{worker-live}')`);
      await hb.start();
      assert.deepEqual(await hb.sweep(), [], 'no sweep before this process has beaten for a stale window');
      await new Promise((r) => setTimeout(r, 350)); // the stale window (300 ms) of healthy beats
      await pool.query(`update worker_heartbeats set seen_at = now() where worker_id = 'alive'`);
      await lock(freshJob, 'worker-new', '0 seconds');
      await hb.beat();
      assert.deepEqual(await hb.sweep(), ['worker-dead']);
      const { rows } = await pool.query<{ key: string; locked_by: string | null }>('select key, locked_by from graphile_worker.jobs order by id');
      const lockedBy = Object.fromEntries(rows.map((r) => [r.key, r.locked_by]));
      assert.deepEqual(lockedBy, { [deadJob]: null, [liveJob]: 'worker-live', [freshJob]: 'worker-new', 'train-1': 'worker-trainer' });
    } finally {
      await hb.stop();
      await pool.end();
    }
  });

  it('keeps beating after a database restart', async () => {
    const { pool } = await migratedDatabase(server, 'restart');
    const hb = new WorkerHeartbeat({ pool, workerId: 'w-restart', role: 'generate', intervalMs: 50, sweepMs: 100, staleMs: 200 });
    try {
      await hb.start();
      await server.restart();
      const t0 = Date.now();
      for (;;) {
        const r = await pool.query(`select seen_at > now() - interval '1 second' as fresh from worker_heartbeats where worker_id = 'w-restart'`).catch(() => null);
        if (r?.rows[0]?.fresh) break;
        if (Date.now() - t0 > 20_000) throw new Error('no heartbeat after the restart');
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      await hb.stop();
      await pool.end();
    }
  });
});
