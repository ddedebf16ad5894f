import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore, MIGRATIONS } from '../../../src/bot/core/store/index.js';
import { feedbackKind } from '../../../src/bot/core/store/feedback-store.js';

describe('store', () => {
  it('maps reactions to feedback kinds on both platforms, skin tones included', () => {
    assert.deepEqual(['👍', '👍🏽', '+1', '+1::skin-tone-3', 'thumbsup', '👎', '-1', '⭐', 'star', '🐄', 'cow:123'].map(feedbackKind),
      ['up', 'up', 'up', 'up', 'up', 'down', 'down', 'favourite', 'favourite', 'other', 'other']);
  });

  it('migrates to the latest version and keeps WAL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
    const s = openSqliteStore(path.join(dir, 'x.sqlite'));
    assert.equal(s.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    await s.close();
    const again = openSqliteStore(path.join(dir, 'x.sqlite'));
    assert.equal(again.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    await again.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has no models table: registered models live in the checkpoint registry only (the store keeps publications)', async () => {
    const s = openSqliteStore(':memory:');
    const tables = (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name).sort();
    assert.deepEqual(tables.filter((t) => !t.startsWith('sqlite_')), ['feedback', 'generation_messages', 'generations', 'published_models', 'runs']);
    await s.close();
    assert.equal(s.isOpen(), false);
  });

  it('gives /metrics what it reads: generations and feedback after a cursor, runs by status', async () => {
    const s = openSqliteStore(':memory:');
    assert.equal(await s.generations.lastPosition(), 0);
    assert.equal(await s.feedback.lastId(), 0);
    const gen = (id: string, platform: 'discord' | 'slack', latencyMs: number) => s.generations.insert({
      id, platform, workspaceId: 'w', channelId: 'c', userId: 'u', kind: 'imagine', parentId: null, prompt: 'p', seeds: [1],
      variationSeed: null, model: 'm1', clipModel: 'clip', latencyMs, messageRef: null, createdAt: new Date().toISOString(),
    });
    await gen('g1', 'discord', 100);
    const cursor = await s.generations.lastPosition();
    await gen('g2', 'slack', 250);
    await gen('g3', 'discord', 40);
    assert.deepEqual((await s.generations.after(cursor)).map((g) => [g.platform, g.kind, g.model, g.latencyMs]),
      [['slack', 'imagine', 'm1', 250], ['discord', 'imagine', 'm1', 40]]);
    assert.deepEqual((await s.generations.after(cursor, 1)).length, 1, 'the limit holds');
    assert.equal((await s.generations.after(await s.generations.lastPosition())).length, 0);
    await s.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'u', reaction: '👍', added: true });
    const fbCursor = await s.feedback.lastId();
    await s.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'u', reaction: '👍', added: false });
    await s.feedback.record({ generationId: 'g2', platform: 'slack', userId: 'u', reaction: 'star', added: true });
    assert.deepEqual((await s.feedback.after(fbCursor)).map((f) => [f.kind, f.added]), [['up', false], ['favourite', true]]);
    const run = (id: string) => s.runs.start({ id, preset: 'tiny', epochs: 1, dataset: null, platform: 'web', channelId: 'c', userId: 'u', startedAt: new Date().toISOString() });
    await run('r1'); await run('r2'); await run('r3');
    await s.runs.finish('r1', { status: 'completed' });
    await s.runs.finish('r2', { status: 'failed' });
    assert.deepEqual(await s.runs.countByStatus(), { running: 1, completed: 1, 'early-stop': 0, stopped: 0, failed: 1 });
    await s.close();
  });

  describe('migrating a database of either parallel v3 (structure dropped models, hardening added published_at)', () => {
    /** A database file at schema v2 with two models, one served once (activated) and one not. */
    function atV2(dir: string): string {
      const file = path.join(dir, 'bot.sqlite');
      const db = new Database(file);
      db.exec(MIGRATIONS[0]);
      db.exec(MIGRATIONS[1]);
      db.prepare('INSERT INTO models (name, dir, registered_at, activated_at) VALUES (?, ?, ?, ?)').run('served-once', '/c/a', 't', '2026-01-01T00:00:00Z');
      db.prepare('INSERT INTO models (name, dir, registered_at) VALUES (?, ?, ?)').run('never-served', '/c/b', 't');
      db.pragma('user_version = 2');
      db.close();
      return file;
    }

    function tablesOf(s: ReturnType<typeof openSqliteStore>): string[] {
      return (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
        .map((t) => t.name).filter((t) => !t.startsWith('sqlite_')).sort();
    }

    it('from v2 (the common base) and from the structure v3 (models dropped)', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-v3s-'));
      const s = openSqliteStore(atV2(dir));
      assert.equal(s.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      assert.deepEqual(tablesOf(s), ['feedback', 'generation_messages', 'generations', 'published_models', 'runs']);
      assert.deepEqual([...await s.runs.publishedNames()], [], 'v3 dropped the activation history: nothing is published');
      await s.runs.setPublished('m', true);
      assert.equal(await s.runs.isPublished('m'), true);
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('from the hardening v3 (models.published_at): publications are kept', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-v3h-'));
      const file = atV2(dir);
      const db = new Database(file);
      // The hardening branch's v3, as it shipped there.
      db.exec(`ALTER TABLE models ADD COLUMN published_at TEXT;
        UPDATE models SET published_at = activated_at WHERE activated_at IS NOT NULL;`);
      db.prepare("INSERT INTO models (name, dir, registered_at, published_at) VALUES ('shared', '/c/s', 't', '2026-02-01T00:00:00Z')").run();
      db.pragma('user_version = 3');
      db.close();
      const s = openSqliteStore(file);
      assert.equal(s.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      assert.deepEqual(tablesOf(s), ['feedback', 'generation_messages', 'generations', 'published_models', 'runs']);
      assert.deepEqual([...await s.runs.publishedNames()].sort(), ['served-once', 'shared']);
      assert.equal(await s.runs.isPublished('never-served'), false);
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('from v4: a run an older version left running has no owner or heartbeat, so it is not going and a start fails it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-v4-'));
    const file = path.join(dir, 'bot.sqlite');
    const db = new Database(file);
    for (const m of MIGRATIONS.slice(0, 4)) db.exec(m);
    db.prepare(`INSERT INTO runs (id, preset, platform, channel_id, user_id, status, started_at) VALUES ('old', 'tiny', 'web', 'c', 'u', 'running', '2026-01-01T00:00:00Z')`).run();
    db.pragma('user_version = 4');
    db.close();
    const s = openSqliteStore(file, { owner: 'this-host' });
    assert.equal(s.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.deepEqual((await s.runs.get('old'))!.owner, null);
    assert.equal(await s.runs.running(), null);
    assert.equal(await s.runs.failOrphans(), 1);
    assert.equal((await s.runs.get('old'))!.status, 'failed');
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('publishes, unpublishes, and serving a model publishes it without moving an earlier date', async () => {
    const s = openSqliteStore(':memory:');
    await s.runs.setPublished('a', true);
    const first = (s.db.prepare("SELECT published_at FROM published_models WHERE name = 'a'").get() as { published_at: string }).published_at;
    await s.runs.markServed('a');
    assert.equal((s.db.prepare("SELECT published_at FROM published_models WHERE name = 'a'").get() as { published_at: string }).published_at, first);
    await s.runs.setPublished('a', false);
    assert.equal(await s.runs.isPublished('a'), false);
    await s.runs.markServed('a');
    assert.equal(await s.runs.isPublished('a'), true);
    await s.close();
  });
});
