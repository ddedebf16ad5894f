/**
 * Colour quality check of a text-conditioned checkpoint on the synthetic scene grammar (a script, not a test):
 *
 *   npm run quality -- [--checkpoint models/demo] [--prompts 120] [--seeds 4] [--prompt-seed 7]
 *                      [--synth-seed 1 --synth-count 4000] [--json FILE] [--engine auto|onnx|tfjs]
 *
 * Draws held-out prompts from the scene grammar (grounds grass / snow / sand / field × skies blue / sunset /
 * night, balanced; prompts that appear verbatim among the training captions are left out — the training
 * captions are rebuilt from the synthetic dataset's seed and count, a pure function), embeds them with the
 * checkpoint's CLIP, samples each with several seeds, classifies each image's sky band and ground band with
 * `classifyColours`, and reports the fraction of images whose sky and ground both match the prompt, with
 * per-kind accuracy and confusion tables. Prints a table; `--json` also writes the full result.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { resolveRecordedClipModel } from '../src/model/clip/model-source.js';
import { createSampler, type SamplerEngine } from '../src/model/sampler-factory.js';
import { repoRoot } from '../src/paths.js';
import {
  GROUND_KINDS,
  HELD_OUT_SKIES,
  SKY_KINDS,
  classifyColours,
  heldOutPrompts,
  synthItem,
  type GroundKind,
  type HeldOutPrompt,
  type SkyKind,
} from '../src/training/data/synth/index.js';

/** What the check needs from a sampler (any engine). */
export interface QualitySampler {
  readonly resolution: number;
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
}

/** What the check needs from a CLIP embedder. */
export interface QualityEmbedder {
  embedTexts(texts: string[]): Promise<Float32Array[]>;
}

/** Per-image outcome of the check. */
export interface QualityItem {
  prompt: string;
  seed: number;
  expected: { sky: SkyKind; ground: GroundKind };
  got: { sky: SkyKind; ground: GroundKind };
}

/** Result of `runQualityCheck`. */
export interface QualityReport {
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
  items: QualityItem[];
}

/** Options of `runQualityCheck`. */
export interface QualityOptions {
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
export async function runQualityCheck(
  sampler: QualitySampler,
  embedder: QualityEmbedder,
  prompts: readonly HeldOutPrompt[],
  opts: QualityOptions = {},
): Promise<QualityReport> {
  const seeds = opts.seeds ?? [1, 2, 3, 4];
  if (seeds.length === 0) throw new RangeError('at least one seed is needed');
  const batch = Math.max(1, opts.batchPrompts ?? 16);
  const size = sampler.resolution;
  const items: QualityItem[] = [];
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
  return summarise(items, prompts.length, seeds.length);
}

/** Aggregates per-image outcomes into the report's fractions and confusion tables. */
export function summarise(items: QualityItem[], promptCount: number, seedsPerPrompt: number): QualityReport {
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

/** Every caption of the first `count` images of the synthetic dataset drawn with `seed` (a pure function). */
export function synthCaptions(seed: number, count: number): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < count; i++) for (const c of synthItem(seed, i).captions) out.add(c);
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function confusionTable(title: string, conf: Record<string, Record<string, number>>, rows: readonly string[], cols: readonly string[]): string {
  const w = 8;
  const lines = [`${title} (rows: prompt, columns: generated)`, ['', ...cols].map((c) => c.padStart(w)).join('')];
  for (const r of rows) lines.push([r, ...cols.map((c) => String(conf[r][c]))].map((c) => c.padStart(w)).join(''));
  return lines.join('\n');
}

/** The report as a human-readable table. */
export function formatReport(r: QualityReport): string {
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

async function main(argv: string[]): Promise<void> {
  const program = new Command('quality-check')
    .description('colour match of a text-conditioned checkpoint on held-out prompts of the synthetic scene grammar')
    .option('--checkpoint <dir>', 'checkpoint folder', path.join(repoRoot, 'models', 'demo'))
    .option('--prompts <n>', 'held-out prompts (a multiple of 12 is balanced)', '120')
    .option('--seeds <n>', 'sampling seeds per prompt', '4')
    .option('--prompt-seed <n>', 'seed of the held-out prompt draw', '7')
    .option('--synth-seed <n>', 'seed of the synthetic training set (its captions are excluded)', '1')
    .option('--synth-count <n>', 'images in the synthetic training set (0: exclude nothing)', '4000')
    .option('--clip-model <idOrDir>', 'CLIP model (default: the one the checkpoint records)')
    .option('--engine <name>', 'sampler engine: auto, onnx or tfjs', 'auto')
    .option('--json <file>', 'also write the report as JSON')
    .parse(argv);
  const o = program.opts<{
    checkpoint: string; prompts: string; seeds: string; promptSeed: string; synthSeed: string; synthCount: string;
    clipModel?: string; engine: SamplerEngine; json?: string;
  }>();
  const { initBackend } = await import('../src/model/backend.js');
  await initBackend();
  const sampler = await createSampler(o.checkpoint, { engine: o.engine });
  const embedder = await ClipEmbedder.load({ model: o.clipModel ?? resolveRecordedClipModel(sampler.meta.clipModel) });
  try {
    if (sampler.meta.conditioning !== 'text') {
      process.stderr.write(`note: ${o.checkpoint} is ${sampler.meta.conditioning}-conditioned; prompts are still text embeddings\n`);
    }
    const exclude = Number(o.synthCount) > 0 ? synthCaptions(Number(o.synthSeed), Number(o.synthCount)) : new Set<string>();
    const prompts = heldOutPrompts(Number(o.promptSeed), Number(o.prompts), { exclude });
    const seeds = Array.from({ length: Number(o.seeds) }, (_, i) => i + 1);
    const t0 = performance.now();
    const report = await runQualityCheck(sampler, embedder, prompts, { seeds });
    const summary = {
      checkpoint: path.relative(repoRoot, path.resolve(o.checkpoint)) || '.',
      engine: sampler.engine,
      clipModel: sampler.meta.clipModel,
      promptSeed: Number(o.promptSeed),
      excludedTrainingCaptions: { synthSeed: Number(o.synthSeed), synthCount: Number(o.synthCount), captions: exclude.size },
      elapsedMs: Math.round(performance.now() - t0),
      ...report,
    };
    process.stdout.write(`${o.checkpoint} (${sampler.engine})\n${formatReport(report)}`);
    if (o.json) {
      await fsp.writeFile(o.json, JSON.stringify(summary, null, 2) + '\n');
      process.stdout.write(`wrote ${o.json}\n`);
    }
  } finally {
    sampler.dispose();
    await embedder.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
