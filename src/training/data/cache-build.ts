/**
 * Builds the dataset cache from a source folder in COCO layout (`annotations/*.json` + `images/`):
 * validates the captions, prepares every image (decode, sRGB, center-crop, resize), embeds images and captions
 * with CLIP in batches, and writes the cache folder atomically (temp folder beside it, then rename).
 * Bad input never stops a build: it is skipped or converted, counted, and listed in `build-report.json`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClipEmbedder } from '../../model/clip/embedder.js';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import { findCaptionFiles, readCocoCaptions, type CocoImage } from './coco.js';
import {
  CACHE_FILES,
  CACHE_VERSION,
  DEFAULT_VAL_FRACTION,
  splitForId,
  type CacheIndexEntry,
  type CacheManifest,
} from './cache-format.js';
import { fingerprintFiles } from './fingerprint.js';
import { DEFAULT_MIN_SIDE, FLATTEN_BACKGROUND, prepareImage, type ImageConversion, type PreparedImage } from './images.js';
import { writeFileDurable } from '../../util/durable-write.js';
import { runPool } from './pool.js';

const log = childLogger('dataset-build');

/** Kinds of bad input a build skips. */
export type BuildIssueKind =
  | 'duplicate-id'
  | 'no-caption'
  | 'missing-file'
  | 'unreadable'
  | 'corrupt'
  | 'too-small'
  | 'embedding-failed'
  | 'orphan-caption'
  | 'empty-caption';

/** One skipped image or caption. */
export interface BuildIssue {
  kind: BuildIssueKind;
  /** Image id (for captions: the image id they point to). */
  id: number | string;
  file?: string;
  detail?: string;
}

export interface BuildProgress {
  phase: 'images' | 'captions' | 'fingerprint';
  done: number;
  total: number;
}

export interface BuildOptions {
  /** Source folder in COCO layout (or one captions JSON file; images then default to `../images` beside its folder). */
  source: string;
  /** Image folder, when not `<source>/images`. */
  imagesDir?: string;
  /** Cache folder to write. An existing cache there is replaced; any other non-empty folder is refused. */
  outDir: string;
  /** Square side of the cached images (64 or 128; any size >= 8 works). */
  resolution: number;
  /** The CLIP embedder (the caller loads and disposes it). */
  embedder: ClipEmbedder;
  /** Fraction of images in the validation split, by hash of the image id (default 0.1). */
  valFraction?: number;
  /** Images (and captions x4) per CLIP call (default 32). */
  batchSize?: number;
  /** Images with a shorter side below this are skipped (default 32). */
  minSide?: number;
  /** Images decoded in parallel (default: CPU count, at most 8). */
  decodeConcurrency?: number;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
}

export interface BuildReport {
  outDir: string;
  source: string;
  captionFiles: string[];
  counts: {
    imagesListed: number;
    imagesKept: number;
    captionsListed: number;
    captionsKept: number;
    train: number;
    val: number;
    skipped: Partial<Record<BuildIssueKind, number>>;
    converted: Partial<Record<ImageConversion, number>>;
  };
  /** Every skipped image or caption. */
  issues: BuildIssue[];
  /** Kept images that needed a conversion. */
  converted: { id: number | string; file: string; conversions: ImageConversion[] }[];
  fingerprint: string;
  timingsMs: { images: number; captions: number; fingerprint: number; total: number };
}

/** An image of a source with its captions (whitespace collapsed, empty ones dropped). */
export interface Candidate {
  id: number | string;
  file: string;
  captions: string[];
}

/** Reads the captions files and decides which images are candidates; records duplicates, orphans, no-caption. */
export async function collectCandidates(captionFiles: string[], issues: BuildIssue[]) {
  const images: CocoImage[] = [];
  const seen = new Set<string>();
  const captions = new Map<string, string[]>();
  let captionsListed = 0;
  const annotations: { image_id: number | string; caption: string }[] = [];
  for (const file of captionFiles) {
    const data = await readCocoCaptions(file);
    for (const img of data.images) {
      const key = String(img.id);
      if (seen.has(key)) {
        issues.push({ kind: 'duplicate-id', id: img.id, file: img.file_name, detail: `id already used in ${path.basename(file)} or before` });
        continue;
      }
      seen.add(key);
      images.push(img);
    }
    // One by one: spreading a few hundred thousand captions (MS COCO has 590k) into push overflows the stack.
    for (const ann of data.annotations) annotations.push(ann);
  }
  for (const ann of annotations) {
    captionsListed++;
    const key = String(ann.image_id);
    const text = ann.caption.trim().replace(/\s+/g, ' ');
    if (!seen.has(key)) {
      issues.push({ kind: 'orphan-caption', id: ann.image_id, detail: 'caption of an image id not in images[]' });
      continue;
    }
    if (!text) {
      issues.push({ kind: 'empty-caption', id: ann.image_id });
      continue;
    }
    const list = captions.get(key) ?? [];
    list.push(text);
    captions.set(key, list);
  }
  const candidates: Candidate[] = [];
  for (const img of images) {
    const list = captions.get(String(img.id));
    if (!list) {
      issues.push({ kind: 'no-caption', id: img.id, file: img.file_name });
      continue;
    }
    candidates.push({ id: img.id, file: img.file_name, captions: list });
  }
  return { candidates, imagesListed: images.length + issues.filter((i) => i.kind === 'duplicate-id').length, captionsListed };
}

