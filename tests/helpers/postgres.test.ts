import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from './postgres.js';

let server: TestPostgres;
before(async () => { server = await startTestPostgres(); });
after(async () => { await server?.stop(); });

test('the test PostgreSQL keeps committed rows across a restart', async () => {
  const url = await server.createDatabase('harness');
  const c1 = new pg.Client({ connectionString: url });
  await c1.connect();
  await c1.query('CREATE TABLE t (v int)');
  await c1.query('INSERT INTO t VALUES (42)');
  c1.on('error', () => undefined); // the restart ends this connection
  await server.restart();
  const c2 = new pg.Client({ connectionString: url });
  await c2.connect();
  assert.deepEqual((await c2.query('SELECT v FROM t')).rows, [{ v: 42 }]);
  await c2.end();
  await c1.end().catch(() => undefined);
});
