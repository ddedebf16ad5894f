import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { initBackend } from '../../src/model/backend.js';
import { loadCheckpoint, readCheckpointMeta } from '../../src/model/checkpoint.js';
import { getPreset } from '../../src/model/presets.js';
import type { StepEvent, TrainingEvent } from '../../src/training/events.js';
import { createSyntheticMemoryDataset } from '../../src/training/synthetic-memory.js';
import { train, type RunHistory, type TrainOptions } from '../../src/training/trainer.js';

const preset = getPreset('tiny');
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'trainer-test-'));
process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));

/** 16 pictures: 14 train / 2 val; batch 7 gives 2 steps per epoch. */
const source = createSyntheticMemoryDataset({ count: 16, resolution: preset.resolution, embeddingDim: preset.embeddingDim, seed: 11, valFraction: 0.125 });
const base = (name: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  preset,
  source,
  outDir: path.join(tmpRoot, name),
  epochs: 2,
  batchSize: 7,
  learningRate: 0.005,
  seed: 3,
  sampleCount: 2,
  ...extra,
});

async function run(opts: TrainOptions) {
  const events: TrainingEvent[] = [];
  const result = await train({ ...opts, onEvent: (e) => { events.push(e); opts.onEvent?.(e); } });
  return { result, events };
}

const steps = (events: TrainingEvent[]) => events.filter((e): e is StepEvent => e.type === 'step');

let reference: Awaited<ReturnType<typeof run>>;

before(async () => {
  await initBackend();
  reference = await run(base('reference'));
});

test('a run emits start, steps, epochs and done, and writes checkpoints, samples, curve and history', async () => {
  const { result, events } = reference;
  assert.equal(source.size('train'), 14);
  assert.deepEqual(events.map((e) => e.type), ['start', 'step', 'step', 'epoch', 'step', 'step', 'epoch', 'done']);
  const start = events[0];
  assert.ok(start.type === 'start');
  assert.equal(start.stepsPerEpoch, 2);
  assert.equal(start.totalSteps, 4);
  assert.equal(start.trainableParams > 0, true);
  assert.equal(start.backend, tf.getBackend());
  assert.deepEqual(steps(events).map((s) => [s.epoch, s.step, s.epochStep]), [[1, 1, 1], [1, 2, 2], [2, 3, 1], [2, 4, 2]]);
  for (const s of steps(events)) {
    assert.ok(s.imagesPerSec > 0);
    assert.ok(s.etaSec === null || s.etaSec >= 0);
    assert.ok(Number.isFinite(s.losses.total) && Number.isFinite(s.losses.ssim));
  }
  assert.equal(steps(events).at(-1)!.etaSec, 0);
  const epochs = events.filter((e) => e.type === 'epoch');
  assert.equal(epochs[0].best, true);
  for (const e of epochs) {
    assert.ok(e.type === 'epoch');
    assert.equal((await sharp(e.samplePng).metadata()).format, 'png');
    assert.equal((await sharp(e.lossCurvePng).metadata()).format, 'png');
    assert.equal(e.checkpointDir, result.lastCheckpointDir);
  }
  const done = events.at(-1)!;
  assert.ok(done.type === 'done');
  assert.equal(done.reason, 'completed');
  assert.equal(done.epochsCompleted, 2);
  assert.equal(done.step, 4);
  assert.equal(done.checkpointDir, path.join(base('reference').outDir, 'best'));
  assert.equal(result.bestValLoss, Math.min(...result.history.map((h) => h.val.total)));

  const last = await readCheckpointMeta(result.lastCheckpointDir);
  assert.equal(last.preset, 'tiny');
  assert.equal(last.resolution, preset.resolution);
  assert.equal(last.conditioning, 'image');
  assert.equal(last.datasetFingerprint, 'synthetic-random:16:11');
  assert.equal(last.epoch, 2);
  assert.equal(last.step, 4);
  assert.equal(last.bestValLoss, result.bestValLoss);
  assert.equal(last.presetConfig.train.batchSize, 7);
  assert.equal(last.losses.val?.total, result.history[1].val.total);
  const best = await readCheckpointMeta(done.checkpointDir);
  assert.equal(best.epoch, result.bestEpoch);
  for (const dir of [result.lastCheckpointDir, done.checkpointDir]) {
    assert.ok(existsSync(path.join(dir, 'samples.png')) && existsSync(path.join(dir, 'loss-curve.png')));
  }
  assert.ok(existsSync(path.join(result.lastCheckpointDir, 'optimizer.json')));
  const history = JSON.parse(readFileSync(path.join(base('reference').outDir, 'history.json'), 'utf8')) as RunHistory;
  assert.deepEqual(history.history.map((h) => h.epoch), [1, 2]);
  assert.equal(history.seed, 3);
});

test('the same seed reproduces the losses; another seed does not', async () => {
  const again = await run(base('same-seed', { epochs: 1 }));
  assert.deepEqual(steps(again.events).map((s) => s.losses), steps(reference.events).slice(0, 2).map((s) => s.losses));
  assert.deepEqual(again.result.history[0].val, reference.result.history[0].val);
  const other = await run(base('other-seed', { epochs: 1, seed: 4 }));
  assert.notDeepEqual(steps(other.events)[0].losses, steps(reference.events)[0].losses);
});

