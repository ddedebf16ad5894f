/**
 * Streams shuffled batches from a dataset cache with bounded memory: each batch's image rows and embedding rows
 * are read with file-handle reads at their offsets (never the whole file), and one batch is read ahead while the
 * trainer works on the current one. Only the index and caption offsets are held in memory.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { UserError } from '../../errors.js';
import type { Batch, BatchOptions, BatchSource, Split } from '../dataset.js';
import {
  CACHE_FILES,
  CACHE_VERSION,
  cacheIndexSchema,
  manifestSchema,
  type CacheIndexEntry,
  type CacheManifest,
} from './cache-format.js';
import { mulberry32, permutation } from '../../util/prng.js';

export type Conditioning = 'image' | 'text';

export interface OpenCacheOptions {
  /** `image`: the CLIP image embedding of each image; `text`: the embedding of one of its captions, drawn per epoch. */
  conditioning: Conditioning;
}

/** A dataset cache opened for reading: a {@link BatchSource} plus what the cache holds. */
export interface DatasetCache extends BatchSource {
  readonly dir: string;
  readonly conditioning: Conditioning;
  readonly manifest: CacheManifest;
  /** Index entries (row order) of a split. */
  entries(split: Split): readonly CacheIndexEntry[];
  /**
   * The first caption of the first `count` images of a split (default val, else train when val is empty), with its
   * text embedding: labelled conditioning vectors for sample grids during training.
   */
  sampleCaptions(count: number, split?: Split): Promise<{ label: string; embedding: Float32Array }[]>;
}

/** A 32-bit seed from any parts (sha256), so (seed, epoch, split) streams are independent. */
function seedFrom(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join('\0')).digest().readUInt32LE(0);
}

/** Fisher-Yates shuffle of 0..n-1 with a seeded generator. */
export function shuffledOrder(n: number, seed: number): Uint32Array {
  return permutation(n, mulberry32(seed));
}

async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(
      `${what} ${file} is missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). ` +
        'Is this a dataset cache? Build one with `dataset build --source DIR --res 64 --out DIR`.',
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${what} ${file} is not valid JSON; rebuild the cache with \`dataset build\`.`);
  }
}

/** Reads and validates a cache's manifest. */
export async function readCacheManifest(dir: string): Promise<CacheManifest> {
  const json = await readJsonFile(path.join(dir, CACHE_FILES.manifest), 'The dataset manifest');
  const version = (json as { version?: unknown })?.version;
  if (version !== CACHE_VERSION) {
    throw new UserError(`The dataset cache ${dir} has format version ${String(version)}; this program reads version ${CACHE_VERSION}. Rebuild it with \`dataset build\`.`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new UserError(`The dataset manifest in ${dir} is damaged (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}); rebuild the cache.`);
  }
  return parsed.data;
}

/** Reads rows (fixed size, at `row * rowBytes`) into consecutive slots of `out`; runs of consecutive rows become one read. */
async function readRows(fh: fsp.FileHandle, rows: ArrayLike<number>, rowBytes: number, out: Uint8Array): Promise<void> {
  const reads: Promise<unknown>[] = [];
  let start = 0;
  while (start < rows.length) {
    let end = start + 1;
    while (end < rows.length && rows[end] === rows[end - 1] + 1) end++;
    const length = (end - start) * rowBytes;
    reads.push(readFully(fh, out, start * rowBytes, length, rows[start] * rowBytes));
    start = end;
  }
  await Promise.all(reads);
}

async function readFully(fh: fsp.FileHandle, buf: Uint8Array, offset: number, length: number, position: number) {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, offset + done, length - done, position + done);
    if (bytesRead === 0) throw new UserError('A dataset cache file is shorter than its manifest says; rebuild the cache.');
    done += bytesRead;
  }
}

/**
 * Opens a dataset cache written by `dataset build` as a batch source for the trainer.
 * Checks the manifest, the index and the file sizes; a damaged or partial cache gives a `UserError`.
 */
