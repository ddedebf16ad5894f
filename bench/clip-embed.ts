/**
 * CLIP embedding throughput: `npx tsx bench/clip-embed.ts [MODEL_ID_OR_DIR]` (default: the tiny test CLIP).
 * Prints one JSON line per measurement on stdout.
 */
import os from 'node:os';
import path from 'node:path';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { repoRoot } from '../src/paths.js';
import { positionalArgsOrExit } from '../src/util/script-args.js';

const [modelArg] = positionalArgsOrExit('Usage: npx tsx bench/clip-embed.ts [MODEL_ID_OR_DIR]   (default: the tiny test CLIP)', 1);
const model = modelArg ?? path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');
const image = path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip', 'images', 'gradient.png');
const texts = Array.from({ length: 100 }, (_, i) => `${i % 5 + 1} ${['white sheep', 'brown cows', 'black horses'][i % 3]} on a ${['green meadow', 'snowy hill', 'yellow field'][i % 3]} under a ${['blue', 'cloudy', 'sunset'][i % 3]} sky, photo ${i}`);

function report(name: string, ms: number, extra: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ bench: name, model, ms: Math.round(ms * 10) / 10, cpus: os.cpus().length, ...extra })}\n`);
}

for (const quantized of [false, true]) {
  for (const textBatchSize of [1, 32]) {
    let t = performance.now();
    const clip = await ClipEmbedder.load({ model, quantized, textBatchSize });
    await clip.warmUp(['text']);
    report('load tokenizer + text tower', performance.now() - t, { quantized });
    t = performance.now();
    await clip.embedTexts(texts);
    const cold = performance.now() - t;
    report('embed 100 texts', cold, { quantized, textBatchSize, textsPerSec: Math.round(100000 / cold) });
    t = performance.now();
    await clip.embedTexts(texts);
    report('embed 100 texts again (cache)', performance.now() - t, { quantized, textBatchSize });
    if (textBatchSize === 32) {
      const images = Array.from({ length: 32 }, () => image);
      await clip.embedImages([image]); // load the vision tower
      t = performance.now();
      await clip.embedImages(images);
      const ms = performance.now() - t;
      report('embed 32 images (300x200 PNG)', ms, { quantized, imagesPerSec: Math.round(32000 / ms) });
    }
    await clip.dispose();
  }
}
