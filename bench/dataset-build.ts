/**
 * Dataset pipeline throughput: synthesises COUNT scenes, builds the cache with a CLIP model, then reads one epoch.
 *   npx tsx bench/dataset-build.ts [COUNT=2000] [RES=64] [MODEL_ID_OR_DIR=tiny test CLIP]
 * Prints one JSON line per step on stdout (times in ms).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { repoRoot } from '../src/paths.js';
import { positionalArgsOrExit } from '../src/util/script-args.js';
import { buildDatasetCache } from '../src/training/data/cache-build.js';
import { openDatasetCache } from '../src/training/data/cache-loader.js';
import { generateSyntheticDataset } from '../src/training/data/synth/write.js';

const args = positionalArgsOrExit('Usage: npx tsx bench/dataset-build.ts [COUNT=2000] [RES=64] [MODEL_ID_OR_DIR=tiny test CLIP]', 3);
const count = Number(args[0] ?? 2000);
const resolution = Number(args[1] ?? 64);
const model = args[2] ?? path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-dataset-'));
const report = (step: string, ms: number, extra: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ bench: 'dataset', step, count, resolution, model, ms: Math.round(ms), cpus: os.cpus().length, loadavg: os.loadavg()[0].toFixed(1), ...extra })}\n`);

try {
  let t = performance.now();
  await generateSyntheticDataset({ count, resolution, seed: 1, outDir: path.join(tmp, 'synth') });
  report('synth', performance.now() - t);
  const embedder = await ClipEmbedder.load({ model });
  t = performance.now();
  const r = await buildDatasetCache({ source: path.join(tmp, 'synth'), outDir: path.join(tmp, 'cache'), resolution, embedder });
  report('build', performance.now() - t, { images: r.counts.imagesKept, captions: r.counts.captionsKept, phasesMs: r.timingsMs });
  await embedder.dispose();
  for (const conditioning of ['image', 'text'] as const) {
    const src = await openDatasetCache(path.join(tmp, 'cache'), { conditioning });
    t = performance.now();
    let n = 0;
    for await (const b of src.batches('train', 32, { seed: 1, epoch: 0 })) n += b.size;
    report(`load epoch (${conditioning})`, performance.now() - t, { images: n });
  }
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
