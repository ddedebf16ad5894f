/**
 * The dataset cache on disk (one folder, written atomically by `dataset build`):
 * - `images.u8`: N * res * res * 3 bytes, uint8 RGB, NHWC (row i is image i of index.json)
 * - `image-embeddings.f32`: N * dim float32, little-endian, L2-normalised CLIP image embeddings
 * - `text-embeddings.f32`: C * dim float32, little-endian, CLIP text embeddings of every caption
 * - `captions.json`: the C caption strings, in text-embedding row order
 * - `index.json`: per image (row order) its id, source file, caption offset/count and split
 * - `manifest.json`: version, counts, settings, CLIP model, resolution, creation time, content fingerprint
 * - `build-report.json`: what was skipped or converted while building (not part of the fingerprint)
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Split } from '../dataset.js';

/** Format version; the loader refuses other versions. */
export const CACHE_VERSION = 1;

export const CACHE_FILES = {
  images: 'images.u8',
  imageEmbeddings: 'image-embeddings.f32',
  textEmbeddings: 'text-embeddings.f32',
  captions: 'captions.json',
  index: 'index.json',
  manifest: 'manifest.json',
  report: 'build-report.json',
} as const;

/** Files covered by the content fingerprint, in hashing order. */
export const FINGERPRINTED_FILES = [
  CACHE_FILES.images,
  CACHE_FILES.imageEmbeddings,
  CACHE_FILES.textEmbeddings,
  CACHE_FILES.captions,
  CACHE_FILES.index,
] as const;

export const DEFAULT_VAL_FRACTION = 0.1;

const idSchema = z.union([z.number(), z.string()]);

export const indexEntrySchema = z.object({
  id: idSchema,
  file: z.string(),
  captionOffset: z.number().int().nonnegative(),
  captionCount: z.number().int().positive(),
  split: z.enum(['train', 'val']),
});
export type CacheIndexEntry = z.infer<typeof indexEntrySchema>;

export const cacheIndexSchema = z.object({
  version: z.literal(CACHE_VERSION),
  images: z.array(indexEntrySchema),
});
export type CacheIndex = z.infer<typeof cacheIndexSchema>;

export const manifestSchema = z.object({
  version: z.literal(CACHE_VERSION),
  kind: z.literal('cvae-dataset-cache'),
  createdAt: z.string(),
  resolution: z.number().int().positive(),
  channels: z.literal(3),
  layout: z.literal('NHWC'),
  embeddingDim: z.number().int().positive(),
  clipModel: z.string(),
  clipQuantized: z.boolean(),
  counts: z.object({
    images: z.number().int().nonnegative(),
    captions: z.number().int().nonnegative(),
    train: z.number().int().nonnegative(),
    val: z.number().int().nonnegative(),
  }),
  settings: z.object({
    source: z.string(),
    valFraction: z.number(),
    minSide: z.number(),
    batchSize: z.number(),
    crop: z.string(),
    alphaBackground: z.string(),
  }),
  /** sha256 (hex) over the fingerprinted files, see fingerprint.ts. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  files: z.record(z.string(), z.number().int().nonnegative()),
});
export type CacheManifest = z.infer<typeof manifestSchema>;

/**
 * The split of an image, from its id only (so it is stable across rebuilds and subsets):
 * the first 32 bits of sha256("<id>") as a fraction of 2^32, below `valFraction` → val.
 */
export function splitForId(id: number | string, valFraction: number = DEFAULT_VAL_FRACTION): Split {
  const h = createHash('sha256').update(String(id)).digest();
  return h.readUInt32BE(0) / 2 ** 32 < valFraction ? 'val' : 'train';
}
