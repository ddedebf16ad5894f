import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../src/model/backend.js';
import { UserError } from '../../../src/errors.js';
import { repoRoot } from '../../../src/paths.js';
import { ANIMAL_SCALE, SPECIES, randomScene, type Scene } from '../../../src/training/data/synth/index.js';
import {
  JUDGE_INFO_FILE,
  SPECIES_GRID,
  SceneJudge,
  sceneLabels,
  scoreVerdicts,
  speciesMap,
  type SceneLabels,
} from '../../../src/training/judge/scene-judge.js';
import { JUDGE_HELD_OUT_SEED, JUDGE_TRAIN_SEED, renderJudgeScenes, renderedImage, trainSceneJudge } from '../../../src/training/judge/train-judge.js';

await initBackend();

const SHIPPED = path.join(repoRoot, 'models', 'scene-judge');
/** Seed of the renders scored here: neither the judge's training (9001) nor its recorded held-out set (9002). */
const TEST_SEED = 31337;

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'judge-test-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('the shipped judge reads fresh held-out renders: sky ≥ 95%, ground ≥ 95%, species presence ≥ 90%', async () => {
  assert.notEqual(TEST_SEED, JUDGE_TRAIN_SEED);
  assert.notEqual(TEST_SEED, JUDGE_HELD_OUT_SEED);
  const judge = await SceneJudge.load(SHIPPED);
  try {
    const set = renderJudgeScenes(TEST_SEED, 500);
    const verdicts = judge.judge(set.labels.map((_, i) => renderedImage(set, i)));
    const score = scoreVerdicts(verdicts, set.labels);
    assert.ok(score.sky >= 0.95, `sky ${score.sky}`);
    assert.ok(score.ground >= 0.95, `ground ${score.ground}`);
    assert.ok(score.species >= 0.9, `species ${score.species} (${JSON.stringify(score.perSpecies)})`);
    // Presence is not the base rate: the judge says "present" for most images that have the species.
    const withCow = set.labels.map((l, i) => [l, verdicts[i]] as const).filter(([l]) => l.species.includes('cow'));
    assert.ok(withCow.length > 50);
    assert.ok(withCow.filter(([, v]) => v.species.includes('cow')).length / withCow.length >= 0.8);
    // judge.json records the score and the recipe it was trained with.
    assert.ok(judge.info.heldOut.species >= 0.9 && judge.info.heldOut.seed === JUDGE_HELD_OUT_SEED);
    assert.equal(judge.info.recipe.seed, JUDGE_TRAIN_SEED);
    const bytes = (await fsp.stat(path.join(SHIPPED, 'weights.bin'))).size;
    assert.ok(bytes < 1_000_000, `weights.bin is ${bytes} bytes`);
  } finally {
    judge.dispose();
  }
});

test('verdicts carry probabilities that sum to one per kind', async () => {
  const judge = await SceneJudge.load(SHIPPED);
  try {
    const set = renderJudgeScenes(TEST_SEED + 1, 2);
    const [v] = judge.judge([renderedImage(set, 0)]);
    assert.ok(Math.abs(Object.values(v.skyProbs).reduce((a, b) => a + b, 0) - 1) < 1e-4);
    assert.ok(Math.abs(Object.values(v.groundProbs).reduce((a, b) => a + b, 0) - 1) < 1e-4);
    assert.equal(Object.keys(v.speciesProbs).length, 3);
    assert.throws(() => judge.judge([new Uint8Array(10)]), (err: unknown) => err instanceof UserError && /64x64 RGB/.test(err.message));
  } finally {
    judge.dispose();
  }
});

test('labels and scores: species present once each, accuracy per decision', () => {
  const scene = { sky: 'night', ground: 'snow', animals: [{ species: 'horse' }, { species: 'cow' }, { species: 'horse' }] } as Scene;
  assert.deepEqual(sceneLabels(scene), { sky: 'night', ground: 'snow', species: ['cow', 'horse'] });
  const truth: SceneLabels[] = [
    { sky: 'blue', ground: 'grass', species: ['cow'] },
    { sky: 'night', ground: 'sand', species: [] },
  ];
  const said: SceneLabels[] = [
    { sky: 'blue', ground: 'snow', species: ['cow', 'sheep'] },
    { sky: 'cloudy', ground: 'sand', species: [] },
  ];
  const s = scoreVerdicts(said, truth);
  assert.deepEqual([s.sky, s.ground], [0.5, 0.5]);
  assert.equal(s.species, 5 / 6);
  assert.deepEqual(s.perSpecies, { cow: 1, sheep: 0.5, horse: 1 });
});

test('species map: marks the cells under an animal, in its species channel, mirrored with the image', () => {
  const y = 0.8;
  const animal = { species: 'sheep' as const, coat: 'white' as const, x: 0.2, y, size: ANIMAL_SCALE.sheep * 0.3, facing: 1 as const };
  const map = speciesMap({ animals: [animal] });
  const at = (m: Float32Array, row: number, col: number, k: number) => m[(row * SPECIES_GRID + col) * SPECIES.length + k];
  const sheep = SPECIES.indexOf('sheep');
  const row = Math.floor((y - 0.3 * 0.68 * ANIMAL_SCALE.sheep * 0.5) * SPECIES_GRID);
  assert.equal(at(map, row, 1, sheep), 1, 'the cell of the body');
  assert.equal(at(map, row, 1, SPECIES.indexOf('cow')), 0, 'other species channels stay empty');
  assert.equal(at(map, 1, 6, sheep), 0, 'far from the animal');
  const flipped = speciesMap({ animals: [animal] }, true);
  assert.equal(at(flipped, row, SPECIES_GRID - 2, sheep), 1);
  assert.equal(map.reduce((a, b) => a + b, 0), flipped.reduce((a, b) => a + b, 0));
  assert.equal(speciesMap(randomScene(5)).length, SPECIES_GRID * SPECIES_GRID * 3);
});

test('a tiny training run saves a judge that loads back and reads the same', async () => {
  const dir = path.join(root, 'tiny-judge');
  const events: string[] = [];
  const judge = await trainSceneJudge({ images: 48, epochs: 1, batchSize: 16, heldOutImages: 8, onEvent: (e) => events.push(e.type) });
  await judge.save(dir);
  assert.deepEqual([...new Set(events)], ['render', 'start', 'step', 'epoch', 'evaluate']);
  assert.equal(judge.info.heldOut.images, 8);
  assert.equal(judge.info.recipe.images, 48);
  const info = JSON.parse(await fsp.readFile(path.join(dir, JUDGE_INFO_FILE), 'utf8'));
  assert.equal(info.format, 'scene-judge/1');
  const loaded = await SceneJudge.load(dir);
  try {
    const set = renderJudgeScenes(TEST_SEED, 3);
    const images = set.labels.map((_, i) => renderedImage(set, i));
    const a = judge.judge(images);
    const b = loaded.judge(images);
    a.forEach((v, i) => assert.ok(Math.abs(v.speciesProbs.cow - b[i].speciesProbs.cow) < 1e-5));
  } finally {
    judge.dispose();
    loaded.dispose();
  }
});

test('loading a folder without a judge is a UserError that says how to make one', async () => {
  await assert.rejects(SceneJudge.load(path.join(root, 'nowhere')), (err: unknown) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /No scene judge in .*nowhere/);
    assert.match(err.message, /judge train --out/);
    return true;
  });
});
