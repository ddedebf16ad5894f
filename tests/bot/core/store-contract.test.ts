/**
 * The store contract, run against both stores: SQLite (the default) and a real PostgreSQL (scaled mode, started
 * by the test on a free loopback port). Then what only PostgreSQL has: migrations under an advisory lock (fresh,
 * re-run, several processes at once, the same schema as SQLite) and a database restart in the middle.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from '../../helpers/postgres.js';
import {
  MIGRATIONS, PG_MIGRATIONS, migratePostgres, openBotStore, openPostgresStore, openSqliteStore, schemaVersion,
  type BotStore, type GenerationRecord,
} from '../../../src/bot/core/store/index.js';
import { createPgPool, DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from '../../../src/util/postgres.js';
import type { TrainingProgress } from '../../../src/bot/core/training-progress.js';
import { createBotCore } from '../../../src/bot/core/core.js';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import { UserError } from '../../../src/bot/core/errors.js';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { FakeCatalog, FakeSamplers, HashEmbedder, sharpRenderer } from './helpers.js';
import { runFeedbackExport, runFeedbackStats } from '../../../src/cli/commands/feedback.js';
import { runPrune } from '../../../src/cli/commands/prune.js';
import { AppMetrics } from '../../../src/http/metrics.js';

let server: TestPostgres;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'store-contract-'));

before(async () => { server = await startTestPostgres(); });
after(async () => {
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Open = (opts?: { owner?: string }) => Promise<BotStore>;
const backends: { name: string; open: Open }[] = [
  { name: 'sqlite', open: async (opts) => openSqliteStore(path.join(fs.mkdtempSync(path.join(tmp, 'db-')), 'bot.sqlite'), opts) },
  { name: 'postgres', open: async (opts) => openPostgresStore(await server.createDatabase('store'), opts) },
];

const DAY = 86_400_000;

function generation(id: string, over: Partial<GenerationRecord> = {}): GenerationRecord {
  return {
    id, platform: 'discord', workspaceId: 'w1', channelId: 'c1', userId: 'alice', kind: 'imagine', parentId: null,
    prompt: `a cow ${id}`, seeds: [2147483640, 2147483641], variationSeed: null, model: 'm1', clipModel: 'clip-a',
    latencyMs: 120, messageRef: null, createdAt: new Date().toISOString(), ...over,
  };
}

const progress: TrainingProgress = {
  state: 'training', runId: 'r1', preset: 'tiny', epochs: 3, fraction: 0.25, epoch: 1, step: 5, totalSteps: 20,
  losses: { total: 812.5, bce: 800.25, kl: 12.125, ssim: 0.5 }, imagesPerSec: 42.5, etaSec: null,
};

async function withStore(open: Open, fn: (s: BotStore) => Promise<void>, opts?: { owner?: string }): Promise<void> {
  const s = await open(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

for (const { name, open } of backends) {
  describe(`store contract: ${name}`, () => {
    it('inserts a generation once: a retry with the same id changes nothing', () => withStore(open, async (s) => {
      const g = generation('g1', { variationSeed: 2147483000, parentId: null, kind: 'imagine' });
      assert.equal(await s.generations.insert(g), true);
      assert.equal(await s.generations.insert({ ...g, prompt: 'something else' }), false, 'the retry reports it inserted nothing');
      assert.deepEqual(await s.generations.get('g1'), g, 'the first insert stands, every field as given');
      assert.equal((await s.generations.list()).length, 1);
      assert.equal(await s.generations.get('nope'), null);
      // Concurrent retries of one id: exactly one inserts.
      const results = await Promise.all(Array.from({ length: 5 }, () => s.generations.insert(generation('g2'))));
      assert.equal(results.filter(Boolean).length, 1);
    }));

    it('links messages to a generation (grid and single images) and finds the generation by message', () => withStore(open, async (s) => {
      await s.generations.insert(generation('g1', { platform: 'slack' }));
      assert.equal(await s.generations.attachMessage('unknown', 'm0'), false);
      assert.equal(await s.generations.byMessage('slack', 'm0'), null);
      assert.equal(await s.generations.attachMessage('g1', 'C1:100.1'), true);
      assert.equal(await s.generations.attachMessage('g1', 'C1:100.2', 1), true);
      assert.equal((await s.generations.get('g1'))!.messageRef, 'C1:100.1', 'the grid message is the generation\'s message');
      const grid = await s.generations.byMessage('slack', 'C1:100.1');
      assert.equal(grid?.generation.id, 'g1');
      assert.equal(grid?.imageIndex, null);
      assert.equal((await s.generations.byMessage('slack', 'C1:100.2'))?.imageIndex, 1);
      assert.equal(await s.generations.byMessage('discord', 'C1:100.1'), null, 'the platform is part of the reference');
      // The same message attached again (a retried delivery) replaces the link instead of failing.
      assert.equal(await s.generations.attachMessage('g1', 'C1:100.2', 3), true);
      assert.equal((await s.generations.byMessage('slack', 'C1:100.2'))?.imageIndex, 3);
    }));

    it('lists generations by time and counts them after a cursor (for /metrics)', () => withStore(open, async (s) => {
      assert.equal(await s.generations.lastPosition(), 0);
      await s.generations.insert(generation('old', { createdAt: '2026-01-01T00:00:00.000Z' }));
      const cursor = await s.generations.lastPosition();
      assert.ok(cursor > 0);
      await s.generations.insert(generation('b', { createdAt: '2026-03-01T00:00:00.000Z', platform: 'slack', latencyMs: 250 }));
      await s.generations.insert(generation('a', { createdAt: '2026-03-01T00:00:00.000Z', kind: 'reroll', parentId: 'old' }));
      assert.deepEqual((await s.generations.list()).map((g) => g.id), ['old', 'a', 'b'], 'by time, then id');
      assert.deepEqual((await s.generations.list('2026-02-01T00:00:00.000Z')).map((g) => g.id), ['a', 'b']);
      assert.deepEqual((await s.generations.after(cursor)).map((g) => [g.platform, g.kind, g.model, g.latencyMs]),
        [['slack', 'imagine', 'm1', 250], ['discord', 'reroll', 'm1', 120]], 'in insertion order');
      assert.equal((await s.generations.after(cursor, 1)).length, 1, 'the limit holds');
      assert.equal((await s.generations.after(await s.generations.lastPosition())).length, 0);
    }));

    it('records reactions: the same one twice counts once, a removal once, per image', () => withStore(open, async (s) => {
      await s.generations.insert(generation('g1'));
      await s.generations.insert(generation('g2', { model: 'm2' }));
      const r = (over: { userId?: string; reaction?: string; added?: boolean; imageIndex?: number | null; generationId?: string }) =>
        s.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'bob', reaction: '👍', added: true, ...over });
      assert.equal(await s.feedback.lastId(), 0);
      assert.equal(await r({}), true);
      const cursor = await s.feedback.lastId();
      assert.equal(await r({}), false, 'the same reaction again');
      assert.equal(await r({ imageIndex: 0 }), true, 'on one image it is another reaction');
      assert.equal(await r({ imageIndex: 0 }), false);
      assert.equal(await r({ added: false }), true);
      assert.equal(await r({ added: false }), false, 'removing one that is not there');
      assert.equal(await r({ userId: 'carol', reaction: '⭐' }), true);
      assert.equal(await r({ userId: 'dave', reaction: '👎', generationId: 'g2' }), true);
      assert.deepEqual((await s.feedback.list()).map((f) => [f.userId, f.reaction, f.kind, f.added, f.imageIndex]), [
        ['bob', '👍', 'up', true, null], ['bob', '👍', 'up', true, 0], ['bob', '👍', 'up', false, null],
        ['carol', '⭐', 'favourite', true, null], ['dave', '👎', 'down', true, null],
      ]);
      assert.deepEqual((await s.feedback.after(cursor)).map((f) => [f.kind, f.added]), [['up', true], ['up', false], ['favourite', true], ['down', true]]);
      assert.deepEqual(await s.feedback.stats(), [
        { model: 'm1', generations: 1, up: 1, down: 0, favourite: 1, upRatio: 1 },
        { model: 'm2', generations: 1, up: 0, down: 1, favourite: 0, upRatio: 0 },
      ]);
      assert.deepEqual(await s.feedback.stats('2999-01-01'), []);
      assert.equal((await s.feedback.list('2999-01-01')).length, 0);
      // The same reaction arriving several times at once (a platform retry to two replicas): recorded once.
      const burst = await Promise.all(Array.from({ length: 6 }, () => r({ userId: 'erin' })));
      assert.equal(burst.filter(Boolean).length, 1);
    }));

    it('prunes old generations with their reactions and message links', () => withStore(open, async (s) => {
      const now = Date.now();
      await s.generations.insert(generation('old', { createdAt: new Date(now - 100 * DAY).toISOString() }));
      await s.generations.insert(generation('new', { createdAt: new Date(now - 2 * DAY).toISOString() }));
      await s.generations.attachMessage('old', 'm-old');
      await s.feedback.record({ generationId: 'old', platform: 'discord', userId: 'u', reaction: '👍', added: true });
      await s.feedback.record({ generationId: 'new', platform: 'discord', userId: 'u', reaction: '👍', added: true });
      const cutoff = new Date(now - 30 * DAY).toISOString();
      assert.deepEqual(await s.generations.removeBefore(cutoff, { dryRun: true }), { generations: 1, feedback: 1 });
      assert.ok(await s.generations.get('old'), 'a dry run removes nothing');
      assert.deepEqual(await s.generations.removeBefore(cutoff), { generations: 1, feedback: 1 });
      assert.equal(await s.generations.get('old'), null);
      assert.equal(await s.generations.byMessage('discord', 'm-old'), null);
      assert.deepEqual((await s.feedback.list()).map((f) => f.generationId), ['new']);
    }));

    it('prunes an old generation only when no kept one was made from it (at any depth)', () => withStore(open, async (s) => {
      const now = Date.now();
      const at = (days: number) => new Date(now - days * DAY).toISOString();
      await s.generations.insert(generation('root', { createdAt: at(100) }));
      await s.generations.insert(generation('child', { createdAt: at(90), kind: 'reroll', parentId: 'root' }));
      await s.generations.insert(generation('kept', { createdAt: at(1), kind: 'variations', parentId: 'child' }));
      await s.generations.insert(generation('lone', { createdAt: at(100) }));
      await s.generations.insert(generation('lone-child', { createdAt: at(95), kind: 'reroll', parentId: 'lone' }));
      const cutoff = at(30);
      assert.deepEqual(await s.generations.removeBefore(cutoff, { dryRun: true }), { generations: 2, feedback: 0 });
      assert.deepEqual(await s.generations.removeBefore(cutoff), { generations: 2, feedback: 0 });
      assert.deepEqual((await s.generations.list()).map((g) => g.id), ['root', 'child', 'kept']);
    }));

    it('records runs: start, progress, finish, counts', () => withStore(open, async (s) => {
      const start = (id: string, startedAt: string) => s.runs.start({ id, preset: 'tiny', epochs: 3, dataset: null, platform: 'web', channelId: 'c', userId: 'u', startedAt });
      await start('r1', '2026-01-01T00:00:00.000Z');
      await start('r2', '2026-01-02T00:00:00.000Z');
      const r1 = (await s.runs.get('r1'))!;
      assert.equal(r1.status, 'running');
      assert.equal(r1.owner, 'host-a');
      assert.ok(r1.heartbeatAt && Date.now() - Date.parse(r1.heartbeatAt) < 60_000);
      assert.equal(r1.progress, null);
      await s.runs.setProgress('r1', progress);
      assert.deepEqual((await s.runs.get('r1'))!.progress, progress, 'the typed progress reads back as written');
      const finished: TrainingProgress = { state: 'finished', runId: 'r1', preset: 'tiny', epochs: 3, fraction: 1, reason: 'completed', epochsCompleted: 3, bestValLoss: 800.5, registered: 'r1' };
      await s.runs.finish('r1', { status: 'completed', checkpointDir: '/ck/r1', bestValLoss: 800.5, progress: finished });
      const done = (await s.runs.get('r1'))!;
      assert.deepEqual([done.status, done.checkpointDir, done.bestValLoss, done.progress], ['completed', '/ck/r1', 800.5, finished]);
      assert.ok(done.finishedAt);
      await s.runs.finish('r2', { status: 'failed', message: 'boom' });
      assert.deepEqual((await s.runs.recent(5)).map((r) => r.id), ['r2', 'r1'], 'newest first');
      assert.equal((await s.runs.recent(1)).length, 1);
      assert.deepEqual(await s.runs.countByStatus(), { running: 0, completed: 1, 'early-stop': 0, stopped: 0, failed: 1 });
    }, { owner: 'host-a' }));

    it('tells whether a run is going anywhere, and fails only its own or dead runs at start', async () => {
      const a = await open({ owner: 'host-a:train' });
      try {
        // Another process on the same database (for SQLite: the same store object stands in, owner aside).
        const b = name === 'postgres' ? await openPostgresStore(dbUrlOf(a), { owner: 'host-b:ingress' }) : null;
        const runsB = b?.runs ?? a.runs;
        try {
          const start = (id: string) => a.runs.start({ id, preset: 'tiny', epochs: 1, dataset: null, platform: 'web', channelId: 'c', userId: 'u', startedAt: new Date().toISOString() });
          assert.equal(await runsB.running(), null);
          await start('live');
          assert.equal((await runsB.running())?.id, 'live', 'seen from any process');
          if (b) {
            assert.equal(await b.runs.failOrphans(), 0, 'a starting process leaves a run another live process trains alone');
            assert.equal((await a.runs.get('live'))!.status, 'running');
          }
          const later = new Date(Date.now() + 10 * 60_000);
          assert.equal(await runsB.running({ now: later }), null, 'a run whose heartbeat went stale is not going');
          await a.runs.touch('live');
          assert.equal((await runsB.running({ staleAfterMs: 60_000 }))?.id, 'live');
          if (b) {
            assert.equal(await b.runs.failOrphans({ now: later }), 1, 'a dead owner\'s run is failed by whoever starts');
            await start('mine');
          } else {
            await start('mine');
          }
          assert.equal(await a.runs.failOrphans(), name === 'postgres' ? 1 : 2, 'the owner restarting fails the runs it died with');
          const failed = (await a.runs.get('mine'))!;
          assert.equal(failed.status, 'failed');
          assert.match(failed.message ?? '', /stopped while this run was going/);
          assert.equal(await a.runs.running(), null);
        } finally {
          await b?.close();
        }
      } finally {
        await a.close();
      }
    });

    it('publishes models; serving publishes without moving an earlier date', () => withStore(open, async (s) => {
      assert.equal(await s.runs.isPublished('a'), false);
      await s.runs.setPublished('a', true);
      await s.runs.markServed('a');
      await s.runs.markServed('b');
      assert.deepEqual([...await s.runs.publishedNames()].sort(), ['a', 'b']);
      await s.runs.setPublished('a', false);
      assert.equal(await s.runs.isPublished('a'), false);
      assert.equal(await s.runs.isPublished('b'), true);
    }));

    it('closes', async () => {
      const s = await open();
      assert.equal(s.kind, name);
      assert.equal(s.isOpen(), true);
      await s.close();
      assert.equal(s.isOpen(), false);
    });
  });
}

/** The URL a PostgreSQL store was opened on (its pool's settings). */
function dbUrlOf(s: BotStore): string {
  if (s.kind !== 'postgres') throw new Error('not a PostgreSQL store');
  const o = (s as unknown as { pool: { options: { connectionString: string } } }).pool.options;
  return o.connectionString;
}

