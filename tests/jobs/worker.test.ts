/**
 * The generation worker against a real PostgreSQL: jobs added with graphile_worker.add_job (as the ingress adds
 * them) are decoded, recorded once and delivered; jobs held together are decoded in one sampler call; a failed
 * attempt is retried and delivered once; the last attempt apologises; finished requests are not redone; a web
 * target's reply is stored for the ingress and announced on cvae_job_done.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createBatchSampler } from '../../src/bot/core/batch-sampler.js';
import { UserError } from '../../src/errors.js';
import { startGenerationWorker, type GenerationWorker, type GenerationWorkerDeps } from '../../src/jobs/generation-worker.js';
import { JOB_DONE_CHANNEL } from '../../src/jobs/schema.js';
import { generationIdFor } from '../../src/jobs/worker-requests.js';
import { readJobOutcome } from '../../src/jobs/worker-web-delivery.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { FakeSamplers, HashEmbedder, deferred, sharpRenderer } from '../bot/core/helpers.js';
import {
  MemoryRecorder, RecordingDelivery, eventually, migratedDatabase, queueRequest, queueRequests, requestRow, settledRequests, slackActor,
} from './worker-helpers.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

describe('generation worker', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  /** A worker over a fresh database with fake CLIP and sampler, recording deliveries and records. */
  async function setup(opts: Partial<GenerationWorkerDeps> = {}) {
    const { url, pool } = await migratedDatabase(server);
    const samplers = new FakeSamplers();
    const embedder = new HashEmbedder();
    const delivery = new RecordingDelivery();
    const recorder = new MemoryRecorder();
    let worker: GenerationWorker | null = null;
    const start = async () => {
      worker = await startGenerationWorker({
        pool, runBatch: createBatchSampler({ embedder, samplers }).runBatch, renderer: sharpRenderer, recorder,
        deliveries: { slack: delivery }, concurrency: 8, pollIntervalMs: 200, heartbeat: { intervalMs: 200, sweepMs: 300, staleMs: 1500 },
        ...opts,
      });
      return worker;
    };
    const close = async () => {
      await worker?.stop();
      await pool.end();
    };
    return { url, pool, samplers, embedder, delivery, recorder, start, close };
  }

  it('decodes, records once and delivers jobs added with add_job, and beats with its throughput', async () => {
    const t = await setup();
    try {
      const ids = await queueRequests(t.pool, [{ job: { seeds: [1, 2] } }, {}, { job: { kind: 'reroll', parentId: 'parent-1' } }]);
      const worker = await t.start();
      await settledRequests(t.pool, ids);
      for (const id of ids) assert.equal((await requestRow(t.pool, id)).status, 'delivered');
      assert.equal(t.delivery.delivered.length, 3);
      assert.equal(t.recorder.inserts, 3);
      for (const [i, id] of ids.entries()) {
        const genId = generationIdFor(id);
        const record = t.recorder.records.get(genId);
        assert.ok(record, `generation of request ${i} recorded under the id derived from the request`);
        assert.equal(record.prompt, `cows ${i}`);
        assert.equal(record.userId, `U${i}`);
        assert.equal((await requestRow(t.pool, id)).generation_id, genId);
        const sent = t.delivery.delivered.find((d) => d.reply.generationId === genId);
        assert.ok(sent);
        assert.deepEqual(sent.target, { platform: 'slack', channelId: 'C1' });
        assert.ok(sent.reply.grid.subarray(0, 4).equals(PNG_MAGIC));
        assert.equal(sent.reply.images.length, record.seeds.length);
        assert.match(sent.reply.text, new RegExp(`cows ${i}`));
      }
      assert.deepEqual(t.recorder.records.get(generationIdFor(ids[2]))?.parentId, 'parent-1');
      assert.equal(t.recorder.attached.length, 6, 'every delivered message is attached to its generation');
      assert.equal(worker.stats().delivered, 3);
      const beat = await eventually(async () => {
        const { rows } = await t.pool.query('select role, images_per_s, graphile_worker_ids from worker_heartbeats where worker_id = $1', [worker.workerId]);
        return rows[0]?.images_per_s > 0 ? rows[0] : null;
      }, 'a heartbeat with the measured throughput');
      assert.equal(beat.role, 'generate');
      assert.ok(beat.graphile_worker_ids.length >= 1);
      assert.ok((worker.stats().imagesPerS ?? 0) > 0, 'images per second of busy time, measured at the beat');
      await worker.stop();
      const { rowCount } = await t.pool.query('select 1 from worker_heartbeats where worker_id = $1', [worker.workerId]);
      assert.equal(rowCount, 0, 'a graceful stop removes the heartbeat row');
    } finally {
      await t.close();
    }
  });

  it('decodes jobs held at the same time in fewer sampler calls than jobs (micro-batching)', async () => {
    const t = await setup();
    try {
      const gate = deferred();
      t.samplers.gate = gate.promise; // the first batch waits while the other jobs arrive
      const ids = await queueRequests(t.pool, Array.from({ length: 8 }, () => ({})));
      await t.start();
      await settledRequests(t.pool, ids, ['running']);
      gate.resolve();
      await settledRequests(t.pool, ids);
      assert.equal(t.delivery.delivered.length, 8);
      assert.ok(t.samplers.calls.length < 8, `8 jobs in ${t.samplers.calls.length} sampler calls`);
      assert.ok(t.samplers.calls.length <= 2, `8 jobs in ${t.samplers.calls.length} sampler calls`);
      assert.equal(t.samplers.calls.flatMap((c) => c.seeds).length, 8);
    } finally {
      await t.close();
    }
  });

  it('retries an attempt that threw and delivers it once, recording the generation once', async () => {
    const t = await setup();
    try {
      t.delivery.failures.push(new Error('platform answered 502'));
      const id = await queueRequest(t.pool);
      const worker = await t.start();
      await settledRequests(t.pool, [id]);
      const row = await requestRow(t.pool, id);
      assert.equal(row.status, 'delivered');
      assert.equal(row.attempts, 2);
      assert.equal(t.delivery.delivered.length, 1);
      assert.equal(t.delivery.apologies.length, 0);
      assert.equal(t.recorder.inserts, 1, 'the retry found the generation recorded');
      assert.equal(worker.stats().retried, 1);
    } finally {
      await t.close();
    }
  });

  it('delivers when an earlier attempt recorded the generation but died before linking it', async () => {
    const t = await setup();
    try {
      const id = await queueRequest(t.pool);
      t.recorder.records.set(generationIdFor(id), { id: generationIdFor(id) } as never);
      await t.start();
      await settledRequests(t.pool, [id]);
      assert.equal((await requestRow(t.pool, id)).status, 'delivered');
      assert.equal(t.delivery.delivered.length, 1);
      assert.equal(t.delivery.delivered[0].reply.generationId, generationIdFor(id));
    } finally {
      await t.close();
    }
  });

  it('apologises instead of a third attempt and fails the request', async () => {
    const t = await setup();
    try {
      const id = await queueRequest(t.pool, { job: { prompt: 'sheep on a hill' } });
      // Two attempts died before (a worker killed twice): the next lock is the third attempt.
      await t.pool.query('update graphile_worker._private_jobs set attempts = 2 where key = $1', [id]);
      await t.start();
      await settledRequests(t.pool, [id]);
      const row = await requestRow(t.pool, id);
      assert.equal(row.status, 'failed');
      assert.equal(t.delivery.delivered.length, 0);
      assert.equal(t.samplers.calls.length, 0, 'nothing decoded');
      assert.equal(t.delivery.apologies.length, 1);
      assert.match(t.delivery.apologies[0].text, /sheep on a hill/);
      assert.match(t.delivery.apologies[0].text, /try again/);
      assert.equal(row.error, t.delivery.apologies[0].text);
      await eventually(async () => (await t.pool.query('select 1 from graphile_worker.jobs where key = $1', [id])).rowCount === 0, 'the job to be done, not retried');
      assert.equal(t.delivery.apologies.length, 1);
    } finally {
      await t.close();
    }
  });

  it('tells the user at once, without retrying, when the platform or the model refuses with a UserError', async () => {
    const t = await setup();
    try {
      t.delivery.failures.push(new UserError('I am not a member of this channel. Invite me with `/invite @<bot name>` and try again.'));
      const id = await queueRequest(t.pool);
      await t.start();
      await settledRequests(t.pool, [id]);
      const row = await requestRow(t.pool, id);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, 1);
      assert.equal(t.delivery.apologies.length, 1);
      assert.match(t.delivery.apologies[0].text, /Invite me/);
    } finally {
      await t.close();
    }
  });

  it('does nothing for a request already delivered or cancelled (at-least-once delivery)', async () => {
    const t = await setup();
    try {
      const [done, cancelled] = await queueRequests(t.pool, [{}, {}]);
      await t.pool.query(`update generation_requests set status = 'delivered' where request_id = $1`, [done]);
      await t.pool.query(`update generation_requests set status = 'cancelled' where request_id = $1`, [cancelled]);
      const worker = await t.start();
      await eventually(async () => (await t.pool.query('select 1 from graphile_worker.jobs')).rowCount === 0, 'both jobs to complete');
      assert.equal(t.delivery.delivered.length, 0);
      assert.equal(t.samplers.calls.length, 0);
      assert.equal(worker.stats().skipped, 2);
      assert.equal((await requestRow(t.pool, cancelled)).status, 'cancelled');
    } finally {
      await t.close();
    }
  });

  it('stores a web target\'s reply for the ingress and announces it on cvae_job_done', async () => {
    const t = await setup();
    const listener = new pg.Client({ connectionString: t.url });
    try {
      await listener.connect();
      await listener.query(`listen ${JOB_DONE_CHANNEL}`);
      const done = new Promise<string>((resolve) => listener.on('notification', (m) => resolve(m.payload ?? '')));
      const actor = { platform: 'web' as const, workspaceId: 'local', channelId: 'playground', userId: 'you' };
      const id = await queueRequest(t.pool, { actor, target: { platform: 'web' }, job: { prompt: 'a red barn', seeds: [3, 4] } });
      assert.equal(await readJobOutcome(t.pool, id).then((o) => o?.status), 'queued');
      await t.start();
      assert.equal(await done, id);
      const outcome = await readJobOutcome(t.pool, id);
      assert.equal(outcome?.status, 'delivered');
      assert.ok(outcome.status === 'delivered' && outcome.reply);
      assert.equal(outcome.reply.generationId, generationIdFor(id));
      assert.deepEqual(outcome.reply.seeds, [3, 4]);
      assert.match(outcome.reply.text, /a red barn/);
      assert.ok(outcome.reply.grid.subarray(0, 4).equals(PNG_MAGIC));
      assert.equal(outcome.reply.images.length, 2);
      assert.ok(outcome.reply.images[1].subarray(0, 4).equals(PNG_MAGIC));
      assert.equal(await readJobOutcome(t.pool, 'no-such-request'), null);
    } finally {
      await listener.end();
      await t.close();
    }
  });

  it('fails a request for a platform this worker cannot deliver to, and says why', async () => {
    const t = await setup();
    try {
      const actor = { ...slackActor('U1'), platform: 'discord' as const };
      const id = await queueRequest(t.pool, { actor, target: { platform: 'discord', applicationId: '1', interactionToken: 't', channelId: 'c', receivedAt: Date.now() } });
      await t.start();
      await settledRequests(t.pool, [id]);
      const row = await requestRow(t.pool, id);
      assert.equal(row.status, 'failed');
      assert.match(row.error ?? '', /discord/);
    } finally {
      await t.close();
    }
  });

  it('rides out a database restart: the job in flight and one queued after it are each delivered once', async () => {
    const t = await setup();
    try {
      const gate = deferred();
      t.samplers.gate = gate.promise;
      const worker = await t.start();
      const inFlight = await queueRequest(t.pool);
      await settledRequests(t.pool, [inFlight], ['running']);
      await server.stopServer();
      gate.resolve(); // decoded while the database is down: recording it must wait
      await t.samplers.waitForCalls(1);
      await server.start();
      const after = await queueRequest(t.pool);
      const rows = await settledRequests(t.pool, [inFlight, after], ['delivered', 'failed'], 60_000);
      assert.deepEqual(rows.map((r) => r.status), ['delivered', 'delivered']);
      assert.equal(t.delivery.delivered.length, 2);
      assert.equal(worker.stats().delivered, 2);
      await eventually(async () => (await t.pool.query('select 1 from graphile_worker.jobs')).rowCount === 0, 'both jobs to complete');
    } finally {
      await t.close();
    }
  });

  it('stops gracefully: takes no new job and finishes the running batch', async () => {
    const t = await setup();
    try {
      const gate = deferred();
      t.samplers.gate = gate.promise;
      const worker = await t.start();
      const held = await queueRequests(t.pool, [{}, {}]);
      await settledRequests(t.pool, held, ['running']);
      await t.samplers.waitForCalls(1);
      const stopped = worker.stop();
      const late = await queueRequest(t.pool);
      gate.resolve();
      await stopped;
      const rows = await settledRequests(t.pool, held, ['delivered'], 1);
      assert.equal(rows.length, 2, 'the held jobs were delivered before stop() resolved');
      // A job queued while the stop is under way is left for another worker, or, when a Graphile worker had
      // already asked for work as it arrived, finished before stop() resolves: never left half-done.
      const lateStatus = (await requestRow(t.pool, late)).status;
      assert.ok(lateStatus === 'queued' || lateStatus === 'delivered', `the late job is ${lateStatus}`);
      assert.equal(t.delivery.delivered.length, lateStatus === 'queued' ? 2 : 3);
    } finally {
      await t.close();
    }
  });
});
