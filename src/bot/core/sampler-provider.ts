/**
 * CheckpointSamplerProvider: the sampler of the active (or a named) checkpoint of the registry, loaded once
 * and cached (a few at a time), keyed by the checkpoint's save time so that a checkpoint re-saved in place
 * (the `best/` of a run that is still training) is loaded again instead of served stale. Refuses a checkpoint
 * trained with a different CLIP model than the loaded embedder's, since its embeddings would mean nothing to it.
 */
import { LRUCache } from 'lru-cache';
import { childLogger } from '../../log.js';
import { sameClipModel } from '../../model/clip/clip-name.js';
import { UserError } from './errors.js';
import type { LoadedSampler, SamplerProvider, ServedModelMeta } from './deps.js';

const log = childLogger('sampler-provider');

/** What a loaded checkpoint sampler offers (the Sampler of src/model/sampler.ts). */
export interface CheckpointSampler {
  readonly meta: ServedModelMeta;
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
  dispose(): void;
}

export interface CheckpointSamplerProviderOptions {
  /** The registry: the active checkpoint and named ones. */
  registry: {
    active(): Promise<{ name: string; dir: string; meta: ServedModelMeta } | null>;
    resolve(name: string): Promise<{ name: string; dir: string; meta: ServedModelMeta }>;
  };
  /** Loads a checkpoint folder (e.g. `Sampler.fromCheckpoint`). */
  load(dir: string): Promise<CheckpointSampler>;
  /** The CLIP model of the loaded embedder. */
  clipModel: string;
  /** Samplers kept loaded (default 2). */
  maxLoaded?: number;
  /** Checkpoints loading at once (default 1): a load exports ONNX and reads weights, CPU and memory heavy. */
  maxConcurrentLoads?: number;
}

/** Runs at most `limit` tasks at once, the others in order of arrival. */
class Limiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** A cached sampler that is disposed only once the batches running on it have finished. */
class ServedSampler {
  private running = 0;
  private disposeWhenIdle = false;

  constructor(readonly inner: CheckpointSampler) {}

  async sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]> {
    this.running++;
    try {
      return await this.inner.sample(embeddings, seeds);
    } finally {
      if (--this.running === 0 && this.disposeWhenIdle) this.inner.dispose();
    }
  }

  dispose(): void {
    if (this.running === 0) this.inner.dispose();
    else this.disposeWhenIdle = true;
  }
}

/** Loads and caches checkpoint samplers; see the module comment. */
export class CheckpointSamplerProvider implements SamplerProvider {
  private readonly cache: LRUCache<string, Promise<ServedSampler>>;
  private readonly loads: Limiter;

  constructor(private readonly o: CheckpointSamplerProviderOptions) {
    this.loads = new Limiter(o.maxConcurrentLoads ?? 1);
    this.cache = new LRUCache<string, Promise<ServedSampler>>({
      max: o.maxLoaded ?? 2,
      dispose: (p) => { p.then((s) => s.dispose(), () => undefined); },
    });
  }

  async get(modelName?: string): Promise<LoadedSampler> {
    const entry = modelName ? await this.o.registry.resolve(modelName) : await this.o.registry.active();
    if (!entry) {
      throw new UserError('No model is being served yet. An admin can train one with `/train start` and pick it with `/model use <name>`.');
    }
    if (!sameClipModel(entry.meta.clipModel, this.o.clipModel)) {
      throw new UserError(
        `Model \`${entry.name}\` was trained with CLIP \`${entry.meta.clipModel}\`, but the bot loaded \`${this.o.clipModel}\`. `
        + 'Admins: serve a model trained with the loaded CLIP (`/model list`), or restart the bot with CLIP_MODEL set to the model\'s CLIP.');
    }
    const place = `${entry.name}\u0000${entry.dir}\u0000`;
    const key = `${place}${entry.meta.createdAt ?? ''}\u0000${entry.meta.step ?? ''}`;
    let loading = this.cache.get(key);
    if (!loading) {
      // An older save of the same checkpoint folder is stale now: drop (and dispose) it.
      for (const k of [...this.cache.keys()]) if (k.startsWith(place)) this.cache.delete(k);
      log.info({ model: entry.name, step: entry.meta.step }, 'loading checkpoint for serving');
      loading = this.loads.run(() => this.o.load(entry.dir)).then((s) => new ServedSampler(s));
      this.cache.set(key, loading);
      loading.catch(() => this.cache.delete(key));
    }
    const sampler = await loading;
    return { name: entry.name, meta: sampler.inner.meta, sample: (e, s) => sampler.sample(e, s) };
  }

  /** Disposes every loaded sampler. */
  clear(): void {
    this.cache.clear();
  }
}