describe('PostgreSQL store: migrations', () => {
  it('migrates a fresh database to the same version, tables and columns as SQLite', async () => {
    assert.equal(PG_MIGRATIONS.length, MIGRATIONS.length, 'both stores at the same schema version');
    const url = await server.createDatabase('migrate');
    const pool = createPgPool(url, { applicationName: 'test' });
    try {
      assert.equal(await schemaVersion(pool), 0);
      assert.equal(await migratePostgres(pool), PG_MIGRATIONS.length);
      assert.equal(await schemaVersion(pool), PG_MIGRATIONS.length);
      const pgColumns = (await pool.query<{ table_name: string; column_name: string }>(
        `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'store_schema_version'`,
      )).rows;
      const sqlite = openSqliteStore(':memory:');
      const tables = (sqlite.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((t) => t.name);
      const sqliteColumns = tables.flatMap((t) => (sqlite.db.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]).map((c) => `${t}.${c.name}`));
      await sqlite.close();
      // PostgreSQL keeps the insertion order SQLite reads from rowid in generations.position.
      assert.deepEqual(pgColumns.map((c) => `${c.table_name}.${c.column_name}`).filter((c) => c !== 'generations.position').sort(), sqliteColumns.sort());

      // Running it again is a no-op that keeps the data.
      await pool.query(`INSERT INTO published_models (name, published_at) VALUES ('kept', 'x')`);
      assert.equal(await migratePostgres(pool), PG_MIGRATIONS.length);
      assert.equal((await pool.query('SELECT name FROM published_models')).rows.length, 1);
      assert.equal((await pool.query('SELECT * FROM store_schema_version')).rows.length, 1);

      // A database migrated by a newer program is refused, not downgraded.
      await pool.query('UPDATE store_schema_version SET version = 99');
      await assert.rejects(migratePostgres(pool), /schema version 99 is newer than this program/);
    } finally {
      await pool.end();
    }
  });

  it('several processes starting together migrate once (the others wait on the advisory lock)', async () => {
    const url = await server.createDatabase('race');
    // The migrations are not idempotent (CREATE TABLE without IF NOT EXISTS): a second application would fail.
    const stores = await Promise.all(Array.from({ length: 4 }, (_, i) => openBotStore({ databaseUrl: url, applicationName: `replica-${i}`, maxConnections: 2 })));
    try {
      assert.deepEqual(stores.map((s) => s.kind), ['postgres', 'postgres', 'postgres', 'postgres']);
      await stores[0].generations.insert(generation('g1'));
      assert.equal((await stores[3].generations.get('g1'))?.id, 'g1', 'they share one database');
      const pool = createPgPool(url, { applicationName: 'check' });
      assert.equal(await schemaVersion(pool), PG_MIGRATIONS.length);
      await pool.end();
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('openBotStore opens SQLite without a DATABASE_URL', async () => {
    const s = await openBotStore({ file: ':memory:' });
    assert.equal(s.kind, 'sqlite');
    await s.close();
  });
});

describe('PostgreSQL store: a database restart in the middle', () => {
  it('fails queries politely during the outage and reconnects by itself after', async () => {
    const s = await openPostgresStore(await server.createDatabase('restart'));
    try {
      await s.generations.insert(generation('before'));
      await server.restart();
      assert.equal((await s.generations.get('before'))?.id, 'before', 'the pool reconnects after a restart; committed rows survive');

      await server.stopServer();
      try {
        const err = await s.generations.insert(generation('during')).then(() => null, (e: unknown) => e);
        assert.ok(err, 'a query during the outage fails');
        assert.equal(isDatabaseUnavailable(err), true, `recognised as the database being down: ${(err as Error).message}`);
        const read = await s.feedback.list().then(() => null, (e: unknown) => e);
        assert.equal(isDatabaseUnavailable(read), true);
      } finally {
        await server.start();
      }
      assert.equal(await s.generations.insert(generation('after')), true, 'works again without reopening');
      assert.deepEqual((await s.generations.list()).map((g) => g.id).sort(), ['after', 'before'], 'nothing half-written');
    } finally {
      await s.close();
    }
  });

  it('the core turns an outage into a UserError with the database message where a user waits', async () => {
    const store = await openPostgresStore(await server.createDatabase('core'));
    const samplers = new FakeSamplers({ m1: 'test-clip' });
    const catalog = new FakeCatalog(samplers);
    const dir = fs.mkdtempSync(path.join(tmp, 'core-'));
    const core = createBotCore({
      store, embedder: new HashEmbedder(), samplers, catalog, renderer: sharpRenderer, admins: new AdminPolicy([]),
      training: new TrainingRunner({ runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'lock') }),
      queue: { batchWindowMs: 5 },
    });
    const alice = { platform: 'discord' as const, workspaceId: 'g1', channelId: 'c1', userId: 'alice' };
    try {
      const reply = await core.imagine(alice, { prompt: 'sheep', seed: 1 });
      await core.attachMessage(reply.generationId, 'msg-1');
      assert.equal(await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'bob', reaction: '👍', added: true }), true);
      assert.equal((await store.generations.get(reply.generationId))?.messageRef, 'msg-1');

      await server.stopServer();
      try {
        const polite = (e: unknown) => e instanceof UserError && e.message === DATABASE_UNAVAILABLE_MESSAGE;
        await assert.rejects(core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'bob', reaction: '⭐', added: true }), polite);
        await assert.rejects(core.reroll(alice, reply.generationId), polite);
        await assert.rejects(core.imagine(alice, { prompt: 'cow', seed: 2 }), polite, 'the generation cannot be recorded');
        await core.attachMessage(reply.generationId, 'msg-2'); // logged, never thrown: the reply is out already
      } finally {
        await server.start();
      }
      assert.equal(await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'bob', reaction: '⭐', added: true }), true);
    } finally {
      await core.close();
      await store.close();
    }
  });
});