/** Resolves the source into its captions files and image folder. */
export async function resolveSource(source: string, imagesDir?: string) {
  const captionFiles = await findCaptionFiles(source);
  const stat = await fs.stat(source);
  const images =
    imagesDir ?? (stat.isDirectory() ? path.join(source, 'images') : path.join(path.dirname(path.dirname(source)), 'images'));
  return { captionFiles, imagesDir: images };
}

/** Refuses to overwrite a folder that is not a dataset cache. */
async function checkOutDir(outDir: string): Promise<'absent' | 'empty' | 'cache'> {
  const names = await fs.readdir(outDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (names === null) return 'absent';
  if (names.length === 0) return 'empty';
  if (names.includes(CACHE_FILES.manifest)) return 'cache';
  throw new UserError(`${outDir} exists and is not a dataset cache; choose another --out or remove it.`);
}

/** Appends buffers to a file through one handle, keeping the write position. */
class AppendFile {
  private constructor(
    private readonly fh: fs.FileHandle,
    public bytes = 0,
  ) {}
  static async create(file: string): Promise<AppendFile> {
    return new AppendFile(await fs.open(file, 'w'));
  }
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.byteLength) {
      const { bytesWritten } = await this.fh.write(data, off, data.byteLength - off, this.bytes + off);
      off += bytesWritten;
    }
    this.bytes += data.byteLength;
  }
  async close(): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
  }
}

function floatBytes(rows: Float32Array[], dim: number, what: string): Uint8Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new Error(`${what} embedding has ${r.length} values, expected ${dim}`);
    out.set(r, i * dim);
  });
  return new Uint8Array(out.buffer);
}

function allFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

/** Writes JSON into the temp folder, flushed to disk (the folder is renamed into place as a whole). */
async function writeJson(file: string, value: unknown, pretty = false): Promise<void> {
  await writeFileDurable(file, pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value));
}

function countBy<K extends string>(keys: K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** Prepares one image file; a missing or bad file becomes an issue. */
async function prepareCandidate(
  c: Candidate,
  imagesDir: string,
  resolution: number,
  minSide: number,
): Promise<{ image: PreparedImage } | { issue: BuildIssue }> {
  const file = path.resolve(imagesDir, c.file);
  if (path.relative(path.resolve(imagesDir), file).startsWith('..')) {
    return { issue: { kind: 'missing-file', id: c.id, file: c.file, detail: 'file_name points outside the image folder' } };
  }
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { issue: { kind: 'missing-file', id: c.id, file: c.file, detail: code ?? (err as Error).message } };
  }
  const r = await prepareImage(bytes, { resolution, minSide });
  if (!r.ok) return { issue: { kind: r.reason, id: c.id, file: c.file, detail: r.message } };
  return { image: r.image };
}

/**
 * Builds a dataset cache. Returns the build report (also written as `build-report.json` in the cache).
 * Throws `UserError` only for problems with the whole build (no captions file, nothing usable, bad output folder).
 */
