/**
 * Prometheus metrics for `/metrics` (prom-client, text exposition format): generations and their latency
 * (read from the store, so every platform counts, whatever adapter or worker served it), reactions, the
 * generation queue, sampler batches, training state, readiness, plus Node's process metrics.
 *
 * Counters count since this process started: rows the store had before are skipped. A store that cannot be read
 * (the database is down) leaves the counters where they are; they catch up once it is back.
 */
import client from 'prom-client';
import { childLogger } from '../log.js';
import type { BotStore } from '../bot/core/store/index.js';
import type { LoadedSampler, SamplerProvider } from '../bot/core/deps.js';
import type { Route } from './server.js';
import { readOnlyRoute } from './server.js';

/** Where the gauges read from; each is optional (a part that is not loaded yet reads as empty). */
export interface MetricsSources {
  /** The bot's store (generations, feedback, runs). */
  store?: MetricsStore;
  /** The generation queue. */
  queue?: { stats(): { waiting: number; running: number } };
  /** The training runner. */
  training?: { readonly busy: boolean };
  /** Progress of the current training run, 0..1 (null: none or unknown). */
  trainingProgress?: () => number | null;
  /** Readiness (1 when /healthz says ok). */
  ready?: () => Promise<boolean>;
  /** The model being served and its CLIP model. */
  servedModel?: () => Promise<{ name: string; clipModel: string } | null>;
  /** Disk use of the data directory by part, in bytes (src/bot/retention.ts: dataDirUsage). */
  diskUsage?: () => Promise<Record<string, number>>;
  /** The engine and device that decode images here (src/model/decoder-engine.ts), null before a sampler loaded. */
  decoderEngine?: () => { engine: string; device: string } | null;
  /** Scaled mode: the shared job queue (src/jobs/job-queue.ts), read from the database at each scrape. */
  jobs?: { stats(): Promise<{ queued: number; running: number; liveWorkers: number; imagesPerS: number }> };
}

/** What the metrics read from the store. */
export type MetricsStore = Pick<BotStore, 'isOpen'> & {
  generations: Pick<BotStore['generations'], 'lastPosition' | 'after'>;
  feedback: Pick<BotStore['feedback'], 'lastId' | 'after'>;
  runs: Pick<BotStore['runs'], 'countByStatus'>;
};

const log = childLogger('metrics');

/** Latency buckets in seconds: from a cached small model to a big one behind a long queue. */
export const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The process's metrics; see the module comment. */
export class AppMetrics {
  readonly registry = new client.Registry();
  private sources: MetricsSources = {};
  private generationCursor = 0;
  private feedbackCursor = 0;
  /** Reads the store's cursors when a store is attached (null: not yet read, e.g. the database was down). */
  private cursors: Promise<boolean> | null = null;
  /** One sync at a time (a scrape while one runs waits for it). */
  private syncing: Promise<void> | null = null;

