/**
 * Writes a synthetic dataset in the MS COCO captions layout:
 *   <out>/annotations/captions_synth.json   COCO captions JSON, plus a `scene` description per image
 *   <out>/images/<file_name>                 one PNG per image
 * so that it flows through the same ingestion and cache pipeline as COCO itself.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { UserError } from '../../../errors.js';
import { childLogger } from '../../../log.js';
import { captionScene } from './captions.js';
import { GROUND_KINDS, SKY_KINDS, type GroundKind, type SkyKind } from './palette.js';
import { Rng, itemSeed } from './random.js';
import { renderScene } from './render.js';
import { randomScene, type Scene } from './scene.js';

const log = childLogger('synth');

/** Name of the annotations file inside `<out>/annotations`. */
export const SYNTH_ANNOTATIONS_FILE = 'captions_synth.json';

export interface SynthImageEntry {
  id: number;
  file_name: string;
  width: number;
  height: number;
  /** The scene drawn in this image (see scene.ts); lets a checker compare a generated image's attributes. */
  scene: Scene;
}

export interface SynthAnnotation {
  id: number;
  image_id: number;
  caption: string;
}

/** The annotations file: standard COCO captions fields plus `scene` per image. */
export interface SynthCocoFile {
  info: { description: string; version: string; contributor: string; generator: { name: 'synth'; seed: number; resolution: number; count: number } };
  licenses: unknown[];
  images: SynthImageEntry[];
  annotations: SynthAnnotation[];
}

export interface SyntheticDatasetOptions {
  /** Number of images. */
  count: number;
  /** Image side in pixels (64 or 128 for the presets; 8..1024 accepted). */
  resolution: number;
  /** Seed: the same seed, count and resolution give byte-identical files. */
  seed: number;
  /** Output folder (created). */
  outDir: string;
  /** Replace an existing synthetic dataset in `outDir` instead of refusing. */
  overwrite?: boolean;
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
  /** Stops between images; the annotations file is then not written. */
  signal?: AbortSignal;
}

export interface SyntheticDatasetSummary {
  outDir: string;
  annotationsPath: string;
  images: number;
  captions: number;
  skies: Record<SkyKind, number>;
  grounds: Record<GroundKind, number>;
  animals: number;
  elapsedMs: number;
}

/** The scene and captions of image `index` (0-based) of a run: a pure function of (seed, index). */
export function synthItem(seed: number, index: number): { scene: Scene; captions: string[] } {
  const rng = new Rng(itemSeed(seed, index));
  const scene = randomScene(rng);
  const captions = captionScene(scene, rng);
  return { scene, captions };
}

/** File name of image `id` (1-based). */
export function synthFileName(id: number): string {
  return `synth_${String(id).padStart(6, '0')}.png`;
}

/** Encodes an RGB image (HxWx3) as PNG. */
export function encodePng(image: Uint8Array, size: number): Promise<Buffer> {
  return sharp(image, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
}

async function prepareOutDir(outDir: string, overwrite: boolean): Promise<void> {
  const annotations = path.join(outDir, 'annotations', SYNTH_ANNOTATIONS_FILE);
  const imagesDir = path.join(outDir, 'images');
  const existing = await fs.readdir(imagesDir).catch(() => [] as string[]);
  const hasAnnotations = await fs.stat(annotations).then(() => true, () => false);
  if ((existing.length > 0 || hasAnnotations) && !overwrite) {
    throw new UserError(`${outDir} already holds a dataset (${existing.length} images). Choose another --out folder, or pass --force to replace it.`);
  }
  if (overwrite) {
    await fs.rm(annotations, { force: true });
    await Promise.all(existing.filter((f) => /^synth_\d+\.png$/.test(f)).map((f) => fs.rm(path.join(imagesDir, f), { force: true })));
  }
  await fs.mkdir(imagesDir, { recursive: true });
  await fs.mkdir(path.dirname(annotations), { recursive: true });
}

/**
 * Draws `count` random scenes at `resolution` and writes them with 3–5 captions each in the COCO
 * captions layout. Deterministic: the same options give byte-identical files.
 */
export async function generateSyntheticDataset(opts: SyntheticDatasetOptions): Promise<SyntheticDatasetSummary> {
  const { count, resolution, seed, outDir } = opts;
  if (!Number.isInteger(count) || count < 1) throw new UserError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(resolution) || resolution < 8 || resolution > 1024) {
    throw new UserError(`resolution must be an integer between 8 and 1024 (64 or 128 for the presets), got ${resolution}`);
  }
  if (!Number.isInteger(seed)) throw new UserError(`seed must be an integer, got ${seed}`);
  const started = performance.now();
  await prepareOutDir(outDir, opts.overwrite ?? false);
  log.info({ count, resolution, seed, outDir }, 'generating synthetic scenes');

  const images: SynthImageEntry[] = [];
  const annotations: SynthAnnotation[] = [];
  const skies = Object.fromEntries(SKY_KINDS.map((k) => [k, 0])) as Record<SkyKind, number>;
  const grounds = Object.fromEntries(GROUND_KINDS.map((k) => [k, 0])) as Record<GroundKind, number>;
  let animals = 0;
  let done = 0;
  const inFlight = new Set<Promise<void>>();
  const maxInFlight = 8;
  let failure: unknown;

  for (let i = 0; i < count; i++) {
    if (opts.signal?.aborted) throw new UserError('synthetic dataset generation was stopped; the folder is incomplete, run it again');
    const id = i + 1;
    const { scene, captions } = synthItem(seed, i);
    const fileName = synthFileName(id);
    images.push({ id, file_name: fileName, width: resolution, height: resolution, scene });
    for (const caption of captions) annotations.push({ id: annotations.length + 1, image_id: id, caption });
    skies[scene.sky]++;
    grounds[scene.ground]++;
    animals += scene.animals.length;
    const pixels = renderScene(scene, resolution);
    const job = encodePng(pixels, resolution)
      .then((png) => fs.writeFile(path.join(outDir, 'images', fileName), png))
      .then(() => {
        done++;
        opts.onProgress?.(done, count);
      });
    const tracked: Promise<void> = job
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure) break;
  }
  await Promise.all(inFlight);
  if (failure) throw new UserError(`could not write the synthetic images to ${outDir}: ${(failure as Error).message ?? String(failure)}`, { cause: failure });

  const file: SynthCocoFile = {
    info: {
      description: 'Synthetic bucolic scenes (procedural sky, ground, mountains, lake, trees and animals)',
      version: '1',
      contributor: 'clip-cvae-bot dataset synth',
      generator: { name: 'synth', seed, resolution, count },
    },
    licenses: [],
    images,
    annotations,
  };
  const annotationsPath = path.join(outDir, 'annotations', SYNTH_ANNOTATIONS_FILE);
  const tmp = `${annotationsPath}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(file));
  await fs.rename(tmp, annotationsPath);

  const summary: SyntheticDatasetSummary = {
    outDir, annotationsPath, images: count, captions: annotations.length, skies, grounds, animals,
    elapsedMs: performance.now() - started,
  };
  log.info({ images: count, captions: annotations.length, elapsedMs: Math.round(summary.elapsedMs) }, 'synthetic dataset written');
  return summary;
}
