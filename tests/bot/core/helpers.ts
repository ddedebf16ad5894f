/** Test helpers for the bot core: a deterministic in-test embedder and sampler, and a sharp renderer. */
import crypto from 'node:crypto';
import sharp from 'sharp';
import type { CatalogEntry, Embedder, ImageRenderer, LoadedSampler, ModelCatalog, SamplerProvider } from '../../../src/bot/core/deps.js';

/** Embeds text by hashing it (test only). */
export class HashEmbedder implements Embedder {
  calls: string[][] = [];
  constructor(readonly modelId = 'test-clip') {}
  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    this.calls.push(texts);
    return texts.map((t) => {
      const h = crypto.createHash('sha512').update(t).digest();
      const v = new Float32Array(16);
      for (let i = 0; i < 16; i++) v[i] = h[i] / 255 - 0.5;
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    });
  }
}

/** A promise and the function that resolves it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** Images that depend on (embedding, seed) (test only). */
export class FakeSamplers implements SamplerProvider {
  calls: { model: string; seeds: number[] }[] = [];
  gate: Promise<void> | null = null;
  private callWaiters: { n: number; resolve: () => void }[] = [];

  /** Resolves once `n` sampler calls have started (a batch is running). */
  waitForCalls(n: number): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.callWaiters.push({ n, resolve }));
  }

  constructor(readonly models: Record<string, string /* clip */> = { m1: 'test-clip' }, public active = 'm1', readonly size = 4) {}
  async get(name?: string): Promise<LoadedSampler> {
    const model = name ?? this.active;
    if (!(model in this.models)) throw new Error(`unknown model ${model}`);
    const clipModel = this.models[model];
    if (clipModel !== 'test-clip') throw new (await import('../../../src/errors.js')).UserError(`Model ${model} was trained with CLIP ${clipModel}`);
    return {
      name: model,
      meta: { clipModel, resolution: this.size, preset: 'tiny' },
      sample: async (embs, seeds) => {
        this.calls.push({ model, seeds });
        this.callWaiters = this.callWaiters.filter((w) => (this.calls.length >= w.n ? (w.resolve(), false) : true));
        if (this.gate) await this.gate;
        return embs.map((e, i) => {
          const img = new Uint8Array(this.size * this.size * 3);
          for (let p = 0; p < img.length; p++) img[p] = Math.floor(((e[p % e.length] + 1) * 97 + seeds[i] * 31 + p) % 256);
          return img;
        });
      },
    };
  }
}

export class FakeCatalog implements ModelCatalog {
  entries: CatalogEntry[];
  registered: { name: string; dir: string }[] = [];
  constructor(samplers: FakeSamplers) {
    this.entries = Object.entries(samplers.models).map(([name, clip]) => ({
      name, dir: `/ckpt/${name}`, meta: { clipModel: clip, resolution: 4, preset: 'tiny' }, active: name === samplers.active,
    }));
  }
  async list() { return this.entries; }
  async register(name: string, dir: string) { this.registered.push({ name, dir }); }
  async activate(name: string) { for (const e of this.entries) e.active = e.name === name; }
  async resolve(name: string) {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new (await import('../../../src/errors.js')).UserError(`no model ${name}`);
    return e;
  }
}

/** Renders with sharp directly (test only; the product uses src/model/image-grid.ts). */
export const sharpRenderer: ImageRenderer = {
  async grid(images, size) {
    const bufs = await Promise.all(images.map((im) => sharp(Buffer.from(im), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer()));
    return sharp({ create: { width: size * images.length, height: size, channels: 3, background: '#000' } })
      .composite(bufs.map((input, i) => ({ input, left: i * size, top: 0 }))).png().toBuffer();
  },
  async image(image, size) {
    return sharp(Buffer.from(image), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  },
};
