/**
 * Retention in scaled mode: `cvae prune` (and the bot's prune schedule) removes finished job requests older
 * than the generation retention, with the PNGs workers kept for them; waiting and running requests and recent
 * ones stay, and a dry run only counts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPgPool } from '../../src/util/postgres.js';
import { migrateJobs } from '../../src/jobs/schema.js';
import { openBotStore } from '../../src/bot/core/store/index.js';
import { pruneDataDir } from '../../src/bot/retention.js';
import { pruneFinishedRequests } from '../../src/jobs/worker-requests.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

describe('pruning finished job requests', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  it('removes old finished requests and their kept images, keeps active and recent ones', async () => {
    const url = await server.createDatabase('prune');
    const pool = createPgPool(url, { applicationName: 'test', max: 4 });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-jobs-'));
    try {
      await migrateJobs(pool);
      const add = (id: string, status: string, daysAgo: number) => pool.query(
        `insert into generation_requests (request_id, request_key, user_key, platform, actor, target, job, images, status, position, predicted_wait_s, created_at, finished_at)
         values ($1, $1, 'slack:U1', 'slack', '{}', '{}', '{}', 1, $2, 1, 1, now() - make_interval(days => $3), case when $2 in ('queued','running') then null else now() - make_interval(days => $3) end)`,
        [id, status, daysAgo]);
      await add('old-delivered', 'delivered', 200);
      await add('old-failed', 'failed', 200);
      await add('old-queued', 'queued', 200);
      await add('new-delivered', 'delivered', 1);
      await pool.query(`insert into generation_results (request_id, reply, images) values ('old-delivered', '{}', array[decode('89504e47', 'hex')])`);
      const cutoff = new Date(Date.now() - 90 * 86_400_000).toISOString();
      assert.equal(await pruneFinishedRequests(pool, cutoff, { dryRun: true }), 2);
      assert.equal((await pool.query('select 1 from generation_requests')).rowCount, 4, 'a dry run removes nothing');

      const store = await openBotStore({ databaseUrl: url, pool });
      const report = await pruneDataDir(dataDir, { keepRuns: 5, generationDays: 90 }, { store });
      assert.equal(report.requestsRemoved, 2);
      const left = (await pool.query<{ request_id: string }>('select request_id from generation_requests order by request_id')).rows.map((r) => r.request_id);
      assert.deepEqual(left, ['new-delivered', 'old-queued']);
      assert.equal((await pool.query('select 1 from generation_results')).rowCount, 0, 'the kept images went with their request');
      await store.close();
    } finally {
      await pool.end();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
