/**
 * The worker process itself (`node --import tsx src/worker.ts`, what `npm run worker` runs): a clear message
 * without DATABASE_URL (with or without `--train`); with a database, the tiny CLIP and a tiny checkpoint it answers a
 * Slack job through the (fake) Slack Web API once and a web job through the database, records the generations
 * in DATA_DIR's store, and exits 0 on SIGTERM after leaving the heartbeat table.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openBotStore } from '../../src/bot/core/store/index.js';
import { generationIdFor } from '../../src/jobs/worker-requests.js';
import { readJobOutcome } from '../../src/jobs/worker-web-delivery.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { TINY_CLIP_DIR, addTinyModel, tempDataDir } from '../app/helpers.js';
import { migratedDatabase, queueRequests, settledRequests } from './worker-helpers.js';

/** Runs src/worker.ts (or another entry) with `env` (on top of a PATH-only environment) and `args`. */
function runWorker(env: Record<string, string>, args: string[] = [], entry = 'src/worker.ts') {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += String(d); });
  child.stdout!.resume();
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited, stderr: () => stderr };
}

describe('worker process', () => {
  let server: TestPostgres;
  let fake: FakeSlack;
  let dataDir: string;
  before(async () => {
    server = await startTestPostgres();
    fake = await startFakeSlack({ sharesVisibleAfter: 1 });
    dataDir = tempDataDir('worker-process-');
    await addTinyModel(dataDir, 'tiny-worker');
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('says DATABASE_URL is needed when it is not set', async () => {
    const w = runWorker({ DATA_DIR: dataDir });
    const [code] = await w.exited;
    assert.equal(code, 1);
    assert.match(w.stderr(), /DATABASE_URL is not set/);
    assert.doesNotMatch(w.stderr(), /\n\s+at /, 'no stack trace');
  });

  it('runs as `cvae worker` too, with the same message without DATABASE_URL', async () => {
    const w = runWorker({ DATA_DIR: dataDir }, ['worker'], 'src/cli/main.ts');
    const [code] = await w.exited;
    assert.equal(code, 1);
    assert.match(w.stderr(), /^error: DATABASE_URL is not set/m);
  });

  it('says DATABASE_URL is needed for --train too (training workers take their jobs from it)', async () => {
    const w = runWorker({ DATA_DIR: dataDir }, ['--train']);
    const [code] = await w.exited;
    assert.equal(code, 1);
    assert.match(w.stderr(), /DATABASE_URL is not set/);
  });

  it('answers Slack and web jobs, records them, and stops gracefully on SIGTERM', async () => {
    const { url, pool } = await migratedDatabase(server, 'process');
    const w = runWorker({
      DATABASE_URL: url, DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP_DIR, WORKER_CONCURRENCY: '4',
      SLACK_BOT_TOKEN: fake.token, SLACK_SIGNING_SECRET: 'test-secret', SLACK_API_URL: fake.apiUrl,
    });
    try {
      const [slackId, webId] = await queueRequests(pool, [
        { job: { prompt: 'cows in snow', seeds: [1, 2] } },
        { actor: { platform: 'web', workspaceId: 'local', channelId: 'playground', userId: 'you' }, target: { platform: 'web' }, job: { prompt: 'a red barn', seeds: [5] } },
      ]);
      await settledRequests(pool, [slackId, webId], ['delivered', 'failed'], 90_000);
      const { rows } = await pool.query('select request_id, status, error from generation_requests order by seq');
      assert.deepEqual(rows.map((r) => r.status), ['delivered', 'delivered'], JSON.stringify(rows));

      const uploads = [...fake.files.values()];
      assert.equal(uploads.length, 1, 'one upload to Slack');
      assert.equal(uploads[0].channel, 'C1');
      assert.ok(uploads[0].bytes?.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])));
      assert.match(uploads[0].initialComment ?? '', /cows in snow/);

      const web = await readJobOutcome(pool, webId);
      assert.ok(web?.status === 'delivered' && web.reply);
      assert.equal(web.reply.model, 'tiny-worker');

      const beat = await pool.query<{ worker_id: string; images_per_s: number | null }>('select worker_id, images_per_s from worker_heartbeats');
      assert.equal(beat.rowCount, 1);

      w.child.kill('SIGTERM');
      const [code] = await w.exited;
      assert.equal(code, 0, w.stderr());
      assert.equal((await pool.query('select 1 from worker_heartbeats')).rowCount, 0, 'the stopped worker left the heartbeat table');

      // Recorded in the shared store (the same PostgreSQL), where every ingress finds reactions' generations.
      const store = await openBotStore({ databaseUrl: url, pool });
      try {
        const slackGen = await store.generations.get(generationIdFor(slackId));
        assert.equal(slackGen?.prompt, 'cows in snow');
        assert.equal(slackGen?.messageRef, `C1:${uploads[0].shareTs}`, 'the share message is attached (reactions count)');
        assert.equal((await store.generations.get(generationIdFor(webId)))?.prompt, 'a red barn');
      } finally {
        await store.close();
      }
    } finally {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await pool.end();
    }
  });
});