// A pg.Pool is what the store shares with the job queue: openPostgresStore({ pool }) leaves it open on close.
describe('PostgreSQL store: on a shared pool', () => {
  it('uses the given pool and does not end it', async () => {
    const pool: pg.Pool = createPgPool(await server.createDatabase('shared'), { applicationName: 'shared' });
    const s = await openPostgresStore('', { pool });
    await s.generations.insert(generation('g1'));
    await s.close();
    assert.equal(s.isOpen(), false);
    assert.equal((await pool.query('SELECT COUNT(*)::int AS n FROM generations')).rows[0].n, 1, 'the pool still works');
    await pool.end();
  });
});

describe('PostgreSQL store: the CLI and /metrics read it', () => {
  it('`feedback export`/`stats` and `prune` use DATABASE_URL when it is set', async () => {
    const url = await server.createDatabase('cli');
    const s = await openPostgresStore(url);
    const dataDir = fs.mkdtempSync(path.join(tmp, 'cli-'));
    try {
      await s.generations.insert(generation('old', { createdAt: new Date(Date.now() - 100 * DAY).toISOString() }));
      await s.generations.insert(generation('new'));
      await s.feedback.record({ generationId: 'new', platform: 'discord', userId: 'bob', reaction: '👍', added: true });
      const env = { DATABASE_URL: url, DATA_DIR: dataDir };
      let text = '';
      assert.equal(await runFeedbackExport({ format: 'jsonl' }, { write: (t) => { text += t; } }, env), 1);
      assert.equal((JSON.parse(text.trim()) as { prompt: string }).prompt, 'a cow new');
      const stats = await runFeedbackStats({}, { write: () => undefined }, env);
      assert.deepEqual(stats.map((x) => [x.model, x.generations, x.up]), [['m1', 2, 1]]);
      const report = await runPrune({ generationDays: '30' }, dataDir, env);
      assert.equal(report.generationsRemoved, 1);
      assert.deepEqual((await s.generations.list()).map((g) => g.id), ['new']);
      await assert.rejects(runFeedbackStats({}, { write: () => undefined }, { DATABASE_URL: 'mysql://nope' }), /DATABASE_URL: must be a PostgreSQL URL/);
    } finally {
      await s.close();
    }
  });

  it('/metrics counts generations any process records, and keeps answering while the database is down', async () => {
    const s = await openPostgresStore(await server.createDatabase('metrics'));
    const metrics = new AppMetrics({ processMetrics: false });
    try {
      await s.generations.insert(generation('before-attach'));
      metrics.attach({ store: s });
      const count = async () => Number(/cvae_generations_total\{[^}]*platform="discord"[^}]*\} (\d+)/.exec(await metrics.text())?.[1] ?? 0);
      assert.equal(await count(), 0, 'rows from before the process started are not counted');
      await s.generations.insert(generation('g1'));
      assert.equal(await count(), 1);
      await server.stopServer();
      try {
        assert.match(await metrics.text(), /cvae_generations_total/, 'a scrape during the outage still answers');
      } finally {
        await server.start();
      }
      await s.generations.insert(generation('g2'));
      assert.equal(await count(), 2, 'it catches up once the database is back');
      assert.match(await metrics.text(), /cvae_training_runs\{status="running"\} 0/);
    } finally {
      await s.close();
    }
  });
});
