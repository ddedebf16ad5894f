import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { createPgPool } from '../../src/util/postgres.js';
import { JOBS_SCHEMA_VERSION, migrateJobs } from '../../src/jobs/schema.js';

let server: TestPostgres;
before(async () => { server = await startTestPostgres(); });
after(async () => { await server?.stop(); });

test('three processes starting together migrate once: Graphile Worker schema and our tables, each version recorded once', async () => {
  const url = await server.createDatabase('schema');
  const pools = [1, 2, 3].map((i) => createPgPool(url, { applicationName: `starter-${i}`, max: 3 }));
  try {
    const versions = await Promise.all(pools.map((p) => migrateJobs(p)));
    assert.deepEqual(versions, [JOBS_SCHEMA_VERSION, JOBS_SCHEMA_VERSION, JOBS_SCHEMA_VERSION]);
    const p = pools[0];
    const { rows: applied } = await p.query('select version from jobs_schema_migrations order by version');
    assert.deepEqual(applied.map((r) => r.version), Array.from({ length: JOBS_SCHEMA_VERSION }, (_, i) => i + 1));
    const { rows: tables } = await p.query(`select table_name from information_schema.tables
      where table_schema = 'public' and table_name in ('generation_requests', 'worker_heartbeats', 'generation_results') order by 1`);
    assert.deepEqual(tables.map((r) => r.table_name), ['generation_requests', 'generation_results', 'worker_heartbeats']);
    // Graphile Worker's own schema works: a job can be added in SQL.
    const { rows: [job] } = await p.query(`select * from graphile_worker.add_job('generate', '{"x":1}'::json, job_key := 'k1', max_attempts := 3)`);
    assert.equal(job.key, 'k1');
    assert.equal(job.max_attempts, 3);

    // A later start finds everything in place and changes nothing.
    assert.equal(await migrateJobs(p), JOBS_SCHEMA_VERSION);
    assert.equal((await p.query('select count(*)::int as n from jobs_schema_migrations')).rows[0].n, JOBS_SCHEMA_VERSION);
    assert.equal((await p.query('select count(*)::int as n from graphile_worker.jobs')).rows[0].n, 1);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});
