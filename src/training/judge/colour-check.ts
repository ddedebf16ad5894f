/**
 * The colour-heuristic check that `npm run quality` ran before the scene judge: `classifyColours` reads the
 * top band's sky and the bottom band's ground of each image by nearest palette colour. Kept for
 * tests/demo/demo-model.test.ts, which imports it through scripts/quality-check.ts; new code uses quality.ts,
 * which also judges species and seed diversity with a trained judge.
 */
import {
  GROUND_KINDS,
  HELD_OUT_SKIES,
  SKY_KINDS,
  classifyColours,
  type GroundKind,
  type HeldOutPrompt,
  type SkyKind,
} from '../data/synth/index.js';

/** What the check needs from a sampler (any engine). */
interface ColourSampler {
  readonly resolution: number;
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
}

/** What the check needs from a CLIP embedder. */
interface ColourEmbedder {
  embedTexts(texts: string[]): Promise<Float32Array[]>;
}

/** Per-image outcome of the check. */
export interface ColourCheckItem {
  prompt: string;
  seed: number;
  expected: { sky: SkyKind; ground: GroundKind };
  got: { sky: SkyKind; ground: GroundKind };
}

/** Result of `runColourCheck`. */
export interface ColourCheckReport {
  prompts: number;
  seedsPerPrompt: number;
  images: number;
  /** Fraction of images whose sky and ground both match the prompt (the quality figure). */
  bothMatch: number;
  skyMatch: number;
  groundMatch: number;
  /** Fraction of prompts whose majority over seeds matches on both (ties count as misses). */
  promptMajorityBothMatch: number;
  /** Accuracy per expected kind. */
  perSky: Partial<Record<SkyKind, number>>;
  perGround: Partial<Record<GroundKind, number>>;
  /** confusion[expected][got] = count of images. */
  skyConfusion: Record<string, Record<string, number>>;
  groundConfusion: Record<string, Record<string, number>>;
  items: ColourCheckItem[];
}

/** Options of `runColourCheck`. */
export interface ColourCheckOptions {
  /** Sampling seeds used for every prompt (default 1..4). */
  seeds?: number[];
  /** Prompts per decoder batch (default 16). */
  batchPrompts?: number;
}

function emptyConfusion(expected: readonly string[], got: readonly string[]): Record<string, Record<string, number>> {
  return Object.fromEntries(expected.map((e) => [e, Object.fromEntries(got.map((g) => [g, 0]))]));
}

/**
 * Samples every prompt with every seed and scores the colours of the images against the prompts.
 * @param sampler a text-conditioned model's sampler
 * @param embedder the CLIP the model was trained with
 * @param prompts held-out prompts with their expected kinds (see `heldOutPrompts`)
 */
export async function runColourCheck(
  sampler: ColourSampler,
  embedder: ColourEmbedder,
  prompts: readonly HeldOutPrompt[],
  opts: ColourCheckOptions = {},
): Promise<ColourCheckReport> {
  const seeds = opts.seeds ?? [1, 2, 3, 4];
  if (seeds.length === 0) throw new RangeError('at least one seed is needed');
  const batch = Math.max(1, opts.batchPrompts ?? 16);
  const size = sampler.resolution;
  const items: ColourCheckItem[] = [];
  for (let start = 0; start < prompts.length; start += batch) {
    const chunk = prompts.slice(start, start + batch);
    const emb = await embedder.embedTexts(chunk.map((p) => p.prompt));
    const embeddings: Float32Array[] = [];
    const batchSeeds: number[] = [];
    chunk.forEach((_, i) => seeds.forEach((s) => (embeddings.push(emb[i]), batchSeeds.push(s))));
    const images = await sampler.sample(embeddings, batchSeeds);
    images.forEach((img, k) => {
      const p = chunk[Math.floor(k / seeds.length)];
      items.push({ prompt: p.prompt, seed: batchSeeds[k], expected: { sky: p.sky, ground: p.ground }, got: classifyColours(img, size) });
    });
  }
  return summariseColours(items, prompts.length, seeds.length);
}

/** Aggregates per-image outcomes into the report's fractions and confusion tables. */
export function summariseColours(items: ColourCheckItem[], promptCount: number, seedsPerPrompt: number): ColourCheckReport {
  const n = Math.max(1, items.length);
  const skyConfusion = emptyConfusion(SKY_KINDS, SKY_KINDS);
  const groundConfusion = emptyConfusion(GROUND_KINDS, GROUND_KINDS);
  let both = 0;
  let sky = 0;
  let ground = 0;
  const perPrompt = new Map<string, { hits: number; total: number }>();
  for (const it of items) {
    const s = it.got.sky === it.expected.sky;
    const g = it.got.ground === it.expected.ground;
    sky += +s;
    ground += +g;
    both += +(s && g);
    skyConfusion[it.expected.sky][it.got.sky] += 1;
    groundConfusion[it.expected.ground][it.got.ground] += 1;
    const pp = perPrompt.get(it.prompt) ?? { hits: 0, total: 0 };
    pp.hits += +(s && g);
    pp.total += 1;
    perPrompt.set(it.prompt, pp);
  }
  const rowAccuracy = (conf: Record<string, Record<string, number>>) =>
    Object.fromEntries(
      Object.entries(conf)
        .map(([k, row]) => [k, Object.values(row).reduce((a, b) => a + b, 0), row[k]] as const)
        .filter(([, total]) => total > 0)
        .map(([k, total, hit]) => [k, hit / total]),
    );
  const majority = [...perPrompt.values()].filter((p) => p.hits * 2 > p.total).length;
  return {
    prompts: promptCount,
    seedsPerPrompt,
    images: items.length,
    bothMatch: both / n,
    skyMatch: sky / n,
    groundMatch: ground / n,
    promptMajorityBothMatch: majority / Math.max(1, perPrompt.size),
    perSky: rowAccuracy(skyConfusion),
    perGround: rowAccuracy(groundConfusion),
    skyConfusion,
    groundConfusion,
    items,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function confusionTable(title: string, conf: Record<string, Record<string, number>>, rows: readonly string[], cols: readonly string[]): string {
  const w = 8;
  const lines = [`${title} (rows: prompt, columns: generated)`, ['', ...cols].map((c) => c.padStart(w)).join('')];
  for (const r of rows) lines.push([r, ...cols.map((c) => String(conf[r][c]))].map((c) => c.padStart(w)).join(''));
  return lines.join('\n');
}

/** The report as a human-readable table. */
export function formatColourReport(r: ColourCheckReport): string {
  return [
    `held-out prompts ${r.prompts} x seeds ${r.seedsPerPrompt} = ${r.images} images`,
    `sky and ground both match   ${pct(r.bothMatch)}`,
    `sky matches                 ${pct(r.skyMatch)}`,
    `ground matches              ${pct(r.groundMatch)}`,
    `prompts, majority of seeds  ${pct(r.promptMajorityBothMatch)}`,
    '',
    `per sky:    ${Object.entries(r.perSky).map(([k, v]) => `${k} ${pct(v)}`).join('  ')}`,
    `per ground: ${Object.entries(r.perGround).map(([k, v]) => `${k} ${pct(v)}`).join('  ')}`,
    '',
    confusionTable('sky', r.skyConfusion, HELD_OUT_SKIES, SKY_KINDS),
    '',
    confusionTable('ground', r.groundConfusion, GROUND_KINDS, GROUND_KINDS),
    '',
  ].join('\n');
}
