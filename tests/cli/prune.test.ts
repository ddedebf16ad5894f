/**
 * `cvae prune`: keeps the newest N run folders, the served and published models and a run still going;
 * removes the other run folders (and forgets their names), sample grids of old kept runs, stale ONNX exports
 * and generations older than D days with their reactions. Settings are validated; /metrics reports disk use.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { buildProgram } from '../../src/cli/index.js';
import { formatPruneReport, runPrune } from '../../src/cli/commands/prune.js';
import { retentionFromEnv, dataDirUsage } from '../../src/bot/retention.js';
import { openSqliteStore } from '../../src/bot/core/store/index.js';
import { CheckpointRegistry } from '../../src/model/registry.js';
import { AppMetrics } from '../../src/http/metrics.js';
import { tempDataDir } from '../app/helpers.js';

const DAY = 86_400_000;

/** A run folder as a training run leaves it: best/ and last/ checkpoints, per-epoch samples; mtime `ageDays` ago. */
function runFolder(root: string, name: string, ageDays: number): string {
  const dir = path.join(root, name);
  for (const sub of ['best', 'last']) {
    fs.mkdirSync(path.join(dir, sub, 'decoder'), { recursive: true });
    fs.writeFileSync(path.join(dir, sub, 'meta.json'), '{}');
    fs.writeFileSync(path.join(dir, sub, 'decoder', 'weights.bin'), Buffer.alloc(4096));
  }
  fs.mkdirSync(path.join(dir, 'samples'));
  fs.writeFileSync(path.join(dir, 'samples', 'epoch-0001.png'), Buffer.alloc(2048));
  const t = new Date(Date.now() - ageDays * DAY);
  fs.utimesSync(dir, t, t);
  return dir;
}

