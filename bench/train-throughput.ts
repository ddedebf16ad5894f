/**
 * Training throughput (images/s) of a preset on a TensorFlow.js backend: the real training step
 * (src/training/train-step.ts: forward, loss, gradients, Adam) on synthetic batches, median of several timed
 * runs after warm-up, every backend measured in the same process so that the numbers compare.
 *
 *   npx tsx bench/train-throughput.ts [--presets tiny,demo] [--backends wasm,cpu] [--batch N] [--runs 3]
 *                                     [--warmup 1] [--steps N] [--json FILE]
 *
 * Prints a table, then the results as one JSON line (also written to --json FILE). The stock pure-JS 'cpu'
 * backend needs minutes per `demo` step at its batch of 32: pass `--batch 8` to keep its runs short.
 * `measureTrainThroughput` is exported for `npm run bench`.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend.js';
import { buildCvae } from '../src/model/cvae.js';
import { getPreset } from '../src/model/presets.js';
import { initWasmBackend } from '../src/model/wasm/setup.js';
import { trainStep } from '../src/training/train-step.js';
import { scriptArgsOrExit } from '../src/util/script-args.js';

/** What to measure. */
export interface ThroughputOptions {
  /** Preset name (`tiny`, `demo`, ...). */
  preset: string;
  /**
   * Backend: 'wasm' (with this project's training kernels), 'cpu' (stock pure JS), or another registered name
   * (e.g. 'tensorflow' once `initBackend()` has loaded tfjs-node).
   */
  backend: string;
  /** Images per step (default: the preset's batch size). */
  batchSize?: number;
  /** Untimed steps first (JIT, XNNPACK operator creation, Adam state). Default 1. */
  warmupSteps?: number;
  /** Timed runs; the result is their median. Default 3. */
  runs?: number;
  /**
   * Steps per timed run. Default: enough for a run to last about `minRunSec` judging by the last warm-up
   * step (at least 1).
   */
  stepsPerRun?: number;
  /** Target duration of a timed run when `stepsPerRun` is not given. Default 2 s. */
  minRunSec?: number;
  /** Seed of weights and data. Default 1. */
  seed?: number;
}

/** One measurement. */
export interface ThroughputResult {
  preset: string;
  backend: string;
  batchSize: number;
  warmupSteps: number;
  stepsPerRun: number;
  /** Median images/s over the timed runs. */
  imagesPerSec: number;
  /** Median milliseconds per step. */
  stepMs: number;
  /** images/s of each timed run. */
  runImagesPerSec: number[];
  /** Loss after the last step (a sanity check: finite). */
  finalLoss: number;
  /** Resident set size after the runs, MiB (process-wide). */
  rssMiB: number;
}

/** Makes `name` the current backend. */
export async function useBackend(name: string): Promise<void> {
  if (name === 'wasm') {
    await initWasmBackend();
  } else {
    tf.enableProdMode();
    if (!(await tf.setBackend(name))) throw new Error(`backend ${name} did not initialise`);
    await tf.ready();
  }
  if (tf.getBackend() !== name) throw new Error(`backend ${name} is not available`);
}

