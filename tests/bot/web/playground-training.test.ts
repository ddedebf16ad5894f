/**
 * The playground's local admin starts and stops training runs (real `train` child processes on a tiny
 * synthetic set) and watches them: one status message edited in place with a progress fraction, the
 * epoch's sample grid and loss curve as images, the finished run registered as a model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningApp } from '../../../src/app.js';
import type { ChatMessage } from '../../../src/bot/web/chat-log.js';
import { PNG_MAGIC, addTinyModel, request, settled, startTestApp, tempDataDir, waitFor } from '../../app/helpers.js';

describe('playground training (local admin)', { timeout: 300_000 }, () => {
  let dataDir: string;
  let app: RunningApp;

  before(async () => {
    dataDir = tempDataDir('web-train-');
    await addTinyModel(dataDir, 'tiny-train');
    app = await startTestApp(dataDir, {}, { trainingExtraArgs: ['--synthetic', '32', '--batch-size', '8'], minUpdateIntervalMs: 0 });
  });

  after(async () => {
    await app?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const messages = async () => (await request(app, 'GET', '/api/messages')).json.messages as ChatMessage[];

  it('runs a one-epoch run to the end: progress, sample grid, loss curve, registered checkpoint', async () => {
    const start = await request(app, 'POST', '/api/train/start', { preset: 'tiny', epochs: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.json));
    assert.match(start.json.text, /Started training run `tiny-[\w-]+`/);
    const runId = /`(tiny-[\w-]+)`/.exec(start.json.text)![1];

    const status = await waitFor(async () => (await messages()).find((m) => m.kind === 'training' && m.state === 'done'), 'the run to finish', 240_000);
    assert.match(status.text, new RegExp(`Training run \`${runId}\` finished after 1 epoch`));
    assert.equal(status.progress, 1);
    assert.match(status.text, /registered as `/);

    const all = await messages();
    for (const kind of ['samples', 'loss'] as const) {
      const img = all.find((m) => m.trainingImage === kind);
      assert.ok(img?.images?.[0], `a ${kind} image message`);
      assert.match(img.text, /Epoch 1\/1/);
      const png = await request(app, 'GET', img.images[0].url);
      assert.deepEqual(png.body.subarray(0, 8), PNG_MAGIC);
    }
    const list = await settled(app, (await request(app, 'POST', '/api/command', { text: '/model list' })).json.messageId);
    assert.match(list.text, new RegExp(runId));
    const run = await app.runtime()!.store.runs.get(runId);
    assert.equal(run?.status, 'completed');
    assert.equal(run?.platform, 'web');
    assert.equal(run?.userId, 'local');
  });

  it('stops a long run from the panel: the trainer saves a checkpoint and the run ends as stopped', async () => {
    const typed = await request(app, 'POST', '/api/command', { text: '/train start preset:tiny epochs:500' });
    assert.equal(typed.status, 202);
    const started = await settled(app, typed.json.messageId);
    assert.match(started.text, /Started training run/, started.text);
    const runId = /`(tiny-[\w-]+)`/.exec(started.text)![1];

    const stepping = await waitFor(async () => (await messages()).find((m) => m.kind === 'training' && m.text.includes(runId) && /step \d+/.test(m.text)),
      'a training step', 120_000);
    assert.ok(typeof stepping.progress === 'number' && stepping.progress > 0 && stepping.progress < 1, `progress ${stepping.progress}`);
    assert.match(stepping.text, /\[[█░]+\] \d+%/, 'the progress bar text');

    const metrics = (await request(app, 'GET', '/metrics')).body.toString();
    assert.match(metrics, /^cvae_training_active 1$/m);
    assert.match(metrics, /^cvae_training_runs\{status="running"\} 1$/m);
    const ratio = Number(/^cvae_training_progress_ratio (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(ratio > 0 && ratio < 1, `training progress in the metrics (${ratio})`);

    const busy = await request(app, 'GET', '/api/train/status');
    assert.equal(busy.json.busy, true);
    const again = await request(app, 'POST', '/api/train/start', { preset: 'tiny', epochs: 1 });
    assert.equal(again.status, 400);
    assert.match(again.json.error, /already going/);

    const stop = await request(app, 'POST', '/api/train/stop', {});
    assert.equal(stop.status, 200);
    assert.match(stop.json.text, /Stopping training run/);
    const final = await waitFor(async () => (await messages()).find((m) => m.kind === 'training' && m.text.includes(runId) && m.state === 'done'),
      'the stopped run', 120_000);
    assert.match(final.text, /was stopped/);
    const run = await app.runtime()!.store.runs.get(runId);
    assert.equal(run?.status, 'stopped');
    assert.ok(run?.checkpointDir && fs.existsSync(path.join(run.checkpointDir, 'meta.json')), 'the checkpoint saved on stop');
    assert.equal((await request(app, 'GET', '/api/train/status')).json.busy, false);
  });
});
