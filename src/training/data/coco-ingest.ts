/**
 * `dataset coco`: from a COCO captions file to a bucolic subset in COCO layout that `dataset build` reads:
 * `<out>/annotations/captions_<name>_bucolic.json` (selected images and all their captions) and `<out>/images/`
 * (only the selected images: copied from a local COCO image folder, or downloaded by `coco_url`).
 * A run report goes to `<out>/coco-report.json` (and the download report to `<out>/download-report.json`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import { readCocoCaptions, selectByKeywords, writeCocoCaptions, type CocoSelection } from './coco.js';
import { downloadImages, writeDownloadReport, type DownloadOptions, type DownloadProgress, type DownloadReport } from './download.js';
import { checkDecodes } from './images.js';
import { DEFAULT_BUCOLIC_KEYWORDS } from './keywords.js';
import { copyFileAtomic } from '../../util/durable-write.js';
import { runPool } from './pool.js';

const log = childLogger('coco-ingest');

export interface CocoIngestOptions {
  /** A COCO captions JSON (captions_train2017.json...). */
  captionsFile: string;
  /** Output folder (COCO layout). */
  outDir: string;
  /** Local COCO image folder (e.g. train2017/) to copy the selected images from. */
  imagesDir?: string;
  /** Download selected images that are not available locally, by their `coco_url`. */
  download?: boolean;
  /** Keywords (default: the bucolic list). */
  keywords?: readonly string[];
  /** Download settings (concurrency, retries, fetch...). */
  downloadOptions?: Omit<DownloadOptions, 'outDir' | 'onProgress' | 'signal'>;
  /** Called once the selection is known (before copying or downloading). */
  onSelected?: (selection: CocoSelection) => void;
  /** Copy / download progress. */
  onProgress?: (p: { phase: 'copy' | 'download'; done: number; total: number }) => void;
  signal?: AbortSignal;
}

export interface CocoIngestReport {
  captionsFile: string;
  annotationsFile: string;
  imagesDir: string;
  keywords: CocoSelection['keywords'];
  totals: CocoSelection['totals'];
  images: {
    /** Already in the output image folder and decodable. */
    present: number;
    copied: number;
    downloaded: number;
    /** Selected images that are not in the output folder after this run. */
    missing: (number | string)[];
  };
  download?: Omit<DownloadReport, 'downloaded' | 'skipped'> & { downloaded: number; skipped: number };
  reportFile: string;
}

/** Name of the subset file for a captions file: captions_train2017.json → captions_train2017_bucolic.json. */
export function subsetFileName(captionsFile: string): string {
  const base = path.basename(captionsFile, '.json').replace(/^captions_/, '');
  return `captions_${base}_bucolic.json`;
}

/** Runs the selection and gathers the selected images. Failures of single images never stop it. */
export async function ingestCoco(opts: CocoIngestOptions): Promise<CocoIngestReport> {
  const data = await readCocoCaptions(opts.captionsFile);
  const selection = selectByKeywords(data, opts.keywords ?? DEFAULT_BUCOLIC_KEYWORDS);
  // File names become plain names in the output folder (no folders, no "..").
  const images = selection.subset.images.map((img) => ({ ...img, file_name: path.basename(img.file_name) }));
  const subset = { ...selection.subset, images };
  opts.onSelected?.(selection);
  if (selection.totals.imagesSelected === 0) {
    throw new UserError(`No caption in ${opts.captionsFile} mentions any of the keywords; nothing selected. Check --keywords.`);
  }
  const outDir = path.resolve(opts.outDir);
  const imagesOut = path.join(outDir, 'images');
  await fs.mkdir(imagesOut, { recursive: true });
  const annotationsFile = path.join(outDir, 'annotations', subsetFileName(opts.captionsFile));
  await writeCocoCaptions(annotationsFile, subset);

  // What is already there (and decodes), what can be copied, what must be downloaded.
  let present = 0;
  let copied = 0;
  const toFetch: typeof images = [];
  let done = 0;
  const total = images.length;
  opts.onProgress?.({ phase: 'copy', done, total });
  await runPool(
    images,
    8,
    async (img) => {
      const dest = path.join(imagesOut, img.file_name);
      if ((await fs.stat(dest).then((s) => s.isFile(), () => false)) && (await checkDecodes(dest)) === null) {
        present++;
      } else if (opts.imagesDir && (await fs.stat(path.join(opts.imagesDir, img.file_name)).then((s) => s.isFile(), () => false))) {
        await copyFileAtomic(path.join(opts.imagesDir, img.file_name), dest);
        copied++;
      } else {
        toFetch.push(img);
      }
      opts.onProgress?.({ phase: 'copy', done: ++done, total });
    },
    opts.signal,
  );

  let download: DownloadReport | undefined;
  if (opts.download && toFetch.length > 0) {
    const items = toFetch.flatMap((img) =>
      img.coco_url ? [{ id: img.id, url: img.coco_url, fileName: img.file_name }] : [],
    );
    const noUrl = toFetch.filter((img) => !img.coco_url);
    download = await downloadImages(items, {
      ...opts.downloadOptions,
      outDir: imagesOut,
      signal: opts.signal,
      onProgress: (p: DownloadProgress) => opts.onProgress?.({ phase: 'download', done: p.done, total: p.total }),
    });
    for (const img of noUrl) {
      download.failed.push({ id: img.id, url: '', reason: 'no coco_url in the captions file', attempts: 0 });
    }
    await writeDownloadReport(path.join(outDir, 'download-report.json'), download);
  }
  const got = new Set((download?.downloaded ?? []).map(String));
  const missing = toFetch.filter((img) => !got.has(String(img.id))).map((img) => img.id);
  if (!opts.download && !opts.imagesDir && missing.length > 0) {
    log.warn({ missing: missing.length }, 'selected images are not in the output folder; pass --images DIR or --download');
  }
  const reportFile = path.join(outDir, 'coco-report.json');
  const report: CocoIngestReport = {
    captionsFile: path.resolve(opts.captionsFile),
    annotationsFile,
    imagesDir: imagesOut,
    keywords: selection.keywords,
    totals: selection.totals,
    images: { present, copied, downloaded: got.size, missing },
    download: download && {
      ...download,
      downloaded: download.downloaded.length,
      skipped: download.skipped.length,
    },
    reportFile,
  };
  await fs.writeFile(reportFile, JSON.stringify(report, null, 2));
  return report;
}
