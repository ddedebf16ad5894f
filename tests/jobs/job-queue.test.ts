import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { runOnce, type Task } from 'graphile-worker';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { DATABASE_UNAVAILABLE_MESSAGE, createPgPool } from '../../src/util/postgres.js';
import { GENERATE_TASK, graphileLogger, migrateJobs, type GenerationJobPayload } from '../../src/jobs/schema.js';
import { createJobQueue, type JobQueue, type JobQueueOptions, type ParentGeneration } from '../../src/jobs/job-queue.js';
import { NO_WORKER_MESSAGE } from '../../src/jobs/admission.js';
import { isUserError } from '../../src/errors.js';
import type { Actor } from '../../src/bot/core/types.js';
import type { JobReceipt, ReplyTarget } from '../../src/bot/core/jobs-types.js';

let server: TestPostgres;
before(async () => { server = await startTestPostgres(); });
after(async () => { await server?.stop(); });

const target: ReplyTarget = { platform: 'slack', channelId: 'C1' };
const actor = (userId: string, extra: Partial<Actor> = {}): Actor => ({ platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId, ...extra });
const imagine = (prompt: string, count = 1) => ({ kind: 'imagine' as const, options: { prompt, count } });

interface Db { url: string; pools: pg.Pool[]; pool(name?: string): pg.Pool; close(): Promise<void> }

async function freshDb(): Promise<Db> {
  const url = await server.createDatabase('jobq');
  const pools: pg.Pool[] = [];
  const db: Db = {
    url, pools,
    pool(name = 'ingress') {
      const p = createPgPool(url, { applicationName: name, max: 8, connectionTimeoutMs: 2000 });
      pools.push(p);
      return p;
    },
    async close() { await Promise.all(pools.map((p) => p.end().catch(() => undefined))); },
  };
  await migrateJobs(db.pool('migrate'));
  return db;
}

/** A live generation worker as its heartbeat shows it. */
async function heartbeat(pool: pg.Pool, workerId: string, imagesPerS: number | null, ageS = 0): Promise<void> {
  await pool.query(
    `insert into worker_heartbeats (worker_id, role, seen_at, images_per_s) values ($1, 'generate', now() - make_interval(secs => $3), $2)
     on conflict (worker_id) do update set seen_at = excluded.seen_at, images_per_s = excluded.images_per_s`,
    [workerId, imagesPerS, ageS]);
}

function queue(pool: pg.Pool, extra: Partial<JobQueueOptions> = {}, generations: Record<string, ParentGeneration> = {}): JobQueue {
  return createJobQueue({
    pool,
    getGeneration: async (id) => generations[id] ?? null,
    isAdmin: (a) => a.userId === 'ADMIN',
    ...extra,
  });
}

async function counts(pool: pg.Pool): Promise<{ requests: number; jobs: number }> {
  const { rows: [r] } = await pool.query(`select (select count(*)::int from generation_requests) as requests,
    (select count(*)::int from graphile_worker.jobs where task_identifier = 'generate') as jobs`);
  return r;
}

/** Runs every available job once with a task that records the payloads it sees. */
async function drain(pool: pg.Pool): Promise<GenerationJobPayload[]> {
  const seen: GenerationJobPayload[] = [];
  const generate: Task = async (payload) => { seen.push(payload as GenerationJobPayload); };
  await runOnce({ pgPool: pool, taskList: { [GENERATE_TASK]: generate }, noHandleSignals: true, logger: graphileLogger() });
  return seen;
}

