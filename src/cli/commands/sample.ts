/**
 * `sample`: images from a checkpoint's decoder, as a PNG grid (and optionally one PNG per image).
 *
 *   sample [--checkpoint DIR | --model NAME] (--embedding-file F | --text T ...) [--count 4] [--seed 7]
 *          [--out grid.png] [--images-dir DIR] [--scale N] [--kernel nearest|lanczos3] [--columns N]
 *          [--engine auto|onnx|tfjs] [--json]
 *
 * The engine is the bot's: ONNX Runtime over the checkpoint's decoder export (made beside it when missing or
 * stale) unless `--engine tfjs` or SAMPLER_ENGINE says otherwise; either engine gives the same image per seed.
 * Without --checkpoint or --model it samples the registry's active model, or, when none is active, the demo
 * shipped in `models/demo` (as `npm start` serves it). Image i gets seed `seed + i`
 * and embedding `i mod k` of the k given. Embedding files: a JSON array of numbers, an array of arrays,
 * `{"embedding": [...]}`, JSON lines of those (what `embed --json` prints), or raw float32 (`.bin`/`.f32`).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { initBackend } from '../../model/backend.js';
import { resolveRecordedClipModel } from '../../model/clip/clip-name.js';
import { readEmbeddingFile } from '../../model/embedding-file.js';
import { MAX_SEED } from '../../model/latent.js';
import { defaultScale, gridPng, imagePng, type UpscaleKernel } from '../../model/image-grid.js';
import { CheckpointRegistry } from '../../model/registry.js';
import { DEMO_MODEL_NAME, defaultCheckpoint } from '../../model/served-model.js';
import { createSampler, SAMPLER_ENGINES, samplerEngineFromEnv, type ImageSampler, type SamplerEngine } from '../../model/sampler-factory.js';
import type { CommandOutput } from './model.js';

interface SampleOptions {
  checkpoint?: string;
  model?: string;
  checkpoints?: string;
  embeddingFile?: string;
  text: string[];
  clipModel?: string;
  count?: number;
  seed?: number;
  out: string;
  imagesDir?: string;
  scale?: number;
  kernel: string;
  columns?: number;
  engine?: string;
  json?: boolean;
}

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new UserError(`--${name} must be a whole number from 1 to ${max}, got "${value}".`);
    return n;
  };
}

function seedArg(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`--seed must be a non-negative whole number, got "${value}".`);
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Which checkpoint folder to sample: explicit folder, registry name, the active model, or, when none is
 * active, the demo shipped in `models/demo` (what `npm start` serves then too).
 */
async function checkpointDir(o: SampleOptions, shipped: string | null = defaultCheckpoint()): Promise<{ dir: string; label: string; shipped: boolean }> {
  if (o.checkpoint && o.model) throw new UserError('Give either --checkpoint or --model, not both.');
  if (o.checkpoint) return { dir: o.checkpoint, label: o.checkpoint, shipped: false };
  const registry = new CheckpointRegistry(o.checkpoints);
  if (o.model) {
    const e = await registry.resolve(o.model);
    return { dir: e.dir, label: e.name, shipped: false };
  }
  const active = await registry.active();
  if (active) return { dir: active.dir, label: active.name, shipped: false };
  if (shipped) return { dir: shipped, label: DEMO_MODEL_NAME, shipped: true };
  throw new UserError('No model is active and no demo model is shipped in models/demo. Pass --checkpoint DIR or --model NAME, or pick one with `model use NAME`.');
}

async function embeddingsFor(o: SampleOptions, sampler: ImageSampler): Promise<Float32Array[]> {
  const embeddingDim = sampler.meta.presetConfig.embeddingDim;
  if (o.embeddingFile && o.text.length > 0) throw new UserError('Give either --embedding-file or --text, not both.');
  if (o.embeddingFile) return readEmbeddingFile(o.embeddingFile, embeddingDim);
  if (o.text.length > 0) {
    const { ClipEmbedder } = await import('../../model/clip/embedder.js');
    const clip = await ClipEmbedder.load({ model: o.clipModel ?? resolveRecordedClipModel(sampler.meta.clipModel) });
    try {
      if (clip.dim !== embeddingDim) {
        throw new UserError(`CLIP ${clip.modelId} gives ${clip.dim}-d embeddings; the model takes ${embeddingDim}.`);
      }
      return await clip.embedTexts(o.text);
    } finally {
      await clip.dispose();
    }
  }
  throw new UserError('Say what to draw: --embedding-file FILE (CLIP embeddings) or --text "a prompt".');
}

