/**
 * Serving benchmark: decode latency of the samplers (ONNX Runtime and TensorFlow.js on the backend
 * `initBackend()` picks) at several batch sizes for the 64 px and 128 px seed presets, the end-to-end
 * /imagine path (tiny-CLIP text embedding + ONNX decode of 4 images + grid PNG), and full-size parity of the
 * ONNX export with the TensorFlow.js decoder. Models have random weights (speed does not depend on training)
 * with random BatchNorm statistics; each lives in a temporary checkpoint folder, exported like in serving.
 *
 *   npx tsx bench/decode.ts [--presets 64-image,128-image] [--batches 1,4,32] [--engines onnx,tfjs]
 *                           [--runs 10] [--warmup 2] [--tfjs-budget 60] [--threads N] [--imagine-runs 20]
 *                           [--no-parity] [--json FILE]
 *
 * Latency is the wall time of `sampler.sample(embeddings, seeds)` (latents, decode, uint8 images), median and
 * p95 (nearest rank) after warm-up runs. TensorFlow.js without libtensorflow is slow: each of its
 * configurations gets one warm-up run and then as many timed runs as fit in `--tfjs-budget` seconds (at
 * least 1, at most `--runs`); configurations whose single run is estimated above that budget are skipped.
 * The results say so (`note`). `runDecodeBench` is exported for `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { buildCvae } from '../src/model/cvae.js';
import { gridPng } from '../src/model/image-grid.js';
import { DECODER_ONNX } from '../src/model/onnx/checkpoint-export.js';
import { exportDecoderOnnx } from '../src/model/onnx/export.js';
import { WorkerDecoderSession } from '../src/model/onnx/decoder-session.js';
import { OnnxSampler, decoderSessionOptions, onnxThreads } from '../src/model/onnx/onnx-sampler.js';
import { getPreset, type Preset } from '../src/model/presets.js';
import { Sampler } from '../src/model/sampler.js';
import { repoRoot } from '../src/paths.js';
import { randomizeDecoderBatchNorm, uniforms } from '../tests/model/onnx/helpers.js';
import { scriptArgsOrExit } from '../src/util/script-args.js';

/** One decode measurement. */
export interface DecodeResult {
  engine: 'onnx' | 'tfjs';
  /** TensorFlow.js backend (tfjs engine) or `onnxruntime-node <threads> threads`. */
  backend: string;
  preset: string;
  resolution: number;
  batch: number;
  /** Timed runs (0 when skipped). */
  runs: number;
  warmup: number;
  medianMs: number | null;
  p95Ms: number | null;
  minMs: number | null;
  imagesPerSec: number | null;
  /**
   * Median CPU time of a run, all threads of the process together (process.cpuUsage): on a machine shared
   * with other work it is a steadier measure than wall time; about wall x threads when nothing else runs.
   */
  cpuMedianMs: number | null;
  /** Why runs were capped or the configuration skipped. */
  note?: string;
}

/** The /imagine path: embed one prompt, decode 4 images at 128 px on ONNX Runtime, render the grid PNG. */
export interface ImagineResult {
  preset: string;
  images: number;
  runs: number;
  medianMs: number;
  p95Ms: number;
  /** Medians of the parts. */
  embedMs: number;
  decodeMs: number;
  gridMs: number;
  /** Median CPU time of the whole path (all threads). */
  cpuMs: number;
  clip: string;
}

/** Full-size parity of the ONNX export (float output) with the TensorFlow.js decoder. */
export interface ParityResult {
  preset: string;
  batch: number;
  maxAbsDiff: number;
}

/** Everything one run of the benchmark measured. */
export interface DecodeBenchReport {
  machine: { cpus: number; cpuModel: string; loadAvgStart: number[]; loadAvgEnd: number[]; node: string; tfjsBackend: string };
  decode: DecodeResult[];
  imagine: ImagineResult | null;
  parity: ParityResult[];
  peakRssMb: number;
}