async function rejectsWith(p: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isUserError(err), `expected a UserError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal((err as Error).message, message);
    else assert.match((err as Error).message, message);
    return true;
  });
}

test('a resolved imagine becomes one request row and one Graphile job carrying it; position counts the queued ones before', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const r1 = await q.submit(actor('U1'), { kind: 'imagine', options: { prompt: '  cows <@U9> on a hill ', count: 2, seed: 10 } }, target, 'slack:req-1');
    const r2 = await q.submit(actor('U2'), imagine('sheep'), target, 'slack:req-2');
    assert.equal(r1.position, 1);
    assert.equal(r2.position, 2);
    assert.equal(r1.duplicate, false);
    assert.equal(r2.predictedWaitS, 1); // 3 images at 100/s, rounded up to a whole second
    assert.equal(await q.position(r2.requestId), 2);
    const { rows: [job] } = await pool.query(`select payload, max_attempts from graphile_worker._private_jobs where key = $1`, [r1.requestId]);
    const payload = job.payload as GenerationJobPayload;
    assert.equal(job.max_attempts, 3);
    assert.deepEqual(payload, {
      requestId: r1.requestId, actor: actor('U1'), target,
      job: { prompt: 'cows on a hill', seeds: [10, 11], variationSeed: null, model: null, kind: 'imagine', parentId: null },
    });
    const { rows: [row] } = await pool.query('select status, images, user_key, request_key from generation_requests where request_id = $1', [r1.requestId]);
    assert.deepEqual(row, { status: 'queued', images: 2, user_key: 'slack:U1', request_key: 'slack:req-1' });
    assert.deepEqual(await q.stats(), { queued: 2, running: 0, imagesInQueue: 3, liveWorkers: 1, imagesPerS: 100 });
    // Validation is the core's: an empty prompt never reaches the database.
    await rejectsWith(q.submit(actor('U3'), imagine('   '), target, 'slack:req-3'), /describe the image/);
    assert.deepEqual(await counts(pool), { requests: 2, jobs: 2 });
  } finally { await db.close(); }
});

test('reroll and variations start from the parent generation; a missing parent is refused', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const parent: ParentGeneration = { prompt: 'goats', seeds: [5, 6, 7], model: 'demo-64', variationSeed: null };
    const q = queue(pool, {}, { g1: parent });
    const rr = await q.submit(actor('U1'), { kind: 'reroll', generationId: 'g1' }, target, 'k-reroll');
    const va = await q.submit(actor('U2'), { kind: 'variations', generationId: 'g1' }, target, 'k-var');
    const job = async (id: string) => ((await pool.query('select job from generation_requests where request_id = $1', [id])).rows[0].job);
    const rj = await job(rr.requestId);
    assert.equal(rj.prompt, 'goats');
    assert.equal(rj.model, 'demo-64');
    assert.equal(rj.kind, 'reroll');
    assert.equal(rj.parentId, 'g1');
    assert.equal(rj.seeds.length, 3);
    assert.equal(rj.seeds[1], rj.seeds[0] + 1);
    assert.notDeepEqual(rj.seeds, [5, 6, 7]);
    const vj = await job(va.requestId);
    assert.deepEqual(vj.seeds, [5, 6, 7]);
    assert.equal(vj.kind, 'variations');
    assert.equal(typeof vj.variationSeed, 'number');
    await rejectsWith(q.submit(actor('U3'), { kind: 'reroll', generationId: 'gone' }, target, 'k-gone'), /cannot find that generation/);
    // A model the actor may not use is refused before anything is written.
    const strict = queue(pool, { checkModel: async (_a, m) => { if (m === 'demo-64') throw new (await import('../../src/errors.js')).UserError('not published'); } }, { g1: parent });
    await rejectsWith(strict.submit(actor('U4'), { kind: 'variations', generationId: 'g1' }, target, 'k-strict'), 'not published');
    assert.deepEqual(await counts(pool), { requests: 2, jobs: 2 });
  } finally { await db.close(); }
});

test('the same request key twice (a retried Slack request, a double click) makes one job; the repeat gets the first receipt', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const first = await q.submit(actor('U1'), imagine('cows'), target, 'slack:dup');
    const again = await q.submit(actor('U1'), imagine('cows'), target, 'slack:dup');
    assert.equal(first.duplicate, false);
    assert.deepEqual(again, { ...first, duplicate: true });
    // At once from two ingress replicas: still one job.
    const q2 = queue(db.pool('ingress-2'));
    const both = await Promise.all([q.submit(actor('U2'), imagine('sheep'), target, 'slack:dup2'), q2.submit(actor('U2'), imagine('sheep'), target, 'slack:dup2')]);
    assert.equal(both[0].requestId, both[1].requestId);
    assert.deepEqual(both.map((r) => r.duplicate).sort(), [false, true]);
    assert.deepEqual(await counts(pool), { requests: 2, jobs: 2 });
    // A duplicate does not count against the user's limit either: three more fit.
    for (let i = 0; i < 3; i++) await q.submit(actor('U1'), imagine('cows'), target, `slack:more-${i}`);
  } finally { await db.close(); }
});

test('20 submits of one user at once through two ingress replicas: exactly 4 accepted (1 running + 3 waiting), the rest told why', async () => {
  const db = await freshDb();
  try {
    const a = queue(db.pool('ingress-a'));
    const b = queue(db.pool('ingress-b'));
    await heartbeat(db.pools[1], 'w1', 1000);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).submit(actor('U1'), imagine(`cows ${i}`), target, `slack:burst-${i}`)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 4);
    assert.equal(refused.length, 16);
    for (const r of refused) {
      assert.ok(isUserError(r.reason));
      assert.match((r.reason as Error).message, /limit is 1 running and 3 waiting/);
    }
    assert.deepEqual(await counts(db.pools[1]), { requests: 4, jobs: 4 });
    // Positions are 1..4 with no gap or repeat, whichever replica took them.
    const positions = ok.map((r) => (r as PromiseFulfilledResult<{ position: number }>).value.position).sort();
    assert.deepEqual(positions, [1, 2, 3, 4]);
    // Another user is not affected.
    await a.submit(actor('U2'), imagine('sheep'), target, 'slack:other');
  } finally { await db.close(); }
});

test('admission by predicted wait: accepted under the bound, refused past it, from the live workers\' measured throughput', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    // Two live workers at 1 image/s each; one stale worker (not seen for a minute) does not count.
    await heartbeat(pool, 'w1', 1);
    await heartbeat(pool, 'w2', 1);
    await heartbeat(pool, 'dead', 50, 60);
    const q = queue(pool, { maxWaitS: 10 });
    const receipts = [];
    for (let i = 0; i < 5; i++) receipts.push(await q.submit(actor(`U${i}`), imagine('cows', 4), target, `k-${i}`));
    // The 5th: 16 images ahead + its 4 = 20 images at 2/s = 10 s, just within the bound.
    assert.deepEqual(receipts.map((r) => r.predictedWaitS), [2, 4, 6, 8, 10]);
    await rejectsWith(q.submit(actor('U5'), imagine('cows', 1), target, 'k-5'), /about 11 s, longer than the 10 s/);
    assert.deepEqual(await counts(pool), { requests: 5, jobs: 5 });
    // A faster worker joins: the same request now fits.
    await heartbeat(pool, 'w3', 8);
    const r = await q.submit(actor('U5'), imagine('cows', 1), target, 'k-5');
    assert.equal(r.predictedWaitS, 3); // 21 images at 10/s
    assert.equal(r.position, 6);
  } finally { await db.close(); }
});

test('30 users at once through two ingress replicas cannot overshoot the wait bound together', async () => {
  const db = await freshDb();
  try {
    const a = queue(db.pool('ingress-a'), { maxWaitS: 10 });
    const b = queue(db.pool('ingress-b'), { maxWaitS: 10 });
    await heartbeat(db.pools[1], 'w1', 1); // room for 10 images within 10 s
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) =>
      (i % 2 ? a : b).submit(actor(`U${i}`), imagine('cows'), target, `k-${i}`)));
    const ok = results.filter((r): r is PromiseFulfilledResult<JobReceipt> => r.status === 'fulfilled');
    assert.equal(ok.length, 10);
    assert.deepEqual(ok.map((r) => r.value.predictedWaitS).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const r of results) if (r.status === 'rejected') assert.match((r.reason as Error).message, /very busy/);
  } finally { await db.close(); }
});

test('no live worker: refused with a clear message, nothing queued', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    const q = queue(pool);
    await rejectsWith(q.submit(actor('U1'), imagine('cows'), target, 'k-1'), NO_WORKER_MESSAGE);
    await heartbeat(pool, 'old', 5, 30); // last seen 30 s ago: gone
    await rejectsWith(q.submit(actor('U1'), imagine('cows'), target, 'k-1'), NO_WORKER_MESSAGE);
    assert.deepEqual(await counts(pool), { requests: 0, jobs: 0 });
    assert.equal((await q.stats()).liveWorkers, 0);
  } finally { await db.close(); }
});

test('cancel before a worker takes it: the job is gone, a worker never sees it, the others still run', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const keep = await q.submit(actor('U1'), imagine('cows'), target, 'k-keep');
    const drop = await q.submit(actor('U2'), imagine('sheep'), target, 'k-drop');
    assert.match(await q.cancel(actor('U2'), drop.requestId), /^Cancelled/);
    const { rows: [row] } = await pool.query('select status, finished_at from generation_requests where request_id = $1', [drop.requestId]);
    assert.equal(row.status, 'cancelled');
    assert.ok(row.finished_at);
    assert.equal(await q.position(drop.requestId), null);
    assert.equal(await q.position(keep.requestId), 1);
    assert.equal(await q.cancel(actor('U2'), drop.requestId), 'That request was already cancelled.');
    const seen = await drain(db.pool('worker'));
    assert.deepEqual(seen.map((p) => p.requestId), [keep.requestId]);
    // A cancelled request frees its place in the user's limit.
    assert.equal((await q.stats()).queued, 1);
  } finally { await db.close(); }
});

test('cancel by someone else is refused; an admin may cancel anyone\'s', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const r = await q.submit(actor('U1'), imagine('cows'), target, 'k-1');
    await rejectsWith(q.cancel(actor('U2'), r.requestId), /Only the person who asked/);
    // Same user id on another platform is someone else.
    await rejectsWith(q.cancel(actor('U1', { platform: 'discord' }), r.requestId), /Only the person who asked/);
    assert.equal((await pool.query('select status from generation_requests where request_id = $1', [r.requestId])).rows[0].status, 'queued');
    assert.equal((await counts(pool)).jobs, 1);
    await rejectsWith(q.cancel(actor('U1'), 'no-such-request'), /cannot find that request/);
    assert.match(await q.cancel(actor('ADMIN'), r.requestId), /^Cancelled/);
    assert.equal((await counts(pool)).jobs, 0);
  } finally { await db.close(); }
});

test('cancel once a worker has locked the job, or once it runs or is delivered, answers that it is too late and changes nothing', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const r = await q.submit(actor('U1'), imagine('cows'), target, 'k-1');
    let answer = '';
    const generate: Task = async (payload) => {
      // The worker holds the job now, though it has not marked the row running yet.
      answer = await q.cancel(actor('U1'), (payload as GenerationJobPayload).requestId);
    };
    await runOnce({ pgPool: db.pool('worker'), taskList: { [GENERATE_TASK]: generate }, noHandleSignals: true, logger: graphileLogger() });
    assert.match(answer, /Too late to cancel/);
    assert.equal((await pool.query('select status from generation_requests where request_id = $1', [r.requestId])).rows[0].status, 'queued');

    const r2 = await q.submit(actor('U2'), imagine('sheep'), target, 'k-2');
    await pool.query(`update generation_requests set status = 'running' where request_id = $1`, [r2.requestId]);
    assert.equal(await q.cancel(actor('U2'), r2.requestId), 'Too late to cancel: your images are already being drawn.');
    await pool.query(`update generation_requests set status = 'delivered' where request_id = $1`, [r2.requestId]);
    assert.equal(await q.cancel(actor('U2'), r2.requestId), 'Too late to cancel: your images were already delivered.');
    assert.equal((await pool.query('select count(*)::int as n from graphile_worker.jobs where key = $1', [r2.requestId])).rows[0].n, 1);
  } finally { await db.close(); }
});

test('database stopped: submit fails with the database message; once it is back, submit works and nothing was half-written', async () => {
  const db = await freshDb();
  try {
    const pool = db.pool();
    await heartbeat(pool, 'w1', 100);
    const q = queue(pool);
    const before = await q.submit(actor('U1'), imagine('cows'), target, 'k-before');
    await server.stopServer();
    try {
      await rejectsWith(q.submit(actor('U2'), imagine('sheep'), target, 'k-outage'), DATABASE_UNAVAILABLE_MESSAGE);
      await rejectsWith(q.cancel(actor('U1'), before.requestId), /cannot reach its database/);
      await rejectsWith(q.stats(), DATABASE_UNAVAILABLE_MESSAGE);
    } finally {
      await server.start();
    }
    await heartbeat(pool, 'w1', 100);
    assert.deepEqual(await counts(pool), { requests: 1, jobs: 1 });
    // The request that failed during the outage was not recorded: the retry with its key is a new request.
    const retry = await q.submit(actor('U2'), imagine('sheep'), target, 'k-outage');
    assert.equal(retry.duplicate, false);
    assert.equal(retry.position, 2);
    assert.deepEqual(await counts(pool), { requests: 2, jobs: 2 });
    const seen = await drain(db.pool('worker'));
    assert.deepEqual(seen.map((p) => p.requestId).sort(), [before.requestId, retry.requestId].sort());
  } finally { await db.close(); }
});
