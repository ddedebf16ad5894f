import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPreset, parsePresetTable, presetNames } from '../../src/model/presets.js';
import { UserError } from '../../src/errors.js';

test('every preset of the contract exists and is consistent', () => {
  const names = presetNames();
  for (const n of ['64-image', '64-text', '128-image', '128-text', '128-image-nodropout', '128-text-nodropout', 'demo', 'tiny']) {
    assert.ok(names.includes(n), `missing preset ${n}`);
    const p = getPreset(n);
    assert.equal(p.name, n);
    // ViT-B/32's 512-d embeddings, except the demo's: the scene CLIP it is trained with projects to 128.
    assert.equal(p.embeddingDim, n === 'demo' ? 128 : 512);
    assert.ok(p.train.learningRate > 0 && p.train.batchSize > 0 && p.train.epochs > 0 && p.train.patience > 0);
  }
});

test('the seed presets follow the seed table: resolution, conditioning and dropout', () => {
  const expect: [string, number, string, number][] = [
    ['64-image', 64, 'image', 0.3],
    ['64-text', 64, 'text', 0.3],
    ['128-image', 128, 'image', 0.3],
    ['128-text', 128, 'text', 0.3],
    ['128-image-nodropout', 128, 'image', 0],
    ['128-text-nodropout', 128, 'text', 0],
  ];
  for (const [name, res, cond, dropout] of expect) {
    const p = getPreset(name);
    assert.deepEqual([p.resolution, p.conditioning, p.dropout, p.leakySlope, p.latentDim, p.condDim], [res, cond, dropout, 0.3, 128, 32], name);
    assert.deepEqual(p.decoder.reshape, res === 128 ? [8, 8, 256] : [4, 4, 1024], name);
  }
});

test('an unknown preset is a UserError that lists the known names', () => {
  assert.throws(() => getPreset('256-image'), (err: unknown) => err instanceof UserError && /128-image/.test(err.message));
});

test('getPreset returns a copy that callers may change', () => {
  const a = getPreset('tiny');
  a.train.epochs = 999;
  assert.notEqual(getPreset('tiny').train.epochs, 999);
});

test('preset tables reject inconsistent shapes and cyclic extends', () => {
  const base = {
    description: '', resolution: 16, conditioning: 'image', embeddingDim: 4,
    encoder: { convs: [{ filters: 2, kernel: 3, stride: 2 }], dense: [] },
    latentDim: 2, condDim: 2,
    decoder: { dense: 32, reshape: [4, 4, 2], convTranspose: [{ filters: 2, kernel: 3, stride: 2 }, { filters: 2, kernel: 3, stride: 2 }], outputKernel: 3 },
    leakySlope: 0.3, dropout: 0, batchNorm: { momentum: 0.9, epsilon: 1e-5 },
    train: { learningRate: 0.001, batchSize: 2, epochs: 1, patience: 1 },
  };
  assert.equal(parsePresetTable({ ok: base }).get('ok')?.resolution, 16);
  assert.throws(() => parsePresetTable({ bad: { ...base, decoder: { ...base.decoder, dense: 33 } } }), /must equal/);
  assert.throws(() => parsePresetTable({ bad: { ...base, resolution: 32 } }), /makes 16x16 images/);
  assert.throws(() => parsePresetTable({ bad: { ...base, conditioning: 'audio' } }), /invalid/);
  assert.throws(() => parsePresetTable({ a: { extends: 'b' }, b: { extends: 'a' } }), /cycle/);
  const t = parsePresetTable({ base, child: { extends: 'base', dropout: 0.2, train: { epochs: 7 } } }).get('child');
  assert.equal(t?.dropout, 0.2);
  assert.deepEqual(t?.train, { learningRate: 0.001, batchSize: 2, epochs: 7, patience: 1 });
});