  private readonly generations: client.Counter<'platform' | 'kind' | 'model'>;
  private readonly latency: client.Histogram<'platform' | 'kind'>;
  private readonly feedback: client.Counter<'kind' | 'action'>;
  private readonly samplerBatch: client.Histogram<never>;
  private readonly samplerImages: client.Counter<never>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry, prefix: 'cvae_' });
    this.generations = new client.Counter({
      name: 'cvae_generations_total', help: 'Generations (imagine, reroll, variations) finished and recorded, by platform, kind and model.',
      labelNames: ['platform', 'kind', 'model'], registers,
    });
    this.latency = new client.Histogram({
      name: 'cvae_generation_latency_seconds', help: 'Time from a generation request to its rendered images (queue wait included).',
      labelNames: ['platform', 'kind'], buckets: LATENCY_BUCKETS, registers,
    });
    this.feedback = new client.Counter({
      name: 'cvae_feedback_total', help: 'Reactions recorded on generations, by kind (up, down, favourite, other) and action (added, removed).',
      labelNames: ['kind', 'action'], registers,
    });
    for (const kind of ['up', 'down', 'favourite', 'other']) for (const action of ['added', 'removed']) this.feedback.inc({ kind, action }, 0);
    this.samplerBatch = new client.Histogram({
      name: 'cvae_sampler_batch_seconds', help: 'Time of one decoder call (one batch of queued requests).', buckets: LATENCY_BUCKETS, registers,
    });
    this.samplerImages = new client.Counter({ name: 'cvae_sampler_images_total', help: 'Images decoded by the sampler.', registers });

    const self = this;
    new client.Gauge({
      name: 'cvae_queue_waiting', help: 'Generation requests waiting in the queue.', registers,
      collect() { this.set(self.sources.queue?.stats().waiting ?? 0); },
    });
    new client.Gauge({
      name: 'cvae_queue_running', help: 'Generation requests in the batch being sampled now.', registers,
      collect() { this.set(self.sources.queue?.stats().running ?? 0); },
    });
    new client.Gauge({
      name: 'cvae_training_active', help: '1 while a training run started by this process is going.', registers,
      collect() { this.set(self.sources.training?.busy ? 1 : 0); },
    });
    new client.Gauge({
      name: 'cvae_training_progress_ratio', help: 'Progress of the current training run (epochs done, fractional), 0 when none.', registers,
      collect() { this.set(self.sources.trainingProgress?.() ?? 0); },
    });
    new client.Gauge({
      name: 'cvae_training_runs', help: 'Training runs recorded in the store, by status.', labelNames: ['status'], registers,
      async collect() {
        const counts = (await self.liveStore()?.runs.countByStatus().catch(() => null)) ?? { running: 0, completed: 0, 'early-stop': 0, stopped: 0, failed: 0 };
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new client.Gauge({
      name: 'cvae_ready', help: '1 when /healthz reports ready (model and CLIP loaded, platforms connected).', registers,
      async collect() { this.set((await self.sources.ready?.()) ? 1 : 0); },
    });
    new client.Gauge({
      name: 'cvae_served_model_info', help: 'The model being served (value 1), with its CLIP model.', labelNames: ['model', 'clip_model'], registers,
      async collect() {
        this.reset();
        const m = await self.sources.servedModel?.().catch(() => null);
        if (m) this.set({ model: m.name, clip_model: m.clipModel }, 1);
      },
    });
    new client.Gauge({
      name: 'cvae_decoder_engine_info', help: 'The engine (onnx, tfjs) and device (gpu, cpu) that decode images in this process (value 1); absent before a model loaded.',
      labelNames: ['engine', 'device'], registers,
      collect() {
        this.reset();
        const e = self.sources.decoderEngine?.();
        if (e) this.set({ engine: e.engine, device: e.device }, 1);
      },
    });
    // Scaled mode: one read of the job tables per scrape, shared by the four gauges.
    let jobStats: Promise<{ queued: number; running: number; liveWorkers: number; imagesPerS: number } | null> | null = null;
    const readJobStats = () => (jobStats ??= (self.sources.jobs?.stats().catch(() => null) ?? Promise.resolve(null))
      .finally(() => setImmediate(() => { jobStats = null; })));
    const jobGauge = (name: string, help: string, pick: (s: { queued: number; running: number; liveWorkers: number; imagesPerS: number }) => number) =>
      new client.Gauge({
        name, help, registers,
        async collect() {
          if (!self.sources.jobs) return;
          const s = await readJobStats();
          if (s) this.set(pick(s));
        },
      });
    jobGauge('cvae_jobs_queued', 'Scaled mode: generation requests waiting for a worker (all ingresses).', (s) => s.queued);
    jobGauge('cvae_jobs_running', 'Scaled mode: generation requests a worker is drawing.', (s) => s.running);
    jobGauge('cvae_workers_live', 'Scaled mode: generation workers that beat in the last seconds.', (s) => s.liveWorkers);
    jobGauge('cvae_workers_images_per_second', 'Scaled mode: summed measured throughput of the live workers.', (s) => s.imagesPerS);
    new client.Gauge({
      name: 'cvae_disk_usage_bytes', help: 'Disk use of the data directory by part (checkpoints, datasets, clip_cache, database, total).',
      labelNames: ['part'], registers,
      async collect() {
        this.reset();
        const parts = await self.sources.diskUsage?.().catch(() => null);
        for (const [part, bytes] of Object.entries(parts ?? {})) this.set({ part }, bytes);
      },
    });
  }

  /** Connects (or replaces) sources. Store rows that exist now are not counted. */
  attach(sources: MetricsSources): void {
    if (sources.store && sources.store !== this.sources.store) this.cursors = this.readCursors(sources.store);
    this.sources = { ...this.sources, ...sources };
  }

  /** Starts the counters at the store's newest rows. Resolves false when the store could not be read (tried again later). */
  private async readCursors(store: MetricsStore): Promise<boolean> {
    try {
      const [g, f] = await Promise.all([store.generations.lastPosition(), store.feedback.lastId()]);
      this.generationCursor = g;
      this.feedbackCursor = f;
      return true;
    } catch (err) {
      log.warn({ reason: (err as Error).message }, 'could not read the store for the metrics counters; trying again at the next scrape');
      return false;
    }
  }

  /** Records one sampler call. */
  observeSamplerBatch(seconds: number, images: number): void {
    this.samplerBatch.observe(seconds);
    this.samplerImages.inc(images);
  }

  /** Counts generations and reactions recorded since the last call. */
  async syncFromStore(): Promise<void> {
    this.syncing ??= this.syncNow().finally(() => { this.syncing = null; });
    return this.syncing;
  }

  private async syncNow(): Promise<void> {
    const store = this.liveStore();
    if (!store) return;
    if (!(await this.cursors)) {
      this.cursors = this.readCursors(store);
      return; // rows up to now are not counted: they are "before"
    }
    try {
      for (const g of await store.generations.after(this.generationCursor)) {
        this.generations.inc({ platform: g.platform, kind: g.kind, model: g.model });
        this.latency.observe({ platform: g.platform, kind: g.kind }, g.latencyMs / 1000);
        this.generationCursor = g.position;
      }
      for (const f of await store.feedback.after(this.feedbackCursor)) {
        this.feedback.inc({ kind: f.kind, action: f.added ? 'added' : 'removed' });
        this.feedbackCursor = f.id;
      }
    } catch (err) {
      log.warn({ reason: (err as Error).message }, 'could not read the store for the metrics counters');
    }
  }

  /** The exposition text. */
  async text(): Promise<string> {
    await this.syncFromStore();
    return this.registry.metrics();
  }

  /** The `/metrics` route (GET and HEAD). */
  route(): Route {
    return readOnlyRoute('/metrics', async (req, res) => {
      const body = await this.text();
      res.writeHead(200, { 'content-type': this.registry.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }

  private liveStore(): MetricsStore | null {
    const store = this.sources.store;
    return store && store.isOpen() ? store : null;
  }
}

/** A sampler provider that times each decoder call (one batch of queued requests) for the metrics. */
export class TimedSamplerProvider implements SamplerProvider {
  constructor(readonly inner: SamplerProvider, private readonly metrics: Pick<AppMetrics, 'observeSamplerBatch'>) {}

  async get(name?: string): Promise<LoadedSampler> {
    const s = await this.inner.get(name);
    return {
      ...s,
      sample: async (embeddings, seeds) => {
        const t0 = performance.now();
        try {
          return await s.sample(embeddings, seeds);
        } finally {
          this.metrics.observeSamplerBatch((performance.now() - t0) / 1000, seeds.length);
        }
      },
    };
  }
}
