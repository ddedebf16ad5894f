/**
 * createBotCore: the platform-neutral bot. Validates requests, queues and batches generations, renders
 * replies, records generations and feedback, and guards the admin commands (training, models).
 */
import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { childLogger } from '../../log.js';
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from '../../util/postgres.js';
import { sameClipModel } from '../../model/clip/clip-name.js';
import { MAX_SEED } from '../../model/latent.js';
import { UserError } from './errors.js';
import { AdminPolicy } from './admin.js';
import { validateCount, validateModelName, validatePrompt, validateSeed } from './prompt.js';
import { ImagineQueue, type GenerationQueue, type ImagineQueueOptions } from './queue.js';
import { createBatchSampler, type GenerationJob, type GenerationOutput } from './batch-sampler.js';
import { generationSummary } from './generation-summary.js';
import { feedbackKind, type BotStore, type GenerationKind, type GenerationRecord } from './store/index.js';
import type { Embedder, ImageRenderer, ModelCatalog, SamplerProvider } from './deps.js';
import type { TrainingControl } from './training-runner.js';
import type { GenerationAsk, JobSubmitter } from './jobs-types.js';
import type { Actor, BotCore, ImagineHooks, ImagineOptions, ImagineReply, ReactionEvent, TrainingProgressSink } from './types.js';

const log = childLogger('bot-core');

export interface BotCoreDeps {
  store: BotStore;
  embedder: Embedder;
  samplers: SamplerProvider;
  catalog: ModelCatalog;
  renderer: ImageRenderer;
  admins: AdminPolicy;
  /** The training runner: a child process here, or (scaled mode) training jobs for a training worker. */
  training: TrainingControl;
  /** Queue settings for the default in-process queue. */
  queue?: ImagineQueueOptions;
  /** Most images per request (default 4). */
  maxCount?: number;
  /** Called after a model switch (e.g. to drop cached samplers, tell the workers). */
  onModelChanged?: (name: string) => void | Promise<void>;
  /**
   * Scaled mode (DATABASE_URL): generation runs in workers. Adapters that can name a reply target submit jobs
   * themselves (`core.jobs`); imagine/reroll/variations here (the playground) submit a job for the `web` target
   * and wait for its reply; Image N reads the PNGs the worker kept. Nothing is decoded in this process.
   */
  jobs?: ScaledGeneration;
}

/** What the core needs in scaled mode (see src/jobs). */
export interface ScaledGeneration {
  submitter: JobSubmitter;
  /** The reply of a `web` job once a worker has made it; a UserError with the apology when it failed. */
  awaitReply(requestId: string): Promise<ImagineReply>;
  /** PNG of image `index` of a generation a worker made, or null when it was not kept. */
  storedImage(generationId: string, index: number): Promise<Buffer | null>;
}

/** The bot core plus lifecycle. */
export interface BotCoreHandle extends BotCore {
  /** Stops taking requests, fails queued ones politely and waits for running ones to be rendered and recorded. */
  close(): Promise<void>;
  readonly queue: GenerationQueue<GenerationJob, GenerationOutput>;
  modelPublish(actor: Actor, name: string, published: boolean): Promise<string>;
}

/** Awaits a store call a user waits on: a database outage becomes a UserError saying to try again. */
async function userFacing<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (isDatabaseUnavailable(err)) throw new UserError(DATABASE_UNAVAILABLE_MESSAGE, { cause: err });
    throw err;
  }
}

/**
 * Who may name which model in /imagine: anyone the served one or a published one, admins any. Throws a
 * UserError otherwise. Shared by the in-process queue and the scaled-mode job queue.
 */
export async function checkModelChoice(deps: Pick<BotCoreDeps, 'admins' | 'store' | 'catalog'>, actor: Actor, model: string | null | undefined): Promise<void> {
  if (model == null || deps.admins.isAdmin(actor) || await userFacing(deps.store.runs.isPublished(model))) return;
  const served = (await deps.catalog.list()).find((m) => m.active)?.name;
  if (model === served) return;
  log.info({ platform: actor.platform, userId: actor.userId, model }, 'unpublished model refused');
  throw new UserError(`Model \`${model}\` is not published. Leave out the model to use the served one, or ask an admin to \`/model publish ${model}\`.`);
}

