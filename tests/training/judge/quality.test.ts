import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANIMAL_SCALE,
  COATS,
  GROUND_KINDS,
  Rng,
  heldOutPrompts,
  randomScene,
  renderScene,
  type GroundKind,
  type Scene,
  type SkyKind,
  type Species,
} from '../../../src/training/data/synth/index.js';
import {
  adHocPrompt,
  formatQualityReport,
  meanPairwiseDistance,
  pixelDistance,
  referenceRenders,
  runQualityCheck,
  speciesMentioned,
  type ImageJudge,
  type QualityEmbedder,
  type QualityPrompt,
  type QualitySampler,
} from '../../../src/training/judge/quality.js';
import { sceneLabels, type SceneLabels } from '../../../src/training/judge/scene-judge.js';

const SIZE = 64;

/**
 * A sampler that draws real renders: `draw(prompt, seed)` picks the scene. The embedder hands the sampler the
 * prompt's index as its "embedding", and the judge reads back the labels of the scene each image was rendered
 * from (so these tests check the report's arithmetic, not the judge).
 */
function fakes(prompts: readonly QualityPrompt[], draw: (p: QualityPrompt, seed: number) => Scene) {
  const truth = new Map<Uint8Array, SceneLabels>();
  const embedder: QualityEmbedder = {
    embedTexts: async (texts) => texts.map((t) => Float32Array.of(prompts.findIndex((p) => p.prompt === t))),
  };
  const sampler: QualitySampler = {
    resolution: SIZE,
    sample: async (embeddings, seeds) =>
      embeddings.map((e, i) => {
        const scene = draw(prompts[e[0]], seeds[i]);
        const image = renderScene(scene, SIZE);
        truth.set(image, sceneLabels(scene));
        return image;
      }),
  };
  const judge: ImageJudge = {
    judge: (images) =>
      images.map((img) => {
        const labels = truth.get(img);
        assert.ok(labels, 'the judge is only asked about sampled images');
        return labels;
      }),
  };
  return { embedder, sampler, judge };
}

/** A random scene with this sky and ground (rejection from randomScene), seeded. */
function sceneWith(sky: SkyKind, ground: GroundKind, seed: number): Scene {
  const rng = new Rng(seed);
  for (;;) {
    const s = randomScene(rng.nextUint32());
    if (s.sky === sky && s.ground === ground) return s;
  }
}

/** The scene with exactly one animal of each of `species` (and no others). */
function withAnimals(scene: Scene, species: readonly Species[]): Scene {
  const y = scene.horizon + 0.6 * (0.84 - scene.horizon);
  return {
    ...scene,
    animals: species.map((sp, k) => ({
      species: sp, coat: COATS[sp][0], x: 0.2 + 0.3 * k, y, size: ANIMAL_SCALE[sp] * (y - scene.horizon), facing: 1 as const,
    })),
  };
}

const prompts = heldOutPrompts(11, 16);
const promptSeed = (p: QualityPrompt) => prompts.findIndex((q) => q.prompt === p.prompt) * 1000;

test('pixel distance: 0 for equal images, 1 for black against white, symmetric mean of pairs', () => {
  const black = new Uint8Array(12);
  const white = new Uint8Array(12).fill(255);
  const grey = new Uint8Array(12).fill(51);
  assert.equal(pixelDistance(black, black), 0);
  assert.equal(pixelDistance(black, white), 1);
  assert.ok(Math.abs(pixelDistance(white, grey) - 0.8) < 1e-12);
  assert.ok(Math.abs(meanPairwiseDistance([black, white, grey]) - (1 + 0.2 + 0.8) / 3) < 1e-12);
  assert.equal(meanPairwiseDistance([white]), 0);
  assert.throws(() => pixelDistance(black, new Uint8Array(3)), /differ in size/);
});