export async function buildDatasetCache(opts: BuildOptions): Promise<BuildReport> {
  const started = Date.now();
  const resolution = opts.resolution;
  if (!Number.isInteger(resolution) || resolution < 8 || resolution > 1024) {
    throw new UserError(`--res must be a whole number of pixels (64 or 128), got ${resolution}.`);
  }
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(valFraction >= 0 && valFraction < 1)) throw new UserError(`--val-fraction must be in [0, 1), got ${valFraction}.`);
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 32));
  const minSide = opts.minSide ?? DEFAULT_MIN_SIDE;
  const decodeConcurrency = opts.decodeConcurrency ?? Math.min(8, os.availableParallelism());
  const embedder = opts.embedder;
  const dim = embedder.dim;
  const outDir = path.resolve(opts.outDir);
  await checkOutDir(outDir); // fail early, before any work
  const { captionFiles, imagesDir } = await resolveSource(opts.source, opts.imagesDir);

  const issues: BuildIssue[] = [];
  const { candidates, imagesListed, captionsListed } = await collectCandidates(captionFiles, issues);
  if (candidates.length === 0) {
    throw new UserError(`No image in ${opts.source} has a caption; nothing to build. Check the captions file.`);
  }

  await fs.mkdir(path.dirname(outDir), { recursive: true });
  const tmpDir = await fs.mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.building-`));
  const timings = { images: 0, captions: 0, fingerprint: 0, total: 0 };
  try {
    const imagesOut = await AppendFile.create(path.join(tmpDir, CACHE_FILES.images));
    const imageEmbOut = await AppendFile.create(path.join(tmpDir, CACHE_FILES.imageEmbeddings));
    const index: CacheIndexEntry[] = [];
    const captions: string[] = [];
    const converted: BuildReport['converted'] = [];

    // Images: decode a batch in parallel, embed it in one CLIP call, append pixels and embeddings in order.
    let t = Date.now();
    let done = 0;
    opts.onProgress?.({ phase: 'images', done, total: candidates.length });
    // sharp decodes on libuv threads while CLIP preprocessing runs on the main thread, so the next batch is
    // decoded while the current one is embedded (two batches of prepared images in memory at most).
    const prepareBatch = async (start: number) => {
      const batch = candidates.slice(start, start + batchSize);
      const prepared: Awaited<ReturnType<typeof prepareCandidate>>[] = new Array(batch.length);
      await runPool(batch, decodeConcurrency, async (c, i) => {
        prepared[i] = await prepareCandidate(c, imagesDir, resolution, minSide);
      });
      return { batch, prepared };
    };
    let nextBatch: ReturnType<typeof prepareBatch> | null = prepareBatch(0);
    for (let b = 0; nextBatch; b += batchSize) {
      if (opts.signal?.aborted) {
        await nextBatch.catch(() => undefined);
        throw new UserError('Build stopped.');
      }
      const { batch, prepared } = await nextBatch;
      nextBatch = b + batchSize < candidates.length ? prepareBatch(b + batchSize) : null;
      nextBatch?.catch(() => undefined); // surfaced when awaited
      const okIdx: number[] = [];
      prepared.forEach((p, i) => ('image' in p ? okIdx.push(i) : issues.push(p.issue)));
      let embeddings: (Float32Array | null)[] = [];
      if (okIdx.length > 0) {
        const pngs = okIdx.map((i) => (prepared[i] as { image: PreparedImage }).image.clipPng);
        try {
          embeddings = await embedder.embedImages(pngs);
        } catch (err) {
          // Isolate the image the embedder rejects; the others keep their embeddings.
          log.warn({ err: (err as Error).message }, 'batch image embedding failed; retrying one by one');
          embeddings = [];
          for (const png of pngs) embeddings.push(await embedder.embedImages([png]).then((e) => e[0], () => null));
        }
      }
      const pixelRows: Uint8Array[] = [];
      const embRows: Float32Array[] = [];
      okIdx.forEach((i, k) => {
        const c = batch[i];
        const img = (prepared[i] as { image: PreparedImage }).image;
        const emb = embeddings[k];
        if (!emb || emb.length !== dim || !allFinite(emb)) {
          issues.push({ kind: 'embedding-failed', id: c.id, file: c.file, detail: emb ? 'not a finite embedding' : 'CLIP rejected it' });
          return;
        }
        pixelRows.push(img.pixels);
        embRows.push(emb);
        if (img.conversions.length > 0) converted.push({ id: c.id, file: c.file, conversions: img.conversions });
        index.push({
          id: c.id,
          file: c.file,
          captionOffset: captions.length,
          captionCount: c.captions.length,
          split: splitForId(c.id, valFraction),
        });
        captions.push(...c.captions);
      });
      if (pixelRows.length > 0) {
        await imagesOut.write(Buffer.concat(pixelRows));
        await imageEmbOut.write(floatBytes(embRows, dim, 'image'));
      }
      done += batch.length;
      opts.onProgress?.({ phase: 'images', done, total: candidates.length });
    }
    await imagesOut.close();
    await imageEmbOut.close();
    timings.images = Date.now() - t;
    if (index.length === 0) {
      throw new UserError(
        `None of the ${candidates.length} captioned images in ${opts.source} could be used ` +
          `(see the reasons: ${Object.entries(countBy(issues.map((i) => i.kind))).map(([k, n]) => `${k} ${n}`).join(', ')}). ` +
          `Check the image folder ${imagesDir}.`,
      );
    }

    // Captions: embed in batches (the text tower is cheap, so 4x the image batch).
    t = Date.now();
    const textOut = await AppendFile.create(path.join(tmpDir, CACHE_FILES.textEmbeddings));
    const textBatch = batchSize * 4;
    opts.onProgress?.({ phase: 'captions', done: 0, total: captions.length });
    for (let c = 0; c < captions.length; c += textBatch) {
      if (opts.signal?.aborted) throw new UserError('Build stopped.');
      const chunk = captions.slice(c, c + textBatch);
      const emb = await embedder.embedTexts(chunk);
      await textOut.write(floatBytes(emb, dim, 'text'));
      opts.onProgress?.({ phase: 'captions', done: Math.min(captions.length, c + textBatch), total: captions.length });
    }
    await textOut.close();
    timings.captions = Date.now() - t;

    await writeJson(path.join(tmpDir, CACHE_FILES.captions), captions);
    await writeJson(path.join(tmpDir, CACHE_FILES.index), { version: CACHE_VERSION, images: index });

    t = Date.now();
    opts.onProgress?.({ phase: 'fingerprint', done: 0, total: 1 });
    const fingerprint = await fingerprintFiles(tmpDir);
    opts.onProgress?.({ phase: 'fingerprint', done: 1, total: 1 });
    timings.fingerprint = Date.now() - t;

    const train = index.filter((e) => e.split === 'train').length;
    const files: Record<string, number> = {};
    for (const name of [CACHE_FILES.images, CACHE_FILES.imageEmbeddings, CACHE_FILES.textEmbeddings, CACHE_FILES.captions, CACHE_FILES.index]) {
      files[name] = (await fs.stat(path.join(tmpDir, name))).size;
    }
    const manifest: CacheManifest = {
      version: CACHE_VERSION,
      kind: 'cvae-dataset-cache',
      createdAt: new Date().toISOString(),
      resolution,
      channels: 3,
      layout: 'NHWC',
      embeddingDim: dim,
      clipModel: embedder.modelId,
      clipQuantized: embedder.quantized,
      counts: { images: index.length, captions: captions.length, train, val: index.length - train },
      settings: {
        source: path.resolve(opts.source),
        valFraction,
        minSide,
        batchSize,
        crop: 'center, lanczos3',
        alphaBackground: `rgb(${FLATTEN_BACKGROUND.r},${FLATTEN_BACKGROUND.g},${FLATTEN_BACKGROUND.b})`,
      },
      fingerprint,
      files,
    };
    timings.total = Date.now() - started;
    const report: BuildReport = {
      outDir,
      source: path.resolve(opts.source),
      captionFiles,
      counts: {
        imagesListed,
        imagesKept: index.length,
        captionsListed,
        captionsKept: captions.length,
        train,
        val: index.length - train,
        skipped: countBy(issues.map((i) => i.kind)),
        converted: countBy(converted.flatMap((c) => c.conversions)),
      },
      issues,
      converted,
      fingerprint,
      timingsMs: timings,
    };
    await writeJson(path.join(tmpDir, CACHE_FILES.report), report, true);
    // The manifest is written last: a folder without one is never taken for a cache.
    await writeJson(path.join(tmpDir, CACHE_FILES.manifest), manifest, true);
    await swapIntoPlace(tmpDir, outDir);
    log.info({ outDir, images: index.length, captions: captions.length, skipped: issues.length, ms: timings.total }, 'dataset cache built');
    return report;
  } catch (err) {
    await fs.rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
}

/** Renames the finished temp folder to the output path, replacing an older cache there. */
async function swapIntoPlace(tmpDir: string, outDir: string): Promise<void> {
  const current = await checkOutDir(outDir); // re-check: something may have appeared meanwhile
  if (current === 'absent') {
    await fs.rename(tmpDir, outDir);
  } else if (current === 'empty') {
    await fs.rmdir(outDir);
    await fs.rename(tmpDir, outDir);
  } else {
    const old = `${outDir}.old-${process.pid}-${Date.now()}`;
    await fs.rename(outDir, old);
    await fs.rename(tmpDir, outDir);
    await fs.rm(old, { recursive: true, force: true });
  }
}
