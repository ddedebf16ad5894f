/**
 * `dataset`: the dataset command group.
 *
 *   dataset coco  --captions FILE [--images DIR] [--download] [--out DIR] [--concurrency 8] [--keywords a,b,c]
 *   dataset synth --count N --res 64|128 --seed S --out DIR            (dataset-synth.ts)
 *   dataset build --source DIR --res 64|128 [--clip-model ID_OR_DIR] [--out DIR] [--val-fraction 0.1] [--batch-size 32]
 *   dataset info  DIR [--json] [--verify]
 *
 * Progress bars go to stderr; results to stdout.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { dataDir } from '../../paths.js';
import { ClipEmbedder } from '../../model/clip/embedder.js';
import { buildDatasetCache, type BuildProgress, type BuildReport } from '../../training/data/cache-build.js';
import { CACHE_FILES, DEFAULT_VAL_FRACTION, type CacheManifest } from '../../training/data/cache-format.js';
import { readCacheManifest } from '../../training/data/cache-loader.js';
import { ingestCoco, type CocoIngestReport } from '../../training/data/coco-ingest.js';
import { fingerprintFiles } from '../../training/data/fingerprint.js';
import { DEFAULT_MIN_SIDE } from '../../training/data/images.js';
import { DEFAULT_BUCOLIC_KEYWORDS, parseKeywordList } from '../../training/data/keywords.js';
import { registerSynth } from './dataset-synth.js';

function parseNumber(name: string, value: string, opts: { min: number; max: number; integer?: boolean }): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < opts.min || n > opts.max || (opts.integer && !Number.isInteger(n))) {
    throw new UserError(`--${name} must be ${opts.integer ? 'a whole number' : 'a number'} from ${opts.min} to ${opts.max}, got "${value}".`);
  }
  return n;
}

/** A progress bar on stderr that switches label per phase; a no-op when disabled. */
function phaseBar(enabled: boolean) {
  let bar: cliProgress.SingleBar | undefined;
  let phase = '';
  return {
    update(label: string, done: number, total: number) {
      if (!enabled) return;
      if (label !== phase) {
        bar?.stop();
        phase = label;
        bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${label.padEnd(10)} [{bar}] {percentage}% {value}/{total} | {eta_formatted} left`, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      } else {
        bar?.setTotal(total);
        bar?.update(done);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** Human summary of a `dataset coco` run. */
export function formatCocoReport(r: CocoIngestReport): string {
  const lines = [
    `scanned ${r.totals.imagesScanned} images / ${r.totals.captionsScanned} captions in ${r.captionsFile}`,
    `selected ${r.totals.imagesSelected} images with ${r.totals.captionsSelected} captions (${r.totals.captionsMatched} captions matched a keyword)`,
    'keyword        images  captions',
    ...r.keywords.map((k) => `${k.keyword.padEnd(14)} ${String(k.images).padStart(6)}  ${String(k.captions).padStart(8)}`),
    `annotations: ${r.annotationsFile}`,
    `images: ${r.imagesDir} (already there ${r.images.present}, copied ${r.images.copied}, downloaded ${r.images.downloaded}, missing ${r.images.missing.length})`,
  ];
  if (r.download) {
    lines.push(`download: ${r.download.downloaded} fetched, ${r.download.skipped} already there, ${r.download.retried.length} needed retries, ${r.download.failed.length} failed`);
    for (const f of r.download.failed.slice(0, 20)) lines.push(`  failed ${f.id} ${f.url}: ${f.reason}`);
    if (r.download.failed.length > 20) lines.push(`  ... and ${r.download.failed.length - 20} more (see download-report.json)`);
  }
  if (r.images.missing.length > 0 && !r.download) lines.push('some selected images are not available: pass --images DIR (a local COCO image folder) or --download');
  lines.push(`report: ${r.reportFile}`);
  return `${lines.join('\n')}\n`;
}

/** Human summary of a `dataset build` run. */
export function formatBuildReport(r: BuildReport): string {
  const kv = (o: Record<string, number | undefined>) => Object.entries(o).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const lines = [
    `built ${r.outDir}: ${r.counts.imagesKept} of ${r.counts.imagesListed} images (train ${r.counts.train}, val ${r.counts.val}), ${r.counts.captionsKept} captions`,
    `skipped: ${kv(r.counts.skipped)}`,
    `converted: ${kv(r.counts.converted)}`,
    ...r.issues.slice(0, 20).map((i) => `  ${i.kind} ${i.id}${i.file ? ` ${i.file}` : ''}${i.detail ? `: ${i.detail}` : ''}`),
    ...(r.issues.length > 20 ? [`  ... and ${r.issues.length - 20} more (see ${CACHE_FILES.report})`] : []),
    `fingerprint ${r.fingerprint}`,
    `time ${(r.timingsMs.total / 1000).toFixed(1)} s (images ${(r.timingsMs.images / 1000).toFixed(1)} s, captions ${(r.timingsMs.captions / 1000).toFixed(1)} s)`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Human view of a cache manifest. */
export function formatManifest(dir: string, m: CacheManifest): string {
  return [
    `dataset cache ${dir}`,
    `  version       ${m.version}`,
    `  created       ${m.createdAt}`,
    `  resolution    ${m.resolution}x${m.resolution} RGB (${m.layout})`,
    `  images        ${m.counts.images} (train ${m.counts.train}, val ${m.counts.val})`,
    `  captions      ${m.counts.captions}`,
    `  clip model    ${m.clipModel}${m.clipQuantized ? ' (quantized)' : ''}, ${m.embeddingDim}-d`,
    `  source        ${m.settings.source}`,
    `  val fraction  ${m.settings.valFraction}, min side ${m.settings.minSide} px, crop ${m.settings.crop}`,
    `  fingerprint   ${m.fingerprint}`,
    '',
  ].join('\n');
}

interface CocoOpts {
  captions: string;
  images?: string;
  download?: boolean;
  out?: string;
  concurrency: string;
  retries: string;
  keywords?: string;
  json?: boolean;
  progress?: boolean;
}

interface BuildOpts {
  source: string;
  images?: string;
  res: string;
  clipModel?: string;
  quantized?: boolean;
  out?: string;
  valFraction: string;
  batchSize: string;
  minSide: string;
  json?: boolean;
  progress?: boolean;
}

/** Runs `dataset coco`. */
export async function runCoco(opts: CocoOpts): Promise<CocoIngestReport> {
  const concurrency = parseNumber('concurrency', opts.concurrency, { min: 1, max: 64, integer: true });
  const retries = parseNumber('retries', opts.retries, { min: 0, max: 20, integer: true });
  const keywords = opts.keywords ? parseKeywordList(opts.keywords) : [...DEFAULT_BUCOLIC_KEYWORDS];
  const outDir = path.resolve(opts.out ?? path.join(dataDir(), 'datasets', 'coco-bucolic'));
  const bar = phaseBar(opts.progress !== false);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const report = await ingestCoco({
      captionsFile: opts.captions,
      imagesDir: opts.images,
      download: opts.download ?? false,
      outDir,
      keywords,
      downloadOptions: { concurrency, retries },
      onProgress: (p) => bar.update(p.phase, p.done, p.total),
      signal: controller.signal,
    });
    bar.stop();
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatCocoReport(report));
    return report;
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
  }
}

/** Runs `dataset build`. */
export async function runBuild(opts: BuildOpts): Promise<BuildReport> {
  const resolution = parseNumber('res', opts.res, { min: 8, max: 512, integer: true });
  const valFraction = parseNumber('val-fraction', opts.valFraction, { min: 0, max: 0.9 });
  const batchSize = parseNumber('batch-size', opts.batchSize, { min: 1, max: 1024, integer: true });
  const minSide = parseNumber('min-side', opts.minSide, { min: 1, max: 4096, integer: true });
  const source = path.resolve(opts.source);
  const outDir = path.resolve(opts.out ?? path.join(dataDir(), 'datasets', `${path.basename(source)}-cache-${resolution}`));
  const embedder = await ClipEmbedder.load({ model: opts.clipModel, quantized: opts.quantized });
  const bar = phaseBar(opts.progress !== false);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const report = await buildDatasetCache({
      source,
      imagesDir: opts.images,
      outDir,
      resolution,
      embedder,
      valFraction,
      batchSize,
      minSide,
      signal: controller.signal,
      onProgress: (p: BuildProgress) => bar.update(p.phase, p.done, p.total),
    });
    bar.stop();
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatBuildReport(report));
    return report;
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
    await embedder.dispose();
  }
}

/** Runs `dataset info`. */
export async function runInfo(dir: string, opts: { json?: boolean; verify?: boolean }): Promise<CacheManifest> {
  const root = path.resolve(dir);
  const manifest = await readCacheManifest(root);
  let verified: boolean | undefined;
  if (opts.verify) verified = (await fingerprintFiles(root)) === manifest.fingerprint;
  const report = await fs
    .readFile(path.join(root, CACHE_FILES.report), 'utf8')
    .then((t) => JSON.parse(t) as BuildReport, () => null);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(verified === undefined ? manifest : { ...manifest, verified })}\n`);
  } else {
    let text = formatManifest(root, manifest);
    if (report) {
      const skipped = Object.entries(report.counts.skipped).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
      text += `  skipped       ${skipped} (see ${CACHE_FILES.report})\n`;
    }
    if (verified !== undefined) text += `  verified      ${verified ? 'yes, the files match the fingerprint' : 'NO: the files do not match the fingerprint; rebuild the cache'}\n`;
    process.stdout.write(text);
  }
  if (verified === false) throw new UserError(`The dataset cache ${root} does not match its fingerprint; rebuild it with \`dataset build\`.`);
  return manifest;
}

export function register(program: Command): void {
  const dataset = program.command('dataset').description('datasets: synthetic scenes, MS COCO subset, embedding cache');

  dataset
    .command('coco')
    .description('select the bucolic subset of a COCO captions file and gather its images (copy from --images or --download)')
    .requiredOption('--captions <file>', 'COCO captions JSON, e.g. annotations/captions_train2017.json')
    .option('--images <dir>', 'local COCO image folder to copy the selected images from (e.g. train2017/)')
    .option('--download', 'download the selected images that are not available locally, by coco_url')
    .option('--out <dir>', 'output folder in COCO layout (default: DATA_DIR/datasets/coco-bucolic)')
    .option('--concurrency <n>', 'parallel downloads', '8')
    .option('--retries <n>', 'extra attempts per image on network errors, 5xx and 429', '4')
    .option('--keywords <list>', `comma-separated keywords (default: ${DEFAULT_BUCOLIC_KEYWORDS.join(',')})`)
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (opts: CocoOpts) => {
      await runCoco(opts);
    });

  registerSynth(dataset);

  dataset
    .command('build')
    .description('center-crop and resize a COCO-layout source, embed images and captions with CLIP, write the training cache')
    .requiredOption('--source <dir>', 'source folder in COCO layout (annotations/*.json + images/), from `dataset coco` or `dataset synth`')
    .option('--res <px>', 'image side in pixels (64 or 128)', '64')
    .option('--clip-model <idOrDir>', 'CLIP model: hub id or local folder (default: CLIP_MODEL or Xenova/clip-vit-base-patch32)')
    .option('--quantized', 'use the uint8-quantized CLIP towers')
    .option('--out <dir>', 'cache folder (default: DATA_DIR/datasets/<source name>-cache-<res>)')
    .option('--images <dir>', 'image folder, when not <source>/images')
    .option('--val-fraction <x>', 'fraction of images in the validation split (by hash of the image id)', String(DEFAULT_VAL_FRACTION))
    .option('--batch-size <n>', 'images per CLIP call', '32')
    .option('--min-side <px>', 'skip images whose shorter side is smaller', String(DEFAULT_MIN_SIDE))
    .option('--json', 'print the build report as JSON')
    .option('--no-progress', 'no progress bars')
    .action(async (opts: BuildOpts) => {
      await runBuild(opts);
    });

  dataset
    .command('info')
    .description('print the manifest of a dataset cache')
    .argument('<dir>', 'cache folder')
    .option('--json', 'print the manifest as JSON')
    .option('--verify', 'recompute the content fingerprint and compare')
    .action(async (dir: string, opts: { json?: boolean; verify?: boolean }) => {
      await runInfo(dir, opts);
    });
}
