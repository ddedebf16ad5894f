/**
 * One sampler call for a batch of generations: the text of each is embedded with CLIP (cached), perturbed for
 * variations, and every image of every job is decoded in one `sampler.sample` call. Shared by the in-process
 * bot core (its ImagineQueue) and the scaled-mode generation worker (src/jobs/generation-worker.ts), so both
 * batch the same way and give the same image for the same prompt and seed.
 */
import { LRUCache } from 'lru-cache';
import { childLogger } from '../../log.js';
import type { Embedder, SamplerProvider } from './deps.js';
import type { BatchWorker } from './queue.js';
import { perturbEmbedding } from './variations.js';

const log = childLogger('batch-sampler');

/** What one generation asks the sampler for. */
export interface GenerationJob {
  prompt: string;
  seeds: number[];
  /** Seed of the embedding perturbation of a variations request (null otherwise). */
  variationSeed: number | null;
}

/** The decoded images of one generation and the model that made them. */
export interface GenerationOutput {
  /** One HxWx3 RGB image per seed. */
  images: Uint8Array[];
  model: string;
  clipModel: string;
  resolution: number;
}

export interface BatchSamplerDeps {
  embedder: Embedder;
  samplers: SamplerProvider;
  /** Prompts whose embeddings are kept (default 500). */
  embeddingCacheSize?: number;
}

export interface BatchSampler {
  /** CLIP text embeddings of the prompts, in order (cached per CLIP model and prompt). */
  embed(prompts: string[]): Promise<Float32Array[]>;
  /** Decodes the jobs of one batch key (a model name, '' = the served model) in one sampler call. */
  runBatch: BatchWorker<GenerationJob, GenerationOutput>;
}

/** Builds the embed + batch step over an embedder and a sampler provider. */
export function createBatchSampler(deps: BatchSamplerDeps): BatchSampler {
  const embeddingCache = new LRUCache<string, Float32Array>({ max: deps.embeddingCacheSize ?? 500 });

  async function embed(prompts: string[]): Promise<Float32Array[]> {
    const key = (p: string) => `${deps.embedder.modelId}\u0000${p}`;
    const missing = [...new Set(prompts.filter((p) => !embeddingCache.has(key(p))))];
    if (missing.length) {
      const embs = await deps.embedder.embedTexts(missing);
      missing.forEach((p, i) => embeddingCache.set(key(p), embs[i]));
    }
    return prompts.map((p) => embeddingCache.get(key(p))!);
  }

  async function runBatch(jobs: GenerationJob[], modelKey: string): Promise<GenerationOutput[]> {
    const sampler = await deps.samplers.get(modelKey || undefined);
    const base = await embed(jobs.map((j) => j.prompt));
    const embeddings: Float32Array[] = [];
    const seeds: number[] = [];
    jobs.forEach((j, i) => {
      const e = j.variationSeed === null ? base[i] : perturbEmbedding(base[i], j.variationSeed);
      for (const s of j.seeds) { embeddings.push(e); seeds.push(s); }
    });
    const t0 = performance.now();
    const images = await sampler.sample(embeddings, seeds);
    log.debug({ jobs: jobs.length, images: images.length, model: sampler.name, ms: Math.round(performance.now() - t0) }, 'sampled batch');
    let offset = 0;
    return jobs.map((j) => {
      const mine = images.slice(offset, offset + j.seeds.length);
      offset += j.seeds.length;
      return { images: mine, model: sampler.name, clipModel: sampler.meta.clipModel, resolution: sampler.meta.resolution };
    });
  }

  return { embed, runBatch };
}
