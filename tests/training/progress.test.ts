import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { formatDuration, remainingImages, ThroughputMeter } from '../../src/training/throughput.js';
import { lossCurvePng, lossCurveSvg, niceTicks } from '../../src/training/loss-curve.js';
import { describeEvent, TrainingProgressBar } from '../../src/training/progress-bar.js';
import { parseEventLine, formatEventLine, type TrainingEvent } from '../../src/training/events.js';

test('ThroughputMeter: rate from images over time, smoothed; ETA from remaining images', () => {
  const m = new ThroughputMeter(0.5);
  m.mark(0);
  assert.equal(m.record(10, 1000), 10);
  assert.equal(m.record(30, 2000), 20); // 10 + 0.5 * (30 - 10)
  assert.equal(m.etaSec(100), 5);
  assert.equal(m.etaSec(0), 0);
  assert.equal(new ThroughputMeter().etaSec(5), Infinity);
  assert.equal(remainingImages({ epochIndex: 1, epochs: 4, imagesDoneInEpoch: 30, imagesPerEpoch: 100 }), 70 + 200);
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(Infinity), '?');
});

test('niceTicks are round numbers inside the range', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(1.3, 4.1, 3), [2, 3, 4]);
});

test('loss curve: SVG has one polyline per series; PNG has the asked size', async () => {
  const pts = [1, 2, 3].map((epoch) => ({ epoch, train: 10 / epoch, val: 12 / epoch }));
  const svg = lossCurveSvg(pts, { title: 'a <b>' });
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
  assert.ok(svg.includes('a &lt;b&gt;'));
  const png = await lossCurvePng(pts, { width: 320, height: 200 });
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 320);
  assert.equal(meta.height, 200);
  // single point and non-finite values render too
  await lossCurvePng([{ epoch: 1, train: 5, val: Number.NaN }]);
});

const losses = { total: 100.5, bce: 90, kl: 20, ssim: 0.5 };
const events: TrainingEvent[] = [
  {
    type: 'start', preset: 'tiny', resolution: 16, conditioning: 'image', epochs: 2, startEpoch: 1, startStep: 0, batchSize: 4,
    learningRate: 0.001, seed: 1, clipNorm: null, patience: 2, trainSize: 8, valSize: 2, stepsPerEpoch: 2, totalSteps: 4,
    trainableParams: 1234, datasetFingerprint: 'x', resumed: false, outDir: '/tmp/x', backend: 'cpu',
  },
  { type: 'step', epoch: 1, step: 1, totalSteps: 4, epochStep: 1, stepsPerEpoch: 2, losses, imagesPerSec: 12.5, etaSec: 3 },
  {
    type: 'epoch', epoch: 1, epochs: 2, step: 2, train: losses, val: losses, best: true, bestValLoss: 100.5, bestEpoch: 1,
    epochsSinceBest: 0, samplePng: 'a.png', lossCurvePng: 'b.png', checkpointDir: '/tmp/x/last', durationSec: 1,
  },
  { type: 'done', reason: 'completed', bestValLoss: 100.5, bestEpoch: 1, epochsCompleted: 2, step: 4, checkpointDir: '/tmp/x/best', lastCheckpointDir: '/tmp/x/last' },
];

test('event lines round-trip; non-event lines are skipped', () => {
  for (const e of events) assert.deepEqual(parseEventLine(formatEventLine(e)), e);
  assert.equal(parseEventLine(''), null);
  assert.equal(parseEventLine('{"level":30,"msg":"hi"}'), null);
  assert.equal(parseEventLine('{not json'), null);
});

test('progress bar writes readable lines (non-TTY and TTY)', async () => {
  for (const tty of [false, true]) {
    const stream = new PassThrough();
    let out = '';
    stream.on('data', (d: Buffer) => (out += d.toString()));
    const bar = new TrainingProgressBar({ stream, tty });
    for (const e of events) bar.handle(e);
    bar.stop();
    assert.match(out, /training tiny \(16px/);
    assert.match(out, /epoch 1\/2: train total 100\.5/);
    assert.match(out, /\[best\]/);
    assert.match(out, /done \(completed\) after 2 epochs/);
  }
  assert.match(describeEvent({ type: 'error', message: 'boom' }), /failed: boom/);
});