/** Options of `runDecodeBench`. */
export interface DecodeBenchOptions {
  presets?: string[];
  batches?: number[];
  engines?: ('onnx' | 'tfjs')[];
  /** Timed runs per configuration (default 10; at least 5 for a p95). */
  runs?: number;
  /** Untimed runs first (default 2; TensorFlow.js gets 1). */
  warmup?: number;
  /** Seconds of timed TensorFlow.js runs per configuration (default 60). */
  tfjsBudgetSec?: number;
  /** ONNX Runtime intra-op threads (default ONNX_THREADS or the number of cores). */
  threads?: number;
  /** Timed runs of the /imagine path (default 20; 0 skips it). */
  imagineRuns?: number;
  /** Full-size parity check (default true). */
  parity?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const round1 = (v: number) => Math.round(v * 10) / 10;

function embeddings(preset: Preset, n: number, seed: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => {
    const e = uniforms(seed + i, preset.embeddingDim, -1, 1);
    const norm = Math.hypot(...e);
    return e.map((v) => v / norm);
  });
}

/** A temporary checkpoint of a preset with random weights and random BatchNorm statistics. */
async function tempCheckpoint(root: string, preset: Preset): Promise<string> {
  const dir = path.join(root, preset.name);
  const cvae = buildCvae(preset, { seed: 1 });
  randomizeDecoderBatchNorm(cvae, 7);
  await saveCheckpoint(dir, cvae, {
    name: preset.name, preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: 'bench',
    datasetFingerprint: 'bench', epoch: 0, step: 0, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
  return dir;
}

/** Wall times (sorted) of `runs` calls, with their CPU times (sorted) as `cpu`. */
async function timeRuns(fn: () => Promise<unknown>, runs: number): Promise<number[] & { cpu: number[] }> {
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
    sampleRss();
  }
  return Object.assign(times.sort((a, b) => a - b), { cpu: cpu.sort((a, b) => a - b) });
}

function summarize(
  base: Omit<DecodeResult, 'medianMs' | 'p95Ms' | 'minMs' | 'imagesPerSec' | 'runs' | 'cpuMedianMs'>,
  times: number[] & { cpu?: number[] },
): DecodeResult {
  if (!times.length) return { ...base, runs: 0, medianMs: null, p95Ms: null, minMs: null, imagesPerSec: null, cpuMedianMs: null };
  const median = percentile(times, 50);
  return {
    ...base,
    cpuMedianMs: times.cpu?.length ? round1(percentile(times.cpu, 50)) : null,
    runs: times.length,
    medianMs: round1(median),
    p95Ms: round1(percentile(times, 95)),
    minMs: round1(times[0]),
    imagesPerSec: round1((base.batch * 1000) / median),
  };
}

/** Full-size parity: the float ONNX export against TensorFlow.js on random inputs. */
async function fullSizeParity(preset: Preset, batch: number): Promise<ParityResult> {
  const cvae = buildCvae(preset, { seed: 2 });
  try {
    randomizeDecoderBatchNorm(cvae, 9);
    const z = uniforms(1, batch * preset.latentDim, -2.5, 2.5);
    const emb = uniforms(2, batch * preset.embeddingDim, -0.1, 0.1);
    const ref = tf.tidy(() => cvae.decode(tf.tensor2d(z, [batch, preset.latentDim]), tf.tensor2d(emb, [batch, preset.embeddingDim])).dataSync());
    // Through the shared worker, like the samplers.
    const session = await WorkerDecoderSession.open(exportDecoderOnnx(cvae, { output: 'float' }), decoderSessionOptions(onnxThreads()));
    const out = await session.run({ z: { data: z, dims: [batch, preset.latentDim] }, embedding: { data: emb, dims: [batch, preset.embeddingDim] } }, 'image');
    await session.close();
    const data = out.data as Float32Array;
    let max = 0;
    for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i] - data[i]));
    return { preset: preset.name, batch, maxAbsDiff: max };
  } finally {
    cvae.dispose();
  }
}

