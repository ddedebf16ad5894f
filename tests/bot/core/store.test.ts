import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openBotStore, MIGRATIONS } from '../../../src/bot/core/store/index.js';
import { feedbackKind } from '../../../src/bot/core/store/feedback-store.js';

describe('store', () => {
  it('maps reactions to feedback kinds on both platforms, skin tones included', () => {
    assert.deepEqual(['👍', '👍🏽', '+1', '+1::skin-tone-3', 'thumbsup', '👎', '-1', '⭐', 'star', '🐄', 'cow:123'].map(feedbackKind),
      ['up', 'up', 'up', 'up', 'up', 'down', 'down', 'favourite', 'favourite', 'other', 'other']);
  });

  it('migrates to the latest version and keeps WAL', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
    const s = openBotStore(path.join(dir, 'x.sqlite'));
    assert.equal(s.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    s.close();
    const again = openBotStore(path.join(dir, 'x.sqlite'));
    assert.equal(again.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    again.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has no models table: registered models live in the checkpoint registry only', () => {
    const s = openBotStore(':memory:');
    const tables = (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name).sort();
    assert.deepEqual(tables.filter((t) => !t.startsWith('sqlite_')), ['feedback', 'generation_messages', 'generations', 'runs']);
    s.close();
    assert.equal(s.isOpen(), false);
  });

  it('gives /metrics what it reads: generations and feedback after a cursor, runs by status', () => {
    const s = openBotStore(':memory:');
    assert.equal(s.generations.lastPosition(), 0);
    assert.equal(s.feedback.lastId(), 0);
    const gen = (id: string, platform: 'discord' | 'slack', latencyMs: number) => s.generations.insert({
      id, platform, workspaceId: 'w', channelId: 'c', userId: 'u', kind: 'imagine', parentId: null, prompt: 'p', seeds: [1],
      variationSeed: null, model: 'm1', clipModel: 'clip', latencyMs, messageRef: null, createdAt: new Date().toISOString(),
    });
    gen('g1', 'discord', 100);
    const cursor = s.generations.lastPosition();
    gen('g2', 'slack', 250);
    gen('g3', 'discord', 40);
    assert.deepEqual(s.generations.after(cursor).map((g) => [g.platform, g.kind, g.model, g.latencyMs]),
      [['slack', 'imagine', 'm1', 250], ['discord', 'imagine', 'm1', 40]]);
    assert.deepEqual(s.generations.after(cursor, 1).length, 1, 'the limit holds');
    assert.equal(s.generations.after(s.generations.lastPosition()).length, 0);
    s.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'u', reaction: '👍', added: true });
    const fbCursor = s.feedback.lastId();
    s.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'u', reaction: '👍', added: false });
    s.feedback.record({ generationId: 'g2', platform: 'slack', userId: 'u', reaction: 'star', added: true });
    assert.deepEqual(s.feedback.after(fbCursor).map((f) => [f.kind, f.added]), [['up', false], ['favourite', true]]);
    const run = (id: string) => s.runs.start({ id, preset: 'tiny', epochs: 1, dataset: null, platform: 'web', channelId: 'c', userId: 'u', startedAt: new Date().toISOString() });
    run('r1'); run('r2'); run('r3');
    s.runs.finish('r1', { status: 'completed' });
    s.runs.finish('r2', { status: 'failed' });
    assert.deepEqual(s.runs.countByStatus(), { running: 1, completed: 1, 'early-stop': 0, stopped: 0, failed: 1 });
    s.close();
  });
});
