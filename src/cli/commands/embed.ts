/**
 * `embed`: CLIP embeddings of texts and images from the command line.
 *
 *   embed --text "cows in snow" [--text ...] [--image file.png ...] [--clip-model ID_OR_DIR] [--quantized] [--json]
 *
 * With `--json`, one JSON object per input and line: `{"model", "quantized", "text"|"image", "tokens"?, "embedding": [...]}`.
 */
import fs from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { ClipEmbedder } from '../../model/clip/embedder.js';
import type { ClipLoadProgress } from '../../model/clip/model-source.js';

interface EmbedOptions {
  text: string[];
  image: string[];
  clipModel?: string;
  quantized?: boolean;
  json?: boolean;
}

/** One embedded input, as printed. */
export interface EmbedResult {
  model: string;
  quantized: boolean;
  text?: string;
  image?: string;
  /** Token count the text tower read (texts only). */
  tokens?: number;
  embedding: number[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A cli-progress bar on stderr for model downloads (hub models, first use only). */
function downloadProgress(): { onProgress: (p: ClipLoadProgress) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let file: string | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    file = undefined;
  };
  const onProgress = (p: ClipLoadProgress) => {
    if (p.status !== 'progress' || !p.file || !p.total) return;
    if (p.file !== file) {
      stop();
      file = p.file;
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `downloading ${p.file} [{bar}] {percentage}% {value}/{total} bytes`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total, 0);
    }
    bar?.update(p.loaded ?? 0);
    if (p.loaded === p.total) stop();
  };
  return { onProgress, stop };
}

function summary(r: EmbedResult): string {
  const norm = Math.hypot(...r.embedding);
  const head = r.embedding.slice(0, 4).map((x) => x.toFixed(4)).join(', ');
  const what = r.text !== undefined ? `text "${r.text}" (${r.tokens} tokens)` : `image ${r.image}`;
  return `${what}\n  ${r.embedding.length}-d, |v| = ${norm.toFixed(3)}, [${head}, ...]\n`;
}

/** Embeds the inputs with one embedder; texts first, then images, in the order given. */
export async function embedInputs(opts: EmbedOptions, onProgress?: (p: ClipLoadProgress) => void): Promise<EmbedResult[]> {
  if (opts.text.length === 0 && opts.image.length === 0) {
    throw new UserError('Nothing to embed: give --text "some words" and/or --image FILE (each may be repeated).');
  }
  for (const file of opts.image) {
    // Fail before loading (or downloading) the model.
    if (!fs.existsSync(file)) throw new UserError(`Image file "${file}" does not exist. Check the path.`);
  }
  const embedder = await ClipEmbedder.load({ model: opts.clipModel, quantized: opts.quantized, onProgress });
  try {
    const base = { model: embedder.modelId, quantized: embedder.quantized };
    const results: EmbedResult[] = [];
    const texts = await embedder.embedTexts(opts.text);
    opts.text.forEach((text, i) =>
      results.push({ ...base, text, tokens: embedder.tokenize(text).length, embedding: Array.from(texts[i]) }),
    );
    const images = await embedder.embedImages(opts.image);
    opts.image.forEach((image, i) => results.push({ ...base, image, embedding: Array.from(images[i]) }));
    return results;
  } finally {
    await embedder.dispose();
  }
}

/** Where the command prints its results (stdout; tests pass their own). */
export interface OutputSink {
  write(text: string): unknown;
}

/** Adds the `embed` command. */
export function register(program: Command, out: OutputSink = process.stdout): void {
  program
    .command('embed')
    .description('Print CLIP embeddings (L2-normalised) of texts and images')
    .option('--text <text>', 'a text to embed (repeatable)', collect, [])
    .option('--image <file>', 'an image file to embed: PNG, JPEG, WebP... (repeatable)', collect, [])
    .option('--clip-model <idOrDir>', 'CLIP hub id or local folder (default: CLIP_MODEL or Xenova/clip-vit-base-patch32)')
    .option('--quantized', 'use the quantized (uint8) CLIP towers (default: CLIP_QUANTIZED)')
    .option('--json', 'print one JSON object per input and line: {"model", "embedding": [...], ...}')
    .action(async (opts: EmbedOptions) => {
      const progress = downloadProgress();
      let results: EmbedResult[];
      try {
        results = await embedInputs(opts, progress.onProgress);
      } finally {
        progress.stop();
      }
      for (const r of results) out.write(opts.json ? `${JSON.stringify(r)}\n` : summary(r));
    });
}