test('abort saves a checkpoint and ends with stopped; resume continues the numbering, optimizer state and losses', async () => {
  const controller = new AbortController();
  const opts = base('resume', {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'step' && e.step === 3) controller.abort();
    },
  });
  const stopped = await run(opts);
  const done = stopped.events.at(-1)!;
  assert.ok(done.type === 'done');
  assert.equal(done.reason, 'stopped');
  assert.equal(done.step, 3);
  assert.equal(done.epochsCompleted, 1);
  const meta = await readCheckpointMeta(path.join(opts.outDir, 'last'));
  assert.equal(meta.epoch, 1);
  assert.equal(meta.step, 3);

  // The saved Adam state: 3 iterations and non-zero moments.
  const optimizer = tf.train.adam(0.005);
  const loaded = await loadCheckpoint(path.join(opts.outDir, 'last'), { optimizer });
  assert.equal(loaded.optimizerRestored, true);
  const weights = await optimizer.getWeights();
  assert.equal(weights[0].name, 'iter');
  assert.equal(weights[0].tensor.dataSync()[0], 3);
  assert.ok(Array.from(weights[1].tensor.dataSync() as Float32Array).some((v) => v !== 0));
  weights[0].tensor.dispose();
  optimizer.dispose();
  loaded.cvae.dispose();

  const resumed = await run({ ...base('resume'), resume: true, seed: undefined, batchSize: undefined });
  const start = resumed.events[0];
  assert.ok(start.type === 'start');
  assert.equal(start.resumed, true);
  assert.equal(start.startEpoch, 2);
  assert.equal(start.startStep, 3);
  assert.equal(start.totalSteps, 4);
  assert.deepEqual(steps(resumed.events).map((s) => [s.epoch, s.step, s.epochStep]), [[2, 4, 2]]);
  // Same weights, same Adam moments, same batch order: the resumed step matches the uninterrupted run's step 4.
  const want = steps(reference.events)[3].losses;
  const got = steps(resumed.events)[0].losses;
  for (const k of ['total', 'bce', 'kl', 'ssim'] as const) {
    assert.ok(Math.abs(got[k] - want[k]) <= 1e-4 * Math.max(1, Math.abs(want[k])), `${k}: ${got[k]} vs ${want[k]}`);
  }
  // The val loss after step 4's update depends on the restored Adam moments and iteration count too.
  const wantVal = reference.result.history[1].val.total;
  const gotVal = resumed.result.history[1].val.total;
  assert.ok(Math.abs(gotVal - wantVal) <= 1e-5 * Math.abs(wantVal), `val after resume ${gotVal} vs uninterrupted ${wantVal}`);
  assert.deepEqual(resumed.result.history.map((h) => h.epoch), [1, 2]);
  assert.equal(resumed.result.history[0].val.total, stopped.result.history[0].val.total);
  assert.equal(resumed.result.reason, 'completed');
  assert.equal((await readCheckpointMeta(path.join(opts.outDir, 'last'))).epoch, 2);
});

test('early stopping ends the run after `patience` epochs without improvement and keeps the best checkpoint', async () => {
  // A high learning rate on few pictures makes the val loss bounce; patience 1 stops at the first bounce.
  const { result, events } = await run(base('early', { epochs: 30, patience: 1, learningRate: 0.05, batchSize: 14 }));
  assert.equal(result.reason, 'early-stop');
  assert.ok(result.epochsCompleted < 30);
  const lastEpoch = events.filter((e) => e.type === 'epoch').at(-1)!;
  assert.ok(lastEpoch.type === 'epoch');
  assert.equal(lastEpoch.best, false);
  assert.equal(lastEpoch.epochsSinceBest, 1);
  assert.equal(result.history.at(-1)!.epoch, result.epochsCompleted);
  assert.equal((await readCheckpointMeta(result.checkpointDir)).epoch, result.bestEpoch);
  assert.equal(result.checkpointDir, path.join(base('early').outDir, 'best'));
});

test('errors are reported as an error event and thrown', async () => {
  const events: TrainingEvent[] = [];
  await assert.rejects(train({ ...base('nothing-here'), resume: true, onEvent: (e) => events.push(e) }), /no checkpoint to resume/);
  assert.deepEqual(events.map((e) => e.type), ['error']);
  await assert.rejects(train({ ...base('bad-res'), preset: getPreset('demo') }), /64px/);
});

test('without a val split the training loss selects the best epoch', async () => {
  const noVal = createSyntheticMemoryDataset({ count: 6, resolution: preset.resolution, embeddingDim: preset.embeddingDim, seed: 2, valFraction: 0 });
  assert.equal(noVal.size('val'), 0);
  const { result } = await run(base('no-val', { source: noVal, epochs: 1, batchSize: 6 }));
  assert.equal(result.reason, 'completed');
  assert.deepEqual(result.history[0].val, result.history[0].train);
  assert.equal(result.bestValLoss, result.history[0].train.total);
});
