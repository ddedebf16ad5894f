import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import {
  formatDuration, formatTrainingProgress, progressBar, trainingImageCaption, trainingImageName, type TrainingImage, type TrainingProgress,
} from '../../../src/bot/core/training-progress.js';
import { openSqliteStore } from '../../../src/bot/core/store/index.js';
import { FakeCatalog, FakeSamplers } from './helpers.js';
import type { Actor } from '../../../src/bot/core/types.js';

const admin: Actor = { platform: 'discord', workspaceId: 'g', channelId: 'c', userId: 'boss' };
const losses = { total: 900, bce: 880, kl: 19, ssim: 0.1 };

/** A stand-in `train` that prints scripted events (or crashes), so the runner's parsing can be tested quickly. */
function script(dir: string, body: string): { file: string; args: string[] } {
  const file = path.join(dir, 'stand-in.mjs');
  fs.writeFileSync(file, `const args = process.argv.slice(2); const out = args[args.indexOf('--out') + 1];
const emit = (e) => process.stdout.write(JSON.stringify(e) + '\\n');
const losses = ${JSON.stringify(losses)};
${body}`);
  return { file: process.execPath, args: [file] };
}

function setup(body: string, extra: Partial<ConstructorParameters<typeof TrainingRunner>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-'));
  const store = openSqliteStore(path.join(dir, 'bot.sqlite'));
  const catalog = new FakeCatalog(new FakeSamplers());
  const runner = new TrainingRunner({
    runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'training.lock'),
    command: script(dir, body), extraArgs: ['--synthetic', '8'], ...extra,
  });
  /** What the sink got (structured) and the text an adapter would show for it. */
  const progress: TrainingProgress[] = [];
  const updates: string[] = [];
  const images: { name: string; size: number; caption: string; image: TrainingImage }[] = [];
  const sink = {
    update: async (p: TrainingProgress) => { progress.push(p); updates.push(formatTrainingProgress(p)); },
    image: async (image: TrainingImage) => { images.push({ name: trainingImageName(image), size: image.png.length, caption: trainingImageCaption(image), image }); },
  };
  return { dir, store, catalog, runner, progress, updates, images, sink };
}

