/**
 * Writes a dataset cache by hand with recognisable contents, for loader tests without CLIP:
 * every byte of image row r is r % 251 (and byte 0..1 hold r as uint16), image embedding row r starts with r,
 * text embedding row c starts with 10000 + c.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { CACHE_FILES, CACHE_VERSION, type CacheIndexEntry, type CacheManifest } from '../../../../src/training/data/cache-format.js';
import { fingerprintFiles } from '../../../../src/training/data/fingerprint.js';

export interface HandmadeOptions {
  images: number;
  resolution: number;
  dim?: number;
  /** Captions of image r: 1 + (r % maxCaptions). */
  maxCaptions?: number;
  /** Rows in the val split. */
  valRows?: (row: number) => boolean;
}

export async function writeHandmadeCache(dir: string, o: HandmadeOptions): Promise<CacheManifest> {
  const dim = o.dim ?? 8;
  const maxCaptions = o.maxCaptions ?? 3;
  const rowBytes = o.resolution * o.resolution * 3;
  await fs.mkdir(dir, { recursive: true });
  const images = Buffer.alloc(o.images * rowBytes);
  const imgEmb = new Float32Array(o.images * dim);
  const index: CacheIndexEntry[] = [];
  const captions: string[] = [];
  for (let r = 0; r < o.images; r++) {
    images.fill(r % 251, r * rowBytes, (r + 1) * rowBytes);
    images.writeUInt16LE(r, r * rowBytes);
    imgEmb[r * dim] = r;
    const count = 1 + (r % maxCaptions);
    index.push({ id: 1000 + r, file: `${r}.png`, captionOffset: captions.length, captionCount: count, split: o.valRows?.(r) ? 'val' : 'train' });
    for (let c = 0; c < count; c++) captions.push(`caption ${c} of ${r}`);
  }
  const textEmb = new Float32Array(captions.length * dim);
  for (let c = 0; c < captions.length; c++) textEmb[c * dim] = 10000 + c;
  await fs.writeFile(path.join(dir, CACHE_FILES.images), images);
  await fs.writeFile(path.join(dir, CACHE_FILES.imageEmbeddings), new Uint8Array(imgEmb.buffer));
  await fs.writeFile(path.join(dir, CACHE_FILES.textEmbeddings), new Uint8Array(textEmb.buffer));
  await fs.writeFile(path.join(dir, CACHE_FILES.captions), JSON.stringify(captions));
  await fs.writeFile(path.join(dir, CACHE_FILES.index), JSON.stringify({ version: CACHE_VERSION, images: index }));
  const val = index.filter((e) => e.split === 'val').length;
  const manifest: CacheManifest = {
    version: CACHE_VERSION,
    kind: 'cvae-dataset-cache',
    createdAt: new Date(0).toISOString(),
    resolution: o.resolution,
    channels: 3,
    layout: 'NHWC',
    embeddingDim: dim,
    clipModel: 'handmade-clip',
    clipQuantized: false,
    counts: { images: o.images, captions: captions.length, train: o.images - val, val },
    settings: { source: 'handmade', valFraction: 0.1, minSide: 32, batchSize: 32, crop: 'center, lanczos3', alphaBackground: 'rgb(255,255,255)' },
    fingerprint: await fingerprintFiles(dir),
    files: {},
  };
  await fs.writeFile(path.join(dir, CACHE_FILES.manifest), JSON.stringify(manifest));
  return manifest;
}
