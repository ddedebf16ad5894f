/**
 * Synthetic scene throughput and classifier accuracy: `npx tsx bench/synth.ts [COUNT]` (default 2000).
 * Prints one JSON line per measurement on stdout.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { classifyColours, encodePng, generateSyntheticDataset, renderScene, synthItem } from '../src/training/data/synth/index.js';
import { positionalArgsOrExit } from '../src/util/script-args.js';

const [countArg] = positionalArgsOrExit('Usage: npx tsx bench/synth.ts [COUNT]   (default 2000)', 1);
const count = Number(countArg ?? 2000);

function report(name: string, ms: number, extra: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ bench: name, ms: Math.round(ms * 10) / 10, cpus: os.cpus().length, load: os.loadavg()[0].toFixed(1), ...extra })}\n`);
}

for (const res of [64, 128]) {
  const scenes = Array.from({ length: 300 }, (_, i) => synthItem(1, i).scene);
  let t = performance.now();
  const images = scenes.map((s) => renderScene(s, res));
  report(`render 300 scenes at ${res} px`, performance.now() - t, { msPerImage: +((performance.now() - t) / 300).toFixed(2) });
  t = performance.now();
  for (const img of images) await encodePng(img, res);
  report(`encode 300 PNGs at ${res} px`, performance.now() - t);
  let right = 0;
  scenes.forEach((s, i) => {
    const c = classifyColours(images[i], res);
    if (c.sky === s.sky && c.ground === s.ground) right++;
  });
  report(`classifyColours on 300 rendered scenes at ${res} px`, 0, { accuracy: right / 300 });

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'synth-bench-'));
  try {
    t = performance.now();
    const n = res === 64 ? count : Math.ceil(count / 4);
    await generateSyntheticDataset({ count: n, resolution: res, seed: 1, outDir: dir });
    const ms = performance.now() - t;
    report(`dataset synth --count ${n} --res ${res}`, ms, { imagesPerSec: Math.round((n * 1000) / ms) });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