export async function openDatasetCache(dir: string, options: OpenCacheOptions): Promise<DatasetCache> {
  const conditioning = options.conditioning;
  if (conditioning !== 'image' && conditioning !== 'text') {
    throw new UserError(`conditioning must be 'image' or 'text', got '${String(conditioning)}'.`);
  }
  const root = path.resolve(dir);
  const manifest = await readCacheManifest(root);
  const parsedIndex = cacheIndexSchema.safeParse(await readJsonFile(path.join(root, CACHE_FILES.index), 'The dataset index'));
  if (!parsedIndex.success) throw new UserError(`The dataset index in ${root} is damaged; rebuild the cache.`);
  const index = parsedIndex.data.images;
  const { resolution, embeddingDim: dim } = manifest;
  const rowBytes = resolution * resolution * 3;
  const embBytes = dim * 4;
  const expected: Record<string, number> = {
    [CACHE_FILES.images]: manifest.counts.images * rowBytes,
    [CACHE_FILES.imageEmbeddings]: manifest.counts.images * embBytes,
    [CACHE_FILES.textEmbeddings]: manifest.counts.captions * embBytes,
  };
  if (index.length !== manifest.counts.images) {
    throw new UserError(`The dataset cache ${root} is inconsistent (index has ${index.length} images, manifest ${manifest.counts.images}); rebuild it.`);
  }
  for (const [name, bytes] of Object.entries(expected)) {
    const size = await fsp.stat(path.join(root, name)).then((s) => s.size, () => -1);
    if (size !== bytes) {
      throw new UserError(`The dataset cache file ${path.join(root, name)} has ${size < 0 ? 'gone missing' : `${size} bytes, expected ${bytes}`}; rebuild the cache with \`dataset build\`.`);
    }
  }
  for (const e of index) {
    if (e.captionOffset + e.captionCount > manifest.counts.captions) {
      throw new UserError(`The dataset index in ${root} points past the last caption; rebuild the cache.`);
    }
  }
  const rowsOf: Record<Split, number[]> = { train: [], val: [] };
  index.forEach((e, row) => rowsOf[e.split].push(row));

  /** Embedding row for each image row of a batch: the image's own, or one of its captions drawn for (seed, epoch). */
  function captionRows(rows: number[], seed: number, epoch: number, split: Split): number[] {
    // Validation uses the same caption draw every epoch so that val losses compare across epochs.
    const drawEpoch = split === 'val' ? 0 : epoch;
    return rows.map((row) => {
      const e = index[row];
      if (e.captionCount === 1) return e.captionOffset;
      const pick = mulberry32(seedFrom(seed, drawEpoch, 'caption', row))();
      return e.captionOffset + Math.floor(pick * e.captionCount);
    });
  }

  async function* batches(split: Split, batchSize: number, opts: BatchOptions): AsyncGenerator<Batch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`batch size must be a positive whole number, got ${batchSize}.`);
    const splitRows = rowsOf[split];
    const n = splitRows.length;
    if (n === 0) return;
    const shuffle = opts.shuffle ?? split === 'train';
    const order = shuffle ? shuffledOrder(n, seedFrom(opts.seed, opts.epoch, split)) : null;
    const images = await fsp.open(path.join(root, CACHE_FILES.images), 'r');
    const embFile = conditioning === 'image' ? CACHE_FILES.imageEmbeddings : CACHE_FILES.textEmbeddings;
    const embeddings = await fsp.open(path.join(root, embFile), 'r').catch(async (err) => {
      await images.close();
      throw err;
    });
    const readBatch = async (start: number): Promise<Batch> => {
      const size = Math.min(batchSize, n - start);
      const rows = Array.from({ length: size }, (_, i) => splitRows[order ? order[start + i] : start + i]);
      const embRows = conditioning === 'image' ? rows : captionRows(rows, opts.seed, opts.epoch, split);
      const img = new Uint8Array(size * rowBytes);
      const emb = new Float32Array(size * dim);
      await Promise.all([
        readRows(images, rows, rowBytes, img),
        readRows(embeddings, embRows, embBytes, new Uint8Array(emb.buffer)),
      ]);
      return { size, images: img, embeddings: emb };
    };
    // One batch read ahead: at most two batches are in memory on this side.
    let pending: Promise<Batch> | null = null;
    try {
      pending = readBatch(0);
      for (let start = 0; pending; start += batchSize) {
        const current: Batch = await pending;
        pending = start + batchSize < n ? readBatch(start + batchSize) : null;
        pending?.catch(() => undefined); // surfaced when awaited
        yield current;
      }
    } finally {
      // A consumer that stops early leaves a read in flight: let it finish before closing the files.
      await (pending as Promise<Batch> | null)?.catch(() => undefined);
      await Promise.allSettled([images.close(), embeddings.close()]);
    }
  }

  async function sampleCaptions(count: number, split?: Split) {
    const from: Split = split ?? (rowsOf.val.length > 0 ? 'val' : 'train');
    const rows = rowsOf[from].slice(0, Math.max(0, Math.floor(count)));
    if (rows.length === 0) return [];
    const captions = (await readJsonFile(path.join(root, CACHE_FILES.captions), 'The dataset captions')) as string[];
    const capRows = rows.map((r) => index[r].captionOffset);
    const emb = new Float32Array(rows.length * dim);
    const fh = await fsp.open(path.join(root, CACHE_FILES.textEmbeddings), 'r');
    try {
      await Promise.all(capRows.map((c, i) => readFully(fh, new Uint8Array(emb.buffer), i * embBytes, embBytes, c * embBytes)));
    } finally {
      await fh.close();
    }
    return capRows.map((c, i) => ({ label: String(captions[c] ?? ''), embedding: emb.slice(i * dim, (i + 1) * dim) }));
  }

  return {
    dir: root,
    conditioning,
    manifest,
    resolution,
    embeddingDim: dim,
    fingerprint: manifest.fingerprint,
    clipModel: manifest.clipModel,
    size: (split: Split) => rowsOf[split].length,
    entries: (split: Split) => rowsOf[split].map((r) => index[r]),
    sampleCaptions,
    batches,
  };
}