describe('TrainingRunner', () => {
  it('parses events: throttled status edits, epoch images, final message, run recorded, checkpoint registered', async () => {
    let clock = 0;
    const t = setup(`
fs.writeFileSync(out + '-s.png', 'PNGDATA'); fs.writeFileSync(out + '-c.png', 'CURVE');
emit({ type: 'start', preset: 'tiny', resolution: 16, conditioning: 'image', epochs: 2, trainSize: 8, totalSteps: 4 });
for (let s = 1; s <= 4; s++) emit({ type: 'step', epoch: s > 2 ? 2 : 1, step: s, totalSteps: 4, losses, imagesPerSec: 12.5, etaSec: 65 });
console.log('not an event');
emit({ type: 'epoch', epoch: 1, epochs: 2, train: losses, val: losses, best: true, samplePng: out + '-s.png', lossCurvePng: out + '-c.png', checkpointDir: out + '/last' });
emit({ type: 'done', reason: 'completed', bestValLoss: 812.25, bestEpoch: 1, epochsCompleted: 2, step: 4, checkpointDir: out + '/best', lastCheckpointDir: out + '/last' });
`.replace(/^/, "import fs from 'node:fs';\n"), { now: () => (clock += 1000), minUpdateIntervalMs: 15_000 });
    const msg = await t.runner.start(admin, { preset: 'tiny', epochs: 2 }, t.sink);
    assert.match(msg, /Started training run `tiny-/);
    assert.ok(t.runner.busy);
    await t.runner.idle();
    assert.equal(t.runner.busy, false);
    // The clock moves 1 s per reading: the start update goes out at once, later ones wait 15 s, the final one always.
    assert.ok(t.updates.length >= 2 && t.updates.length <= 3, JSON.stringify(t.updates));
    assert.match(t.updates[0], /preset `tiny`, 16 px, 8 training images/);
    assert.deepEqual(t.progress[0], { runId: t.progress[0].runId, preset: 'tiny', state: 'starting', epochs: 2, fraction: 0, resolution: 16, trainSize: 8 });
    const last = t.progress.at(-1)!;
    assert.equal(last.state, 'finished');
    assert.deepEqual(last.state === 'finished' && [last.reason, last.epochsCompleted, last.bestValLoss, last.fraction], ['completed', 2, 812.25, 1]);
    assert.equal(last.state === 'finished' && last.registered, t.catalog.registered[0].name);
    assert.match(t.updates.at(-1)!, /finished after 2 epoch\(s\), best val loss 812\.3\. Checkpoint registered as `tiny-/);
    assert.deepEqual(t.images.map((i) => [i.name, i.size]), [['samples-epoch-1.png', 7], ['loss-epoch-1.png', 5]]);
    assert.match(t.images[0].caption, /Epoch 1\/2: val loss 900\.0 \(best so far\): samples/);
    assert.deepEqual(t.images.map((i) => [i.image.kind, i.image.epoch, i.image.valLoss, i.image.best]), [['samples', 1, 900, true], ['loss-curve', 1, 900, true]]);
    const run = (await t.store.runs.recent(1))[0];
    assert.equal(run.status, 'completed');
    assert.equal(run.bestValLoss, 812.25);
    assert.equal(t.catalog.registered[0].name, run.id);
    assert.match(t.catalog.registered[0].dir, /\/best$/);
    assert.equal(fs.existsSync(path.join(t.dir, 'training.lock')), false, 'lock released');
    assert.match(await t.runner.status(), /Last run `tiny-.*`: completed, best val loss 812\.3/);
  });

  it('stores the run\'s progress while it trains (its heartbeat) and the final progress with the end', async () => {
    const t = setup(`
emit({ type: 'start', preset: 'tiny', resolution: 16, conditioning: 'image', epochs: 1, trainSize: 8, totalSteps: 2 });
emit({ type: 'step', epoch: 1, step: 1, totalSteps: 2, losses, imagesPerSec: 10, etaSec: 5 });
// Holds until the test saw the stored progress (it deletes this file), then ends.
const fs = await import('node:fs');
const hold = out + '.hold';
fs.mkdirSync(out, { recursive: true }); fs.writeFileSync(hold, '');
await new Promise((resolve) => { const t = setInterval(() => { if (!fs.existsSync(hold)) { clearInterval(t); resolve(); } }, 10); });
emit({ type: 'done', reason: 'completed', bestValLoss: 5, bestEpoch: 1, epochsCompleted: 1, step: 2, checkpointDir: out + '/best', lastCheckpointDir: out + '/last' });
`, { heartbeatMs: 20, minUpdateIntervalMs: 0 });
    await t.runner.start(admin, { preset: 'tiny', epochs: 1 }, t.sink);
    const runId = t.runner.currentRunId!;
    const deadline = Date.now() + 10_000;
    let stored = (await t.store.runs.get(runId))!.progress;
    while (stored?.state !== 'training') {
      assert.ok(Date.now() < deadline, `progress never stored: ${JSON.stringify(stored)}`);
      await new Promise((r) => setTimeout(r, 20));
      stored = (await t.store.runs.get(runId))!.progress;
    }
    assert.deepEqual(stored.state === 'training' && [stored.step, stored.totalSteps, stored.imagesPerSec], [1, 2, 10]);
    assert.equal((await t.store.runs.running())?.id, runId, 'the heartbeat keeps it going for everyone sharing the store');
    fs.rmSync(path.join(t.dir, 'runs', `${runId}.hold`));
    await t.runner.idle();
    const run = (await t.store.runs.get(runId))!;
    assert.equal(run.status, 'completed');
    assert.equal(run.progress?.state, 'finished');
  });

  it('refuses to start while another process sharing the store trains a run', async () => {
    const t = setup(`emit({ type: 'done', reason: 'completed', bestValLoss: 1, bestEpoch: 1, epochsCompleted: 1, step: 1, checkpointDir: out + '/best', lastCheckpointDir: out + '/last' });`);
    const other = openSqliteStore(path.join(t.dir, 'bot.sqlite'), { owner: 'other-host:train' });
    await other.runs.start({ id: 'elsewhere', preset: 'tiny', epochs: 1, dataset: null, platform: 'slack', channelId: 'c', userId: 'u', startedAt: new Date().toISOString() });
    await assert.rejects(t.runner.start(admin, { preset: 'tiny' }, t.sink), /A training run \(`elsewhere`\) is already going/);
    assert.equal(t.runner.busy, false);
    assert.equal(fs.existsSync(path.join(t.dir, 'training.lock')), false, 'the host lock is given back');
    assert.match(await t.runner.status(), /Training run `elsewhere` is going on another host/);
    await other.runs.finish('elsewhere', { status: 'completed' });
    await t.runner.start(admin, { preset: 'tiny' }, t.sink);
    await t.runner.idle();
    await other.close();
  });

  it('options passed as undefined keep their defaults (as createBotRuntime passes them)', async () => {
    const t = setup(`emit({ type: 'done', reason: 'completed', bestValLoss: 1, bestEpoch: 1, epochsCompleted: 1, step: 1, checkpointDir: out + '/best', lastCheckpointDir: out + '/last' });`,
      { extraArgs: undefined, minUpdateIntervalMs: undefined, killAfterMs: undefined });
    await t.runner.start(admin, { preset: 'tiny', dataset: 'synthetic' }, t.sink);
    await t.runner.idle();
    assert.equal((await t.store.runs.recent(1))[0].status, 'completed');
  });

  it('survives a crashing run and records it as failed with the reason', async () => {
    const t = setup(`process.stderr.write('boom: out of memory\\n'); process.exit(3);`);
    await t.runner.start(admin, { preset: 'tiny' }, t.sink);
    await t.runner.idle();
    assert.match(t.updates.at(-1)!, /failed: training process exited \(code 3\): boom: out of memory/);
    assert.equal((await t.store.runs.recent(1))[0].status, 'failed');
    assert.equal(t.catalog.registered.length, 0);
  });

  it('one run at a time: a second start and a live lock of another process are refused; stop sends SIGTERM', async () => {
    const t = setup(`process.on('SIGTERM', () => { emit({ type: 'done', reason: 'stopped', bestValLoss: null, bestEpoch: null, epochsCompleted: 0, step: 0, checkpointDir: out + '/last', lastCheckpointDir: out + '/last' }); process.exit(0); });
emit({ type: 'start', preset: 'tiny', resolution: 16, epochs: 9, trainSize: 8, totalSteps: 9 });
setInterval(() => {}, 1000);`, { minUpdateIntervalMs: 0 });
    await t.runner.start(admin, { preset: 'tiny' }, t.sink);
    await assert.rejects(t.runner.start(admin, { preset: 'tiny' }, t.sink), /already going/);
    await assert.rejects(t.runner.start(admin, { preset: '../x' }, t.sink), /Preset names use/);
    await assert.rejects(t.runner.start(admin, { preset: 'tiny', dataset: '../../etc' }, t.sink), /Dataset names use/);
    while (!/starting 9 epoch/.test(await t.runner.status())) await new Promise((r) => setTimeout(r, 10));
    assert.match(await t.runner.stop(), /Stopping training run/);
    await t.runner.idle();
    assert.match(t.updates.at(-1)!, /was stopped after 0 epoch/);
    assert.equal((await t.store.runs.recent(1))[0].status, 'stopped');
    // Another live process holding the lock (pid 1 is always alive).
    fs.writeFileSync(path.join(t.dir, 'training.lock'), '1');
    await assert.rejects(t.runner.start(admin, { preset: 'tiny' }, t.sink), /Another training run is going on this host/);
    // A stale lock (dead pid) is taken over.
    fs.writeFileSync(path.join(t.dir, 'training.lock'), '999999');
    await t.runner.start(admin, { preset: 'tiny' }, t.sink);
    await t.runner.stop();
    await t.runner.idle();
  });

  it('picks the data: a named dataset folder, `synthetic`, the only dataset, or asks', async () => {
    const t = setup(`emit({ type: 'error', message: 'args ' + args.filter((a) => a.startsWith('--') && a !== '--out' && a !== '--json-events' && a !== '--preset').join(' ') }); process.exit(1);`, { extraArgs: [] });
    const datasets = path.join(path.dirname(path.join(t.dir, 'runs')), 'datasets');
    const runner = new TrainingRunner({ runs: t.store.runs, catalog: t.catalog, runsDir: path.join(t.dir, 'runs'), lockFile: path.join(t.dir, 'lock'),
      datasetsDir: datasets, command: script(t.dir, `process.stdout.write(JSON.stringify({ type: 'error', message: args.slice(args.indexOf('--json-events') + 3).join(' ') }) + '\\n'); process.exit(1);`) });
    await assert.rejects(runner.start(admin, { preset: 'tiny' }, t.sink), /no dataset yet.*synthetic/);
    fs.mkdirSync(path.join(datasets, 'coco-64'), { recursive: true });
    await runner.start(admin, { preset: 'tiny' }, t.sink);
    await runner.idle();
    assert.match(t.updates.at(-1)!, /failed: --dataset \S+\/datasets\/coco-64$/);
    fs.mkdirSync(path.join(datasets, 'synth-16'), { recursive: true });
    await assert.rejects(runner.start(admin, { preset: 'tiny' }, t.sink), /Say which dataset.*`coco-64`, `synth-16`/);
    await assert.rejects(runner.start(admin, { preset: 'tiny', dataset: 'nope' }, t.sink), /no dataset `nope`. Known datasets: `coco-64`, `synth-16`/);
    await runner.start(admin, { preset: 'tiny', dataset: 'synthetic', epochs: 2 }, t.sink);
    await runner.idle();
    assert.match(t.updates.at(-1)!, /failed: --epochs 2 --synthetic 256$/);
  });

  it('reports steps with their numbers; the fraction is the share of the run\'s steps done', async () => {
    const t = setup(`emit({ type: 'start', preset: 'tiny', resolution: 16, conditioning: 'image', epochs: 2, trainSize: 8, totalSteps: 4 });
emit({ type: 'step', epoch: 2, step: 3, totalSteps: 4, losses, imagesPerSec: 12.5, etaSec: 65 });
setTimeout(() => process.exit(0), 10);`, { minUpdateIntervalMs: 0 });
    await t.runner.start(admin, { preset: 'tiny' }, t.sink);
    await t.runner.idle();
    const step = t.progress.find((p) => p.state === 'training');
    assert.ok(step && step.state === 'training');
    assert.deepEqual([step.epoch, step.epochs, step.step, step.totalSteps, step.losses, step.imagesPerSec, step.etaSec, step.fraction], [2, 2, 3, 4, losses, 12.5, 65, 0.75]);
    assert.equal(formatTrainingProgress(step), `Training run \`${step.runId}\`: epoch 2/2, step 3/4\n[████████████░░░░] 75%\n` +
      'batch loss 900.0 (bce 880.0, kl 19.00, ssim 0.100) · 12.5 img/s · ETA 1m 05s');
    const last = t.progress.at(-1)!;
    assert.equal(last.state, 'failed', 'no done event: the run failed');
    assert.equal(last.fraction, 0.75, 'a failed run keeps the progress it had');
    assert.equal(t.runner.progress(), null, 'no run is going');
  });

  it('formats progress', () => {
    assert.equal(progressBar(0.5, 10), '[█████░░░░░] 50%');
    assert.equal(formatDuration(65), '1m 05s');
    assert.equal(formatDuration(3725), '1h 02m');
  });
});
