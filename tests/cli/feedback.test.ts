/** `cvae feedback export` and `feedback stats` over a bot store in DATA_DIR, as an operator runs them. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/bot/core/store/index.js';
import { csvCell, formatFeedback, parseSince, runFeedbackExport, runFeedbackStats } from '../../src/cli/commands/feedback.js';

describe('feedback export formatting', () => {
  it('quotes CSV cells and defuses spreadsheet formulas', () => {
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
    assert.equal(csvCell('-1'), '-1');
    assert.equal(csvCell(null), '');
    assert.equal(formatFeedback([], 'jsonl'), '');
    assert.match(formatFeedback([], 'csv'), /^time,action,reaction,kind,reactionUser,imageIndex,generationId/);
  });

  it('checks its options', async () => {
    assert.equal(parseSince('2024-05-01'), '2024-05-01T00:00:00.000Z');
    assert.throws(() => parseSince('yesterday'), /--since must be a date/);
    await assert.rejects(runFeedbackExport({ format: 'xml' }), /--format must be jsonl or csv/);
  });
});

describe('feedback export and stats', () => {
  let dir: string;
  let savedDataDir: string | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feedback-cli-'));
    savedDataDir = process.env.DATA_DIR;
    process.env.DATA_DIR = dir; // the CLI reads <DATA_DIR>/bot.sqlite, like an operator would
    const store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    for (const [id, prompt] of [['g1', 'sheep on a green hill'], ['g2', '=cows']]) {
      await store.generations.insert({
        id, platform: 'discord', workspaceId: 'w', channelId: 'c', userId: 'alice', kind: 'imagine', parentId: null, prompt, seeds: [7],
        variationSeed: null, model: 'm1', clipModel: 'clip', latencyMs: 120, messageRef: null, createdAt: new Date().toISOString(),
      });
    }
    await store.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'bob', reaction: '👍', added: true });
    await store.feedback.record({ generationId: 'g1', platform: 'discord', userId: 'bob', reaction: '👍', added: true }); // a duplicate: not recorded
    await store.feedback.record({ generationId: 'g2', platform: 'discord', userId: 'bob', reaction: '👎', added: true });
    await store.feedback.record({ generationId: 'g2', platform: 'discord', userId: 'bob', reaction: '👎', added: false });
    await store.close();
  });

  after(() => {
    if (savedDataDir === undefined) delete process.env.DATA_DIR;
    else process.env.DATA_DIR = savedDataDir;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exports every reaction event as JSON lines with its generation', async () => {
    const lines: string[] = [];
    const n = await runFeedbackExport({ format: 'jsonl' }, { write: (t) => lines.push(t) });
    const rows = lines.join('').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(n, 3);
    assert.equal(rows.length, 3);
    assert.ok(rows.some((r) => r.reaction === '👍' && r.action === 'added' && r.prompt === 'sheep on a green hill' && r.reactionUser === 'bob'));
    assert.deepEqual(rows.filter((r) => r.reaction === '👎').map((r) => r.action), ['added', 'removed']);
  });

  it('exports CSV with a header and defused formulas; --since filters', async () => {
    const csv: string[] = [];
    await runFeedbackExport({ format: 'csv', since: '2000-01-01' }, { write: (t) => csv.push(t) });
    const text = csv.join('');
    assert.match(text, /^time,action,reaction/);
    assert.equal(text.trim().split('\n').length, 4, 'header and three rows');
    assert.ok(text.includes(`'=cows`), 'a prompt that looks like a formula is defused');
    const later: string[] = [];
    assert.equal(await runFeedbackExport({ format: 'jsonl', since: '2999-01-01' }, { write: (t) => later.push(t) }), 0);
  });

  it('prints per-model stats: reactions in place, not removed ones', async () => {
    const out: string[] = [];
    const stats = await runFeedbackStats({}, { write: (t) => out.push(t) });
    assert.deepEqual(stats.map((s) => [s.model, s.generations, s.up, s.down, s.favourite, s.upRatio]), [['m1', 2, 1, 0, 0, 1]]);
    assert.match(out.join(''), /m1\s+2\s+1\s+0\s+0\s+100%/);
  });
});
