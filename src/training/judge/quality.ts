/**
 * The quality check of a text-conditioned checkpoint on the synthetic scene grammar, scored by the scene
 * judge: every prompt is embedded with the checkpoint's CLIP and sampled with several seeds, the judge reads
 * each image's sky, ground and species, and the report says per prompt and overall how often the image
 * shows what the prompt asked for, and how different the seeds of a prompt are compared with real renders
 * of the same sky and ground (seed diversity). `npm run quality` (scripts/quality-check.ts → quality-cli.ts)
 * runs it on a checkpoint folder; the functions here take fakes as well.
 */
import { Rng, GROUND_KINDS, SKY_KINDS, SPECIES, kindsMentioned, randomScene, renderScene } from '../data/synth/index.js';
import type { GroundKind, SkyKind, Species } from '../data/synth/index.js';
import type { JudgeScore, SceneLabels } from './scene-judge.js';

/** What the check needs from a sampler (any engine). */
export interface QualitySampler {
  readonly resolution: number;
  /** One uint8 RGB HWC image per (embedding, seed). */
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
}

/** What the check needs from a CLIP embedder. */
export interface QualityEmbedder {
  embedTexts(texts: string[]): Promise<Float32Array[]>;
}

/** What the check needs from the judge (`SceneJudge` or a fake). */
export interface ImageJudge {
  judge(images: readonly Uint8Array[]): SceneLabels[];
}

/**
 * A prompt with what its images should show. `sky` / `ground` are absent where the prompt names none (an
 * ad-hoc prompt): those images count for neither the sky nor the ground figures, nor for "both".
 */
export interface QualityPrompt {
  prompt: string;
  sky?: SkyKind;
  ground?: GroundKind;
  /** The species the prompt asks for; every other species should be absent. */
  species: readonly Species[];
}

const SPECIES_WORDS: Record<Species, RegExp> = {
  cow: /\b(cows?|cattle|calf|calves)\b/,
  sheep: /\b(sheep|lambs?|ewes?)\b/,
  horse: /\b(horses?|ponies|pony|foals?)\b/,
};

/** The species a text names ("two cows and a horse" → cow, horse), in SPECIES order. */
export function speciesMentioned(text: string): Species[] {
  const t = text.toLowerCase();
  return SPECIES.filter((s) => SPECIES_WORDS[s].test(t));
}

/** An ad-hoc prompt with the expectations its words give (`kindsMentioned` for sky and ground). */
export function adHocPrompt(text: string): QualityPrompt {
  const { sky, ground } = kindsMentioned(text);
  return { prompt: text, sky, ground, species: speciesMentioned(text) };
}

/** Mean absolute difference of two same-sized images over pixels and channels, 0–1. */
export function pixelDistance(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`images differ in size: ${a.length} and ${b.length} bytes`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / (255 * Math.max(1, a.length));
}

/** Mean pixel distance over all pairs of images (0 for fewer than two). */
export function meanPairwiseDistance(images: readonly Uint8Array[]): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < images.length; i++) {
    for (let j = i + 1; j < images.length; j++) {
      sum += pixelDistance(images[i], images[j]);
      pairs++;
    }
  }
  return pairs === 0 ? 0 : sum / pairs;
}

/**
 * `count` real renders of random scenes with the given sky and ground (either may be left open), drawn by
 * rejection from `randomScene` so that everything else is distributed as in the training data. Seeded.
 */
export function referenceRenders(kinds: { sky?: SkyKind; ground?: GroundKind }, count: number, size: number, seed: number): Uint8Array[] {
  const rng = new Rng(seed);
  const out: Uint8Array[] = [];
  for (let draws = 0; out.length < count; draws++) {
    if (draws > 1000 * (count + 1)) throw new Error(`no scene with sky ${kinds.sky} and ground ${kinds.ground} after ${draws} draws`);
    const scene = randomScene(rng.nextUint32());
    if ((kinds.sky && scene.sky !== kinds.sky) || (kinds.ground && scene.ground !== kinds.ground)) continue;
    out.push(renderScene(scene, size));
  }
  return out;
}

/** One sampled image, what it should show and what the judge saw. */
export interface QualityImage {
  prompt: string;
  seed: number;
  expected: QualityPrompt;
  got: SceneLabels;
}