/** Adds the `sample` command. */
/**
 * Registers `sample`. `options.shippedCheckpoint`: the demo to sample when no model is active (default
 * `models/demo`; null: none, for tests).
 */
export function register(program: Command, out: CommandOutput = { write: (t) => void process.stdout.write(t) },
  options: { shippedCheckpoint?: string | null } = {}): void {
  program
    .command('sample')
    .description("draw images with a checkpoint's decoder from CLIP embeddings, as a PNG grid")
    .option('--checkpoint <dir>', 'checkpoint folder (holds meta.json)')
    .option('--model <name>', 'checkpoint name in the registry (default: the active model)')
    .option('--checkpoints <dir>', 'checkpoints root of the registry (default <DATA_DIR>/checkpoints)')
    .option('--embedding-file <file>', 'CLIP embeddings: JSON array(s), embed --json lines, or raw float32 .bin')
    .option('--text <prompt>', 'embed this prompt with CLIP (repeatable)', collect, [])
    .option('--clip-model <idOrDir>', "CLIP model for --text (default: the checkpoint's)")
    .option('--count <n>', 'number of images (default 4, or one per embedding given)', positiveInt('count', 256))
    .option('--seed <n>', 'seed of the first image; image i uses seed + i (default random)', seedArg)
    .option('--out <file>', 'grid PNG to write', 'samples.png')
    .option('--images-dir <dir>', 'also write one PNG per image here')
    .option('--scale <n>', 'integer upscale factor for display (default about 256 px per image)', positiveInt('scale', 64))
    .option('--kernel <name>', 'upscaling filter: nearest or lanczos3', 'lanczos3')
    .option('--columns <n>', 'images per grid row', positiveInt('columns', 256))
    .option('--engine <name>', 'auto (a GPU where there is one, else ONNX Runtime on the CPU, else TensorFlow.js), onnx or tfjs (default SAMPLER_ENGINE, else auto)')
    .option('--json', 'print a JSON summary')
    .action(async (o: SampleOptions) => {
      if (o.kernel !== 'nearest' && o.kernel !== 'lanczos3') throw new UserError(`--kernel must be nearest or lanczos3, got "${o.kernel}".`);
      if (o.engine !== undefined && !(SAMPLER_ENGINES as readonly string[]).includes(o.engine)) {
        throw new UserError(`--engine must be one of ${SAMPLER_ENGINES.join(', ')}, got "${o.engine}".`);
      }
      const engine = (o.engine as SamplerEngine | undefined) ?? samplerEngineFromEnv();
      await initBackend();
      const { dir, label, shipped } = await checkpointDir(o, options.shippedCheckpoint === undefined ? defaultCheckpoint() : options.shippedCheckpoint);
      const sampler = await createSampler(dir, { engine });
      try {
        const given = await embeddingsFor(o, sampler);
        const count = o.count ?? (given.length > 1 ? given.length : 4);
        const first = o.seed ?? Math.floor(Math.random() * (MAX_SEED + 1));
        const seeds = Array.from({ length: count }, (_, i) => first + i);
        const images = await sampler.sample(seeds.map((_, i) => given[i % given.length]), seeds);
        const size = sampler.resolution;
        const scale = o.scale ?? defaultScale(size);
        const kernel = o.kernel as UpscaleKernel;
        await fsp.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
        await fsp.writeFile(o.out, await gridPng(images, size, { scale, kernel, columns: o.columns }));
        const files: string[] = [];
        if (o.imagesDir) {
          await fsp.mkdir(o.imagesDir, { recursive: true });
          for (let i = 0; i < images.length; i++) {
            const file = path.join(o.imagesDir, `sample-${seeds[i]}.png`);
            await fsp.writeFile(file, await imagePng(images[i], size, scale, kernel));
            files.push(file);
          }
        }
        const summary = {
          out: o.out, images: files, model: label, shipped, checkpoint: dir, preset: sampler.meta.preset, resolution: size, seeds, engine: sampler.engine,
        };
        out.write(
          o.json
            ? `${JSON.stringify(summary)}\n`
            : `wrote ${o.out}: ${count} image(s) ${size}x${size} from ${label}${shipped ? ' (the shipped demo: no model is active)' : ''} (${sampler.meta.preset}, ${sampler.engine}), seeds ${seeds[0]}..${seeds.at(-1)}\n`,
        );
      } finally {
        sampler.dispose();
      }
    });
}