test('real renders of the asked sky and ground: both right, diversity close to 1', async () => {
  const { embedder, sampler, judge } = fakes(prompts, (p, seed) => sceneWith(p.sky!, p.ground!, promptSeed(p) + seed));
  const r = await runQualityCheck(sampler, embedder, judge, prompts, { seeds: [1, 2, 3, 4], batchPrompts: 5 });
  assert.equal(r.images, 64);
  assert.equal(r.prompts, 16);
  assert.equal(r.bothRight, 1);
  assert.equal(r.skyRight, 1);
  assert.equal(r.groundRight, 1);
  assert.deepEqual(Object.keys(r.perGround).sort(), [...GROUND_KINDS].sort(), 'every ground is asked by 16 balanced prompts');
  assert.ok(Math.abs(r.diversity - 1) < 0.15, `diversity of real renders against real renders: ${r.diversity}`);
  assert.equal(r.perPrompt.length, 16);
  assert.ok(r.perPrompt.every((p) => p.bothRight === 1 && p.referenceDistance > 0));
  const table = formatQualityReport(r, { images: 10, sky: 0.99, ground: 0.98, species: 0.93, perSpecies: { cow: 0.9, sheep: 0.95, horse: 0.94 } });
  assert.match(table, /sky and ground both right\s+100\.0%/);
  assert.match(table, /judge's presence decisions on real renders: 93\.0% right/);
  assert.ok(table.includes(prompts[0].prompt.slice(0, 40)), 'one row per prompt');
});

test('the same image for every seed: seed diversity 0', async () => {
  const { embedder, sampler, judge } = fakes(prompts, (p) => sceneWith(p.sky!, p.ground!, promptSeed(p)));
  const r = await runQualityCheck(sampler, embedder, judge, prompts, { seeds: [1, 2, 3] });
  assert.equal(r.diversity, 0);
  assert.equal(r.meanSeedDistance, 0);
  assert.ok(r.meanReferenceDistance > 0.02, `real renders differ: ${r.meanReferenceDistance}`);
  assert.equal(r.bothRight, 1);
});

test('a sampler drawing the wrong ground and no animals: ground 0%, both 0%, sky 100%, asked species absent', async () => {
  const wrong = (g: GroundKind) => GROUND_KINDS[(GROUND_KINDS.indexOf(g) + 1) % GROUND_KINDS.length];
  const { embedder, sampler, judge } = fakes(prompts, (p, seed) => withAnimals(sceneWith(p.sky!, wrong(p.ground!), promptSeed(p) + seed), []));
  const r = await runQualityCheck(sampler, embedder, judge, prompts, { seeds: [1, 2] });
  assert.equal(r.groundRight, 0);
  assert.equal(r.bothRight, 0);
  assert.equal(r.skyRight, 1);
  assert.equal(r.speciesPresent, 0);
  assert.equal(r.speciesAbsent, 1);
  assert.equal(r.groundConfusion.grass.snow, prompts.filter((p) => p.ground === 'grass').length * 2);
});

test('species: the asked ones drawn → present 100%, absent 100%; every species drawn → others absent 0%', async () => {
  const asked = fakes(prompts, (p, seed) => withAnimals(sceneWith(p.sky!, p.ground!, promptSeed(p) + seed), p.species));
  const r = await runQualityCheck(asked.sampler, asked.embedder, asked.judge, prompts, { seeds: [1, 2] });
  assert.equal(r.speciesPresent, 1);
  assert.equal(r.speciesAbsent, 1);
  assert.equal(r.bothRight, 1);
  const all: Species[] = ['cow', 'sheep', 'horse'];
  const every = fakes(prompts, (p, seed) => withAnimals(sceneWith(p.sky!, p.ground!, promptSeed(p) + seed), all));
  const r2 = await runQualityCheck(every.sampler, every.embedder, every.judge, prompts, { seeds: [1] });
  assert.equal(r2.speciesPresent, 1);
  assert.equal(r2.speciesAbsent, 0);
  assert.ok(prompts.some((p) => p.species.length < 3), 'some prompt leaves a species out');
});

test('ad-hoc prompts: expectations from their words; unnamed kinds are left out of the figures', async () => {
  assert.deepEqual(adHocPrompt('two cows and a horse in the snow at night'), {
    prompt: 'two cows and a horse in the snow at night', sky: 'night', ground: 'snow', species: ['cow', 'horse'],
  });
  assert.deepEqual(speciesMentioned('a lamb and three Sheep'), ['sheep']);
  const adHoc = [adHocPrompt('a sheep on green grass'), adHocPrompt('an empty picture')];
  assert.equal(adHoc[0].sky, undefined);
  const { embedder, sampler, judge } = fakes(adHoc, (p, seed) => withAnimals(sceneWith('blue', p.ground ?? 'sand', seed), p.species));
  const r = await runQualityCheck(sampler, embedder, judge, adHoc, { seeds: [1, 2] });
  assert.equal(r.skyRight, null, 'no prompt names a sky');
  assert.equal(r.bothRight, null);
  assert.equal(r.groundRight, 1, 'only the first prompt names a ground');
  assert.equal(r.perPrompt[1].groundRight, null);
  assert.equal(r.speciesPresent, 1);
  assert.equal(r.speciesAbsent, 1);
});

test('reference renders share the asked sky and ground and differ from each other', () => {
  const renders = referenceRenders({ sky: 'night', ground: 'sand' }, 3, SIZE, 5);
  assert.equal(renders.length, 3);
  assert.ok(meanPairwiseDistance(renders) > 0);
  assert.deepEqual(referenceRenders({ sky: 'night', ground: 'sand' }, 3, SIZE, 5), renders, 'seeded');
});