/** Per-prompt outcome. Fractions are over the prompt's seeds; null where the prompt asks nothing of that kind. */
export interface PromptQuality {
  prompt: string;
  sky: SkyKind | null;
  ground: GroundKind | null;
  species: Species[];
  skyRight: number | null;
  groundRight: number | null;
  bothRight: number | null;
  /** Over (seed, asked species) pairs: judged present. */
  speciesPresent: number | null;
  /** Over (seed, species not asked) pairs: judged absent. */
  speciesAbsent: number | null;
  /** Mean pairwise pixel distance between the prompt's seeds. */
  seedDistance: number;
  /** The same among real renders sharing the prompt's sky and ground. */
  referenceDistance: number;
  /** seedDistance / referenceDistance. */
  diversity: number;
}

/** Result of `runQualityCheck`. Rates are null when nothing was asked of that kind. */
export interface QualityReport {
  prompts: number;
  seedsPerPrompt: number;
  images: number;
  /** Images whose sky and ground both match the prompt (over images whose prompt names both). */
  bothRight: number | null;
  skyRight: number | null;
  groundRight: number | null;
  /** Accuracy per asked kind (kinds never asked are left out). */
  perSky: Partial<Record<SkyKind, number>>;
  perGround: Partial<Record<GroundKind, number>>;
  /** Asked species judged present, over all (image, asked species) pairs. */
  speciesPresent: number | null;
  /** Species not asked judged absent, over all (image, other species) pairs. */
  speciesAbsent: number | null;
  /** Asked-and-present rate per species. */
  perSpeciesPresent: Partial<Record<Species, number>>;
  /** Mean over prompts of the seeds' pairwise distance, divided by the same mean for real renders. */
  diversity: number;
  meanSeedDistance: number;
  meanReferenceDistance: number;
  /** confusion[expected][judged] image counts. */
  skyConfusion: Record<SkyKind, Record<SkyKind, number>>;
  groundConfusion: Record<GroundKind, Record<GroundKind, number>>;
  perPrompt: PromptQuality[];
  items: QualityImage[];
}

/** Options of `runQualityCheck`. */
export interface QualityOptions {
  /** Sampling seeds used for every prompt (default 1..4). */
  seeds?: readonly number[];
  /** Prompts per sampler call (default 16). */
  batchPrompts?: number;
  /** Real renders per sky × ground combination for the diversity reference (default 16). */
  referenceRenders?: number;
  /** Seed of the reference renders (default 4242). */
  referenceSeed?: number;
}

/**
 * Samples every prompt with every seed, judges the images and scores them against the prompts.
 * @param sampler a text-conditioned model's sampler (64 px: the judge's resolution)
 * @param embedder the CLIP the model was trained with
 * @param judge reads sky, ground and species of an image
 * @param prompts prompts with what their images should show (`heldOutPrompts`, `adHocPrompt`)
 */
export async function runQualityCheck(
  sampler: QualitySampler,
  embedder: QualityEmbedder,
  judge: ImageJudge,
  prompts: readonly QualityPrompt[],
  opts: QualityOptions = {},
): Promise<QualityReport> {
  const seeds = opts.seeds ?? [1, 2, 3, 4];
  if (seeds.length === 0) throw new RangeError('at least one seed is needed');
  const batch = Math.max(1, opts.batchPrompts ?? 16);
  const items: QualityImage[] = [];
  const seedDistances: number[] = [];
  for (let start = 0; start < prompts.length; start += batch) {
    const chunk = prompts.slice(start, start + batch);
    const emb = await embedder.embedTexts(chunk.map((p) => p.prompt));
    const embeddings: Float32Array[] = [];
    const batchSeeds: number[] = [];
    chunk.forEach((_, i) => seeds.forEach((s) => (embeddings.push(emb[i]), batchSeeds.push(s))));
    const images = await sampler.sample(embeddings, batchSeeds);
    if (images.length !== embeddings.length) throw new Error(`the sampler returned ${images.length} images for ${embeddings.length} requests`);
    const verdicts = judge.judge(images);
    chunk.forEach((p, i) => {
      const mine = images.slice(i * seeds.length, (i + 1) * seeds.length);
      seedDistances.push(meanPairwiseDistance(mine));
      seeds.forEach((seed, k) => items.push({ prompt: p.prompt, seed, expected: p, got: verdicts[i * seeds.length + k] }));
    });
  }
  const referenceCache = new Map<string, number>();
  const reference = (p: QualityPrompt): number => {
    const key = `${p.sky ?? '*'}/${p.ground ?? '*'}`;
    let d = referenceCache.get(key);
    if (d === undefined) {
      const renders = referenceRenders(p, opts.referenceRenders ?? 16, sampler.resolution, (opts.referenceSeed ?? 4242) + referenceCache.size);
      d = meanPairwiseDistance(renders);
      referenceCache.set(key, d);
    }
    return d;
  };
  return summariseQuality(items, prompts, seeds.length, seedDistances, prompts.map(reference));
}