/** Deterministic synthetic batch: random pixels, L2-normalised random embeddings. */
function syntheticBatch(size: number, resolution: number, embeddingDim: number, seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const images = new Uint8Array(size * resolution * resolution * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(next() * 256);
  const embeddings = new Float32Array(size * embeddingDim);
  for (let n = 0; n < size; n++) {
    let norm = 0;
    for (let k = 0; k < embeddingDim; k++) {
      const v = next() * 2 - 1;
      embeddings[n * embeddingDim + k] = v;
      norm += v * v;
    }
    for (let k = 0; k < embeddingDim; k++) embeddings[n * embeddingDim + k] /= Math.sqrt(norm);
  }
  return { size, images, embeddings };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Measures training images/s of a preset on a backend (switches the current backend to it; switch back
 * yourself if needed). Weights, optimizer state and tensors are freed afterwards.
 */
export async function measureTrainThroughput(opts: ThroughputOptions): Promise<ThroughputResult> {
  const preset = getPreset(opts.preset);
  const batchSize = opts.batchSize ?? preset.train.batchSize;
  const warmupSteps = opts.warmupSteps ?? 1;
  const runs = opts.runs ?? 3;
  const seed = opts.seed ?? 1;
  await useBackend(opts.backend);
  const cvae = buildCvae(preset, { seed });
  const optimizer = tf.train.adam(preset.train.learningRate);
  const vars = cvae.trainableWeights();
  const batch = syntheticBatch(batchSize, preset.resolution, preset.embeddingDim, seed);
  let step = 0;
  let finalLoss = NaN;
  const once = async () => {
    const terms = await trainStep(cvae, optimizer, vars, batch, preset.resolution, preset.embeddingDim, { seed: seed + step++ });
    finalLoss = terms.total;
  };
  try {
    let lastStepSec = 0;
    for (let i = 0; i < warmupSteps; i++) {
      const t0 = performance.now();
      await once();
      lastStepSec = (performance.now() - t0) / 1000;
    }
    const stepsPerRun = opts.stepsPerRun ?? Math.max(1, Math.ceil((opts.minRunSec ?? 2) / Math.max(lastStepSec, 1e-3)));
    const runImagesPerSec: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      for (let i = 0; i < stepsPerRun; i++) await once();
      const sec = (performance.now() - t0) / 1000;
      runImagesPerSec.push((batchSize * stepsPerRun) / sec);
    }
    const imagesPerSec = median(runImagesPerSec);
    return {
      preset: opts.preset,
      backend: opts.backend,
      batchSize,
      warmupSteps,
      stepsPerRun,
      imagesPerSec,
      stepMs: (1000 * batchSize) / imagesPerSec,
      runImagesPerSec,
      finalLoss,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
  } finally {
    optimizer.dispose();
    cvae.dispose();
  }
}

/** Formats results as a text table, with each backend's speed-up over 'cpu' where measured. */
export function throughputTable(results: ThroughputResult[]): string {
  const cpu = new Map(results.filter((r) => r.backend === 'cpu').map((r) => [`${r.preset}/${r.batchSize}`, r.imagesPerSec]));
  const rows = [['preset', 'batch', 'backend', 'images/s', 'ms/step', 'steps/run', 'runs (images/s)', 'vs cpu']];
  for (const r of results) {
    const base = cpu.get(`${r.preset}/${r.batchSize}`);
    rows.push([
      r.preset,
      String(r.batchSize),
      r.backend,
      r.imagesPerSec.toFixed(2),
      r.stepMs.toFixed(0),
      String(r.stepsPerRun),
      r.runImagesPerSec.map((v) => v.toFixed(2)).join(' '),
      base && r.backend !== 'cpu' ? `${(r.imagesPerSec / base).toFixed(1)}x` : '',
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const values = scriptArgsOrExit(`Usage:
  npx tsx bench/train-throughput.ts [--presets tiny,demo] [--backends wasm,cpu] [--batch N] [--runs 3]
                                    [--warmup 1] [--steps N] [--json FILE]`, {
    presets: { type: 'string', default: 'tiny,demo' },
    backends: { type: 'string' },
    batch: { type: 'string' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    steps: { type: 'string' },
    json: { type: 'string' },
  });
  const best = await initBackend();
  const backends = values.backends
    ? values.backends.split(',')
    : [...new Set([best.backend, 'wasm', 'cpu'])];
  const results: ThroughputResult[] = [];
  for (const preset of values.presets!.split(',')) {
    for (const backend of backends) {
      const r = await measureTrainThroughput({
        preset,
        backend,
        batchSize: values.batch ? Number(values.batch) : undefined,
        runs: Number(values.runs),
        warmupSteps: Number(values.warmup),
        stepsPerRun: values.steps ? Number(values.steps) : undefined,
      });
      results.push(r);
      process.stderr.write(`${preset} on ${backend}: ${r.imagesPerSec.toFixed(2)} images/s\n`);
    }
  }
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadAvg1m: os.loadavg()[0], node: process.version };
  process.stdout.write(`${throughputTable(results)}\n`);
  process.stdout.write(`machine: ${machine.cpus} x ${machine.cpuModel}, load ${machine.loadAvg1m.toFixed(1)}, node ${machine.node}\n`);
  const json = JSON.stringify({ bench: 'train-throughput', machine, results });
  process.stdout.write(`${json}\n`);
  if (values.json) await writeFile(values.json, `${json}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