/** Runs the whole serving benchmark. */
export async function runDecodeBench(opts: DecodeBenchOptions = {}): Promise<DecodeBenchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const presets = (opts.presets ?? ['64-image', '128-image']).map(getPreset);
  const batches = opts.batches ?? [1, 4, 32];
  const engines = opts.engines ?? ['onnx', 'tfjs'];
  const runs = opts.runs ?? 10;
  const warmup = opts.warmup ?? 2;
  const budgetMs = (opts.tfjsBudgetSec ?? 60) * 1000;
  const threads = onnxThreads(opts.threads);
  const loadAvgStart = os.loadavg();
  const backend = await initBackend();
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-decode-'));
  const decode: DecodeResult[] = [];
  const parity: ParityResult[] = [];
  let imagine: ImagineResult | null = null;
  try {
    for (const preset of presets) {
      log(`${preset.name}: building a random-weight checkpoint`);
      const dir = await tempCheckpoint(root, preset);
      if (engines.includes('onnx')) {
        const t = performance.now();
        const sampler = await OnnxSampler.fromCheckpoint(dir, { threads });
        log(`${preset.name}: exported ${DECODER_ONNX} and opened the session in ${Math.round(performance.now() - t)} ms`);
        for (const batch of batches) {
          const embs = embeddings(preset, batch, 100);
          const seeds = Array.from({ length: batch }, (_, i) => i + 1);
          await timeRuns(() => sampler.sample(embs, seeds), warmup);
          const times = await timeRuns(() => sampler.sample(embs, seeds), runs);
          const r = summarize({ engine: 'onnx', backend: `onnxruntime-node ${threads} threads`, preset: preset.name, resolution: preset.resolution, batch, warmup }, times);
          decode.push(r);
          log(`  onnx batch ${batch}: median ${r.medianMs} ms, p95 ${r.p95Ms} ms`);
        }
        sampler.dispose();
      }
      if (engines.includes('tfjs')) {
        const sampler = await Sampler.fromCheckpoint(dir);
        let msPerImage = 0;
        for (const batch of batches) {
          const base = { engine: 'tfjs' as const, backend: backend.backend, preset: preset.name, resolution: preset.resolution, batch, warmup: 1 };
          if (msPerImage && msPerImage * batch > budgetMs) {
            const est = Math.round((msPerImage * batch) / 1000);
            decode.push({ ...summarize({ ...base, warmup: 0 }, []), note: `skipped: one run estimated at ~${est} s, over the ${budgetMs / 1000} s budget` });
            log(`  tfjs batch ${batch}: skipped (~${est} s per run)`);
            continue;
          }
          const embs = embeddings(preset, batch, 100);
          const seeds = Array.from({ length: batch }, (_, i) => i + 1);
          const [first] = await timeRuns(() => sampler.sample(embs, seeds), 1);
          msPerImage = first / batch;
          const n = Math.max(1, Math.min(runs, Math.floor(budgetMs / first)));
          const times = await timeRuns(() => sampler.sample(embs, seeds), n);
          const r = summarize(base, times);
          if (n < runs) r.note = `runs capped at ${n} by the ${budgetMs / 1000} s budget (one run ~${Math.round(first)} ms)`;
          decode.push(r);
          log(`  tfjs (${backend.backend}) batch ${batch}: median ${r.medianMs} ms over ${n} runs`);
        }
        sampler.dispose();
      }
    }

    const imagineRuns = opts.imagineRuns ?? 20;
    const big = presets.find((p) => p.resolution === 128);
    if (imagineRuns > 0 && big && engines.includes('onnx')) {
      const clipDir = path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');
      const clip = await ClipEmbedder.load({ model: clipDir, textCacheSize: 0 });
      const sampler = await OnnxSampler.fromCheckpoint(path.join(root, big.name), { threads });
      const count = 4;
      const once = async (i: number) => {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const [emb] = await clip.embedTexts([`${i % 7} white sheep and brown cows on a green hill under a cloudy sky, photo ${i}`]);
        const t1 = performance.now();
        const images = await sampler.sample(Array(count).fill(emb), Array.from({ length: count }, (_, k) => i * count + k));
        const t2 = performance.now();
        await gridPng(images, big.resolution);
        const t3 = performance.now();
        sampleRss();
        const c = process.cpuUsage(c0);
        return [t3 - t0, t1 - t0, t2 - t1, t3 - t2, (c.user + c.system) / 1000];
      };
      for (let i = 0; i < warmup + 1; i++) await once(-1 - i);
      const parts: number[][] = [];
      for (let i = 0; i < imagineRuns; i++) parts.push(await once(i));
      const col = (j: number) => parts.map((p) => p[j]).sort((a, b) => a - b);
      const total = col(0);
      imagine = {
        preset: big.name, images: count, runs: imagineRuns, clip: 'tests/fixtures/tiny-clip',
        medianMs: round1(percentile(total, 50)), p95Ms: round1(percentile(total, 95)),
        embedMs: round1(percentile(col(1), 50)), decodeMs: round1(percentile(col(2), 50)), gridMs: round1(percentile(col(3), 50)),
        cpuMs: round1(percentile(col(4), 50)),
      };
      log(`imagine (${count} x ${big.resolution} px): median ${imagine.medianMs} ms, p95 ${imagine.p95Ms} ms`);
      sampler.dispose();
      await clip.dispose();
    }

    if (opts.parity ?? true) {
      for (const preset of presets) {
        parity.push(await fullSizeParity(preset, 2));
        log(`parity ${preset.name}: max abs ${parity.at(-1)?.maxAbsDiff.toExponential(2)}`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return {
    machine: {
      cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', loadAvgStart, loadAvgEnd: os.loadavg(), node: process.version,
      tfjsBackend: backend.backend,
    },
    decode,
    imagine,
    parity,
    peakRssMb: Math.round(peakRss / 2 ** 20),
  };
}

/** A plain-text table of a report. */
export function decodeTable(r: DecodeBenchReport): string {
  const lines = [
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, load average ${r.machine.loadAvgStart.map((v) => v.toFixed(1)).join('/')} at start, ${r.machine.loadAvgEnd.map((v) => v.toFixed(1)).join('/')} at end, node ${r.machine.node}`,
    '',
    'engine  backend                        preset      px  batch  runs  median ms    p95 ms  images/s    cpu ms  note',
  ];
  for (const d of r.decode) {
    const f = (v: number | null) => (v === null ? '-' : String(v));
    lines.push(
      `${d.engine.padEnd(7)} ${d.backend.padEnd(30)} ${d.preset.padEnd(10)} ${String(d.resolution).padStart(3)} ${String(d.batch).padStart(6)} ${String(d.runs).padStart(5)} ${f(d.medianMs).padStart(10)} ${f(d.p95Ms).padStart(9)} ${f(d.imagesPerSec).padStart(9)} ${f(d.cpuMedianMs).padStart(9)}  ${d.note ?? ''}`,
    );
  }
  if (r.imagine) {
    const i = r.imagine;
    lines.push('', `/imagine (tiny CLIP + ONNX decode of ${i.images} x ${i.preset} + grid PNG), ${i.runs} runs: median ${i.medianMs} ms, p95 ${i.p95Ms} ms (embed ${i.embedMs}, decode ${i.decodeMs}, grid ${i.gridMs} ms medians; CPU ${i.cpuMs} ms)`);
  }
  for (const p of r.parity) lines.push(`parity ${p.preset} (full size, batch ${p.batch}): max abs difference ONNX vs TensorFlow.js ${p.maxAbsDiff.toExponential(2)}`);
  lines.push(`peak RSS ${r.peakRssMb} MB`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const values = scriptArgsOrExit(`Usage:
  npx tsx bench/decode.ts [--presets 64-image,128-image] [--batches 1,4,32] [--engines onnx,tfjs]
                          [--runs 10] [--warmup 2] [--tfjs-budget 60] [--threads N] [--imagine-runs 20]
                          [--no-parity] [--json FILE]`, {
    presets: { type: 'string' }, batches: { type: 'string' }, engines: { type: 'string' }, runs: { type: 'string' },
    warmup: { type: 'string' }, 'tfjs-budget': { type: 'string' }, threads: { type: 'string' }, 'imagine-runs': { type: 'string' },
    'no-parity': { type: 'boolean' }, json: { type: 'string' },
  });
  const list = (v?: string) => v?.split(',').map((s) => s.trim()).filter(Boolean);
  const num = (v?: string) => (v === undefined ? undefined : Number(v));
  const report = await runDecodeBench({
    presets: list(values.presets),
    batches: list(values.batches)?.map(Number),
    engines: list(values.engines) as ('onnx' | 'tfjs')[] | undefined,
    runs: num(values.runs),
    warmup: num(values.warmup),
    tfjsBudgetSec: num(values['tfjs-budget']),
    threads: num(values.threads),
    imagineRuns: num(values['imagine-runs']),
    parity: !values['no-parity'],
  });
  process.stdout.write(`${decodeTable(report)}\n${JSON.stringify(report)}\n`);
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main();
}