const rate = (hits: number, total: number): number | null => (total === 0 ? null : hits / total);

function confusion<K extends string>(kinds: readonly K[]): Record<K, Record<K, number>> {
  return Object.fromEntries(kinds.map((e) => [e, Object.fromEntries(kinds.map((g) => [g, 0]))])) as Record<K, Record<K, number>>;
}

/**
 * Aggregates judged images into the report (pure).
 * @param items judged images, grouped by prompt in `prompts` order, `seedsPerPrompt` each
 * @param seedDistances mean pairwise distance of each prompt's seeds
 * @param referenceDistances the same for real renders of each prompt's sky and ground
 */
export function summariseQuality(
  items: readonly QualityImage[],
  prompts: readonly QualityPrompt[],
  seedsPerPrompt: number,
  seedDistances: readonly number[],
  referenceDistances: readonly number[],
): QualityReport {
  const skyConfusion = confusion(SKY_KINDS);
  const groundConfusion = confusion(GROUND_KINDS);
  const totals = { sky: [0, 0], ground: [0, 0], both: [0, 0], present: [0, 0], absent: [0, 0] };
  const perSpecies = Object.fromEntries(SPECIES.map((s) => [s, [0, 0]])) as Record<Species, [number, number]>;
  const perPrompt: PromptQuality[] = prompts.map((p, i) => {
    const mine = items.slice(i * seedsPerPrompt, (i + 1) * seedsPerPrompt);
    const t = { sky: [0, 0], ground: [0, 0], both: [0, 0], present: [0, 0], absent: [0, 0] };
    for (const it of mine) {
      const s = it.got.sky === p.sky;
      const g = it.got.ground === p.ground;
      if (p.sky) {
        t.sky[0] += +s;
        t.sky[1]++;
        skyConfusion[p.sky][it.got.sky]++;
      }
      if (p.ground) {
        t.ground[0] += +g;
        t.ground[1]++;
        groundConfusion[p.ground][it.got.ground]++;
      }
      if (p.sky && p.ground) {
        t.both[0] += +(s && g);
        t.both[1]++;
      }
      for (const sp of SPECIES) {
        const present = it.got.species.includes(sp);
        if (p.species.includes(sp)) {
          t.present[0] += +present;
          t.present[1]++;
          perSpecies[sp][0] += +present;
          perSpecies[sp][1]++;
        } else {
          t.absent[0] += +!present;
          t.absent[1]++;
        }
      }
    }
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) {
      totals[k][0] += t[k][0];
      totals[k][1] += t[k][1];
    }
    const seedDistance = seedDistances[i] ?? 0;
    const referenceDistance = referenceDistances[i] ?? 0;
    return {
      prompt: p.prompt,
      sky: p.sky ?? null,
      ground: p.ground ?? null,
      species: [...p.species],
      skyRight: rate(t.sky[0], t.sky[1]),
      groundRight: rate(t.ground[0], t.ground[1]),
      bothRight: rate(t.both[0], t.both[1]),
      speciesPresent: rate(t.present[0], t.present[1]),
      speciesAbsent: rate(t.absent[0], t.absent[1]),
      seedDistance,
      referenceDistance,
      diversity: referenceDistance > 0 ? seedDistance / referenceDistance : 0,
    };
  });
  const rowAccuracy = <K extends string>(conf: Record<K, Record<K, number>>): Partial<Record<K, number>> =>
    Object.fromEntries(
      (Object.entries(conf) as [K, Record<K, number>][])
        .map(([k, row]) => [k, (Object.values(row) as number[]).reduce((a, b) => a + b, 0), row[k]] as const)
        .filter(([, total]) => total > 0)
        .map(([k, total, hit]) => [k, hit / total]),
    ) as Partial<Record<K, number>>;
  const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const meanSeedDistance = mean(perPrompt.map((p) => p.seedDistance));
  const meanReferenceDistance = mean(perPrompt.map((p) => p.referenceDistance));
  return {
    prompts: prompts.length,
    seedsPerPrompt,
    images: items.length,
    bothRight: rate(totals.both[0], totals.both[1]),
    skyRight: rate(totals.sky[0], totals.sky[1]),
    groundRight: rate(totals.ground[0], totals.ground[1]),
    perSky: rowAccuracy(skyConfusion),
    perGround: rowAccuracy(groundConfusion),
    speciesPresent: rate(totals.present[0], totals.present[1]),
    speciesAbsent: rate(totals.absent[0], totals.absent[1]),
    perSpeciesPresent: Object.fromEntries(
      SPECIES.filter((s) => perSpecies[s][1] > 0).map((s) => [s, perSpecies[s][0] / perSpecies[s][1]]),
    ) as Partial<Record<Species, number>>,
    diversity: meanReferenceDistance > 0 ? meanSeedDistance / meanReferenceDistance : 0,
    meanSeedDistance,
    meanReferenceDistance,
    skyConfusion,
    groundConfusion,
    perPrompt,
    items: [...items],
  };
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(0)}%`);
const pct1 = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);

function confusionTable<K extends string>(title: string, conf: Record<K, Record<K, number>>, kinds: readonly K[]): string {
  const w = 8;
  const lines = [`${title} (rows: prompt, columns: judged)`, ['', ...kinds].map((c) => c.padStart(w)).join('')];
  for (const r of kinds) {
    const row = kinds.map((c) => conf[r][c]);
    if (row.some((n) => n > 0)) lines.push([r, ...row.map(String)].map((c) => c.padStart(w)).join(''));
  }
  return lines.join('\n');
}

/**
 * The report as readable text: one row per prompt, then the overall figures and the confusion tables.
 * @param judgeScore the judge's own held-out score (judge.json), printed beside the figures it bounds
 */
export function formatQualityReport(r: QualityReport, judgeScore?: JudgeScore): string {
  const promptWidth = Math.min(60, Math.max(6, ...r.perPrompt.map((p) => p.prompt.length)));
  const cols = ['sky', 'ground', 'both', 'asked', 'others', 'div'];
  const lines = [
    `prompts ${r.prompts} x seeds ${r.seedsPerPrompt} = ${r.images} images (per prompt: sky right, ground right, both right, asked species present, other species absent, seed diversity)`,
    ['prompt'.padEnd(promptWidth), ...cols.map((c) => c.padStart(7))].join(''),
  ];
  for (const p of r.perPrompt) {
    const text = p.prompt.length > promptWidth ? `${p.prompt.slice(0, promptWidth - 1)}…` : p.prompt;
    lines.push(
      [text.padEnd(promptWidth), ...[p.skyRight, p.groundRight, p.bothRight, p.speciesPresent, p.speciesAbsent].map((x) => pct(x).padStart(7)), p.diversity.toFixed(2).padStart(7)].join(''),
    );
  }
  const judge = judgeScore
    ? (x: keyof Pick<JudgeScore, 'sky' | 'ground' | 'species'>) =>
        `   (judge's ${x === 'species' ? 'presence decisions' : x} on real renders: ${pct1(judgeScore[x])} right)`
    : () => '';
  lines.push(
    '',
    `sky and ground both right     ${pct1(r.bothRight)}`,
    `sky right                     ${pct1(r.skyRight)}${judge('sky')}`,
    `ground right                  ${pct1(r.groundRight)}${judge('ground')}`,
    `asked species present         ${pct1(r.speciesPresent)}${judge('species')}`,
    `other species absent          ${pct1(r.speciesAbsent)}`,
    `seed diversity                ${r.diversity.toFixed(2)} of real renders (pixel distance ${r.meanSeedDistance.toFixed(3)} vs ${r.meanReferenceDistance.toFixed(3)})`,
    '',
    `per sky:     ${Object.entries(r.perSky).map(([k, v]) => `${k} ${pct1(v as number)}`).join('  ')}`,
    `per ground:  ${Object.entries(r.perGround).map(([k, v]) => `${k} ${pct1(v as number)}`).join('  ')}`,
    `per species: ${Object.entries(r.perSpeciesPresent).map(([k, v]) => `${k} ${pct1(v as number)}`).join('  ')} present when asked`,
    '',
    confusionTable('sky', r.skyConfusion, SKY_KINDS),
    '',
    confusionTable('ground', r.groundConfusion, GROUND_KINDS),
    '',
  );
  return lines.join('\n');
}