describe('cvae prune', () => {
  let dataDir: string;
  let root: string;

  beforeEach(async () => {
    dataDir = tempDataDir('prune-');
    root = path.join(dataDir, 'checkpoints');
    fs.mkdirSync(root, { recursive: true });
    for (let i = 1; i <= 8; i++) runFolder(root, `run-${i}`, 10 - i); // run-8 is the newest
    // run-1 serves, run-2 is published, run-3 is still training, run-4 is registered under a name but neither
    fs.writeFileSync(path.join(root, 'registry.json'), JSON.stringify({ version: 1, active: 'served', checkpoints: {
      served: { dir: 'run-1/best', registeredAt: '2026-01-01T00:00:00Z' },
      shared: { dir: 'run-2/best', registeredAt: '2026-01-01T00:00:00Z' },
      old: { dir: 'run-4/best', registeredAt: '2026-01-01T00:00:00Z' },
    } }));
    // a stale ONNX export in the served checkpoint (its weights changed since)
    fs.writeFileSync(path.join(root, 'run-1/best/decoder.onnx'), Buffer.alloc(100));
    fs.writeFileSync(path.join(root, 'run-1/best/decoder.onnx.json'), JSON.stringify({ exportFormat: 1, weightsSha256: 'x', output: 'uint8', createdAt: 'x', bytes: 999 }));
    const store = openSqliteStore(path.join(dataDir, 'bot.sqlite'));
    await store.runs.setPublished('shared', true);
    await store.runs.start({ id: 'run-3', preset: 'tiny', epochs: 1, dataset: null, platform: 'web', channelId: 'c', userId: 'u', startedAt: new Date().toISOString() });
    const gen = (id: string, ageDays: number) => store.generations.insert({
      id, platform: 'web', workspaceId: 'w', channelId: 'c', userId: 'u', kind: 'imagine', parentId: null, prompt: 'cows', seeds: [1],
      variationSeed: null, model: 'served', clipModel: 'clip', latencyMs: 5, messageRef: null, createdAt: new Date(Date.now() - ageDays * DAY).toISOString(),
    });
    await gen('old-gen', 100);
    await gen('new-gen', 2);
    await store.generations.attachMessage('old-gen', 'm-old');
    await store.feedback.record({ generationId: 'old-gen', imageIndex: null, platform: 'web', userId: 'u', reaction: '👍', added: true });
    await store.feedback.record({ generationId: 'new-gen', imageIndex: null, platform: 'web', userId: 'u', reaction: '👍', added: true });
    await store.close();
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('says what it would remove on a dry run, and removes nothing', async () => {
    const r = await runPrune({ keepRuns: '2', generationDays: '30', dryRun: true }, dataDir);
    assert.deepEqual(r.runsRemoved.sort(), ['run-4', 'run-5', 'run-6']);
    assert.equal(r.generationsRemoved, 1);
    assert.ok(fs.existsSync(path.join(root, 'run-4')));
    assert.match(formatPruneReport(r), /Dry run: would remove 3 run folder\(s\)/);
  });

  it('keeps the newest runs and the served, published and training ones; removes the rest and old generations', async () => {
    const before = await dataDirUsage(dataDir);
    const r = await runPrune({ keepRuns: '2', generationDays: '30' }, dataDir);
    assert.deepEqual(fs.readdirSync(root).sort(), ['registry.json', 'run-1', 'run-2', 'run-3', 'run-7', 'run-8']);
    assert.deepEqual(r.runsRemoved.sort(), ['run-4', 'run-5', 'run-6']);
    assert.deepEqual(Object.fromEntries(r.runsKept.map((k) => [k.name, k.why])), {
      'run-8': 'newest', 'run-7': 'newest', 'run-3': 'training', 'run-2': 'published shared', 'run-1': 'serves served',
    });
    assert.deepEqual(r.namesForgotten, ['old']);
    const { checkpoints, active } = await new CheckpointRegistry(root).folders();
    assert.equal(active, 'served');
    assert.ok(!checkpoints.has('old') && checkpoints.has('served') && checkpoints.has('shared'));
    assert.ok(!fs.existsSync(path.join(root, 'run-1/samples')), 'sample grids of an old kept run');
    assert.ok(fs.existsSync(path.join(root, 'run-8/samples')), 'the newest runs keep theirs');
    assert.ok(fs.existsSync(path.join(root, 'run-1/best/meta.json')));
    assert.deepEqual(r.onnxExportsRemoved, [path.join('checkpoints', 'run-1', 'best', 'decoder.onnx')]);
    assert.ok(!fs.existsSync(path.join(root, 'run-1/best/decoder.onnx')));
    assert.equal(r.generationsRemoved, 1);
    assert.equal(r.feedbackRemoved, 1);
    const store = openSqliteStore(path.join(dataDir, 'bot.sqlite'));
    assert.equal(await store.generations.get('old-gen'), null);
    assert.ok(await store.generations.get('new-gen'));
    assert.equal(await store.generations.byMessage('web', 'm-old'), null);
    await store.close();
    const after = await dataDirUsage(dataDir);
    assert.ok(r.bytesFreed > 3 * 8192 && after.checkpoints < before.checkpoints, `freed ${r.bytesFreed} bytes`);
  });

  it('is a command of the CLI, with validated settings', () => {
    const prune = buildProgram().commands.find((c) => c.name() === 'prune');
    assert.ok(prune, 'cvae prune');
    assert.deepEqual(retentionFromEnv({}), { keepRuns: 5, generationDays: 90, everyHours: 0 });
    assert.deepEqual(retentionFromEnv({ RETENTION_KEEP_RUNS: '3', RETENTION_GENERATION_DAYS: '7', RETENTION_PRUNE_EVERY_HOURS: '24' }),
      { keepRuns: 3, generationDays: 7, everyHours: 24 });
    assert.throws(() => retentionFromEnv({ RETENTION_GENERATION_DAYS: 'soon' }), /RETENTION_GENERATION_DAYS: must be a whole number/);
  });

  it('reports disk use in /metrics', async () => {
    const metrics = new AppMetrics({ processMetrics: false });
    metrics.attach({ diskUsage: () => dataDirUsage(dataDir) });
    const text = await metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('cvae_disk_usage_bytes{part="checkpoints"}'));
    assert.ok(line && Number(line.split(' ')[1]) > 8 * 8192, line);
    assert.match(text, /cvae_disk_usage_bytes\{part="total"\} \d+/);
  });
});