/** Builds the bot core over its injected dependencies. */
export function createBotCore(deps: BotCoreDeps): BotCoreHandle {
  const maxCount = deps.maxCount ?? 4;
  const imageCache = new LRUCache<string, { pngs: Buffer[]; record: GenerationRecord }>({ max: 100 });
  const { runBatch } = createBatchSampler({ embedder: deps.embedder, samplers: deps.samplers });

  const queue: GenerationQueue<GenerationJob, GenerationOutput> = new ImagineQueue(runBatch, deps.queue);

  /** Generations between submit and their stored record; close() waits for them before the store closes. */
  const inFlight = new Set<Promise<unknown>>();
  let closing = false;

  function generate(actor: Actor, job: GenerationJob, model: string | undefined, kind: GenerationKind,
    parentId: string | null, hooks?: ImagineHooks): Promise<ImagineReply> {
    if (closing) return Promise.reject(new UserError('The bot is shutting down; please try again in a minute.'));
    const p = generateNow(actor, job, model, kind, parentId, hooks);
    return track(p);
  }

  function track<T>(p: Promise<T>): Promise<T> {
    inFlight.add(p);
    const forget = () => { inFlight.delete(p); };
    p.then(forget, forget);
    return p;
  }

  /**
   * Before a request joins the queue: a non-admin may name only the served model or a published one; and the
   * model is loaded now (its ONNX export made), bounded by the provider, so the queue never waits on a load.
   */
  async function admit(actor: Actor, model: string | undefined): Promise<void> {
    await checkModelChoice(deps, actor, model);
    await deps.samplers.get(model);
  }

  /** Scaled mode: one job for the `web` target, awaited here; the worker decodes, records and stores the reply. */
  function generateAsJob(actor: Actor, ask: GenerationAsk, hooks?: ImagineHooks): Promise<ImagineReply> {
    if (closing) return Promise.reject(new UserError('The bot is shutting down; please try again in a minute.'));
    const scaled = deps.jobs!;
    return track((async () => {
      const receipt = await scaled.submitter.submit(actor, ask, { platform: 'web' }, `web:${crypto.randomUUID()}`);
      if (receipt.position > 1) await hooks?.onQueued?.(receipt.position);
      const reply = await scaled.awaitReply(receipt.requestId);
      return reply;
    })());
  }

  async function generateNow(actor: Actor, job: GenerationJob, model: string | undefined, kind: GenerationKind,
    parentId: string | null, hooks?: ImagineHooks): Promise<ImagineReply> {
    const t0 = performance.now();
    await admit(actor, model);
    const out = await queue.submit(
      { userKey: `${actor.platform}:${actor.userId}`, batchKey: model ?? '', size: job.seeds.length, payload: job },
      { onQueued: hooks?.onQueued },
    );
    const [grid, images] = await Promise.all([
      deps.renderer.grid(out.images, out.resolution),
      Promise.all(out.images.map((img) => deps.renderer.image(img, out.resolution))),
    ]);
    const record: GenerationRecord = {
      id: crypto.randomBytes(8).toString('base64url'),
      platform: actor.platform, workspaceId: actor.workspaceId, channelId: actor.channelId, userId: actor.userId,
      kind, parentId, prompt: job.prompt, seeds: job.seeds, variationSeed: job.variationSeed, model: out.model,
      clipModel: out.clipModel, latencyMs: Math.round(performance.now() - t0), messageRef: null, createdAt: new Date().toISOString(),
    };
    await userFacing(deps.store.generations.insert(record));
    imageCache.set(record.id, { pngs: images, record });
    log.info({ generationId: record.id, kind, platform: actor.platform, workspaceId: actor.workspaceId, channelId: actor.channelId,
      userId: actor.userId, prompt: job.prompt, seeds: job.seeds, model: out.model, latencyMs: record.latencyMs }, 'generation');
    return { generationId: record.id, prompt: job.prompt, seeds: job.seeds, model: out.model, userId: actor.userId, grid, images, text: generationSummary(record) };
  }

  function randomSeed(): number {
    return crypto.randomInt(0, MAX_SEED - 16);
  }

  function seedsFrom(base: number, count: number): number[] {
    return Array.from({ length: count }, (_, i) => (base + i) % (MAX_SEED + 1));
  }

  async function getGeneration(id: string): Promise<GenerationRecord> {
    const g = typeof id === 'string' && id.length <= 64 ? await userFacing(deps.store.generations.get(id)) : null;
    if (!g) throw new UserError('I cannot find that generation any more. Please run `/imagine` again.');
    return g;
  }

  const core: BotCoreHandle = {
    queue,

    jobs: deps.jobs?.submitter,

    async imagine(actor: Actor, opts: ImagineOptions, hooks?: ImagineHooks): Promise<ImagineReply> {
      if (deps.jobs) return generateAsJob(actor, { kind: 'imagine', options: opts }, hooks);
      const prompt = validatePrompt(opts.prompt);
      const count = validateCount(opts.count, maxCount);
      const seed = validateSeed(opts.seed) ?? randomSeed();
      const model = opts.model ? validateModelName(opts.model) : undefined;
      return generate(actor, { prompt, seeds: seedsFrom(seed, count), variationSeed: null }, model, 'imagine', null, hooks);
    },

    async reroll(actor: Actor, generationId: string, hooks?: ImagineHooks): Promise<ImagineReply> {
      if (deps.jobs) return generateAsJob(actor, { kind: 'reroll', generationId }, hooks);
      const g = await getGeneration(generationId);
      return generate(actor, { prompt: g.prompt, seeds: seedsFrom(randomSeed(), g.seeds.length), variationSeed: null }, g.model, 'reroll', g.id, hooks);
    },

    async variations(actor: Actor, generationId: string, hooks?: ImagineHooks): Promise<ImagineReply> {
      if (deps.jobs) return generateAsJob(actor, { kind: 'variations', generationId }, hooks);
      const g = await getGeneration(generationId);
      return generate(actor, { prompt: g.prompt, seeds: g.seeds, variationSeed: randomSeed() }, g.model, 'variations', g.id, hooks);
    },

    async singleImage(generationId: string, index: number): Promise<{ png: Buffer; text: string }> {
      const cached = imageCache.get(generationId);
      const g = cached?.record ?? await getGeneration(generationId);
      if (!Number.isInteger(index) || index < 0 || index >= g.seeds.length) throw new UserError(`That generation has images 1 to ${g.seeds.length}.`);
      const text = generationSummary({ ...g, seeds: [g.seeds[index]] });
      if (cached) return { png: cached.pngs[index], text };
      if (deps.jobs) {
        // A worker made it and kept its images; this process has no decoder.
        const png = await userFacing(deps.jobs.storedImage(generationId, index));
        if (!png) throw new UserError(`That image is no longer kept. Ask /imagine for the same prompt with seed ${g.seeds[index]} to draw it again.`);
        return { png, text };
      }
      // Not cached any more: the same seed and embedding give the same image.
      const out = await queue.submit({ userKey: 'system:single-image', batchKey: g.model, size: 1,
        payload: { prompt: g.prompt, seeds: [g.seeds[index]], variationSeed: g.variationSeed } });
      return { png: await deps.renderer.image(out.images[0], out.resolution), text };
    },

    async attachMessage(generationId: string, messageRef: string, imageIndex?: number): Promise<void> {
      try {
        if (!(await deps.store.generations.attachMessage(generationId, messageRef, imageIndex))) {
          log.warn({ generationId }, 'attachMessage: unknown generation');
        }
      } catch (err) {
        // The reply is out already; only reactions on this message will not count.
        if (isDatabaseUnavailable(err)) log.warn({ generationId, messageRef, reason: (err as Error).message }, 'attachMessage: the database is unavailable');
        else log.error({ err, generationId, messageRef }, 'attachMessage failed');
      }
    },

    async recordReaction(r: ReactionEvent): Promise<boolean> {
      const found = await userFacing(deps.store.generations.byMessage(r.platform, r.messageRef));
      if (!found) return false;
      const imageIndex = r.imageIndex ?? found.imageIndex;
      const changed = await userFacing(deps.store.feedback.record({ generationId: found.generation.id, imageIndex, platform: r.platform,
        userId: r.userId, reaction: r.reaction, added: r.added }));
      log.info({ generationId: found.generation.id, platform: r.platform, userId: r.userId, reaction: r.reaction,
        kind: feedbackKind(r.reaction), added: r.added, imageIndex, duplicate: !changed }, 'feedback');
      return true;
    },

    async trainStart(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink): Promise<string> {
      deps.admins.require(actor, '/train start');
      return deps.training.start(actor, opts, sink);
    },

    async trainStatus(actor: Actor): Promise<string> {
      deps.admins.require(actor, '/train status');
      return deps.training.status();
    },

    async trainStop(actor: Actor): Promise<string> {
      deps.admins.require(actor, '/train stop');
      return deps.training.stop();
    },

    async modelList(actor: Actor): Promise<string> {
      deps.admins.require(actor, '/model list');
      const models = await deps.catalog.list();
      if (!models.length) return 'No models are registered yet. Train one with `/train start` or register a checkpoint with the CLI.';
      const published = await userFacing(deps.store.runs.publishedNames());
      const lines = models.map((m) => {
        const loss = m.meta.bestValLoss != null ? `, best val loss ${m.meta.bestValLoss.toFixed(1)}` : '';
        const clip = sameClipModel(m.meta.clipModel, deps.embedder.modelId) ? '' : ` — trained with CLIP \`${m.meta.clipModel}\`, not servable with \`${deps.embedder.modelId}\``;
        return `${m.active ? '▶' : '•'} \`${m.name}\` (${m.meta.preset}, ${m.meta.resolution} px${m.meta.epoch != null ? `, epoch ${m.meta.epoch}` : ''}${loss})${m.active ? ' — serving' : ''}${published.has(m.name) ? ' · published' : ''}${clip}`;
      });
      return `Models:\n${lines.join('\n')}`;
    },

    async modelUse(actor: Actor, name: string): Promise<string> {
      deps.admins.require(actor, '/model use');
      const n = validateModelName(name);
      const entry = await deps.catalog.resolve(n);
      if (deps.jobs) {
        // Workers load it (this process decodes nothing): refuse a CLIP mismatch from the checkpoint's record.
        if (!sameClipModel(entry.meta.clipModel, deps.embedder.modelId)) {
          throw new UserError(`\`${n}\` was trained with CLIP \`${entry.meta.clipModel}\`, not the one served (\`${deps.embedder.modelId}\`).`);
        }
      } else {
        await deps.samplers.get(n); // loads it and refuses a CLIP mismatch before switching
      }
      await deps.catalog.activate(n);
      await userFacing(deps.store.runs.markServed(n)); // a model served once stays pickable by everyone (published)
      await deps.onModelChanged?.(n);
      log.info({ model: n, platform: actor.platform, userId: actor.userId }, 'served model switched');
      return `Now serving \`${n}\` (${entry.meta.preset}, ${entry.meta.resolution} px).`;
    },

    async modelPublish(actor: Actor, name: string, published: boolean): Promise<string> {
      deps.admins.require(actor, published ? '/model publish' : '/model unpublish');
      const n = validateModelName(name);
      await deps.catalog.resolve(n); // refuses a name the registry does not know
      await userFacing(deps.store.runs.setPublished(n, published));
      log.info({ model: n, published, platform: actor.platform, userId: actor.userId }, 'model publication changed');
      return published
        ? `\`${n}\` is published: anyone can pick it with \`/imagine ... model:${n}\`.`
        : `\`${n}\` is no longer published: only admins can pick it (unless it is the served model).`;
    },

    async close(): Promise<void> {
      closing = true;
      await queue.close();
      await Promise.allSettled([...inFlight]);
    },
  };
  return core;
}
