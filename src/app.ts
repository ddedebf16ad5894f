/**
 * The composition root of the bot process behind `npm start`: the one module that wires the model side, the
 * store, the training runner and the bot core together (createBotRuntime), and starts the HTTP server and the
 * adapters (Discord, Slack, the local playground) over that core (startApp). Adapters never import each other
 * or this module; they get the core.
 *
 * Start-up order: the HTTP port first (`/healthz` answers 503 while loading, `/metrics`), then the store, CLIP
 * and the served model, then the configured chat platforms, and the local playground when no chat platform is
 * configured (or `PLAYGROUND=1`).
 *
 * Shutdown ({@link RunningApp.stop}): stop taking requests (health says stopping, the playground refuses new
 * commands), fail the queued generations with a message and finish the running batch, stop a training run
 * (the trainer saves a checkpoint first) while the platforms are still connected to report it, then
 * disconnect the platforms, close the HTTP server, the models and SQLite.
 */
import os from 'node:os';
import path from 'node:path';
import { childLogger } from './log.js';
import { loadConfig, type BotConfig } from './config/env.js';
import { httpSettingsFrom, isLoopbackHost, type HttpSettings } from './config/http.js';
import { initBackend } from './model/backend.js';
import { ClipEmbedder } from './model/clip/embedder.js';
import { sameClipModel } from './model/clip/clip-name.js';
import { gridPng, imagePng } from './model/image-grid.js';
import { getPreset, presetNames } from './model/presets.js';
import { CheckpointRegistry } from './model/registry.js';
import { createSampler } from './model/sampler-factory.js';
import { defaultCheckpoint, ensureServedModel, noModelHelp, pickClipModel } from './model/served-model.js';
import { Health, type CheckResult } from './http/health.js';
import { AppMetrics, TimedSamplerProvider } from './http/metrics.js';
import { HttpServer } from './http/server.js';
import { decoderWorkerHealth } from './model/onnx/decoder-session.js';
import { currentDecoderEngine, decoderEngineHealth } from './model/decoder-engine.js';
import { AdminPolicy } from './bot/core/admin.js';
import { checkModelChoice, createBotCore, type BotCoreHandle } from './bot/core/core.js';
import type { ImageRenderer, SamplerProvider } from './bot/core/deps.js';
import type { ImagineQueueOptions } from './bot/core/queue.js';
import { CheckpointSamplerProvider } from './bot/core/sampler-provider.js';
import { openBotStore, type BotStore } from './bot/core/store/index.js';
import { TrainingRunner, type TrainingControl } from './bot/core/training-runner.js';
import { trainingChildEnv } from './bot/core/training-env.js';
import { discordGatewayEnabled, startDiscord } from './bot/discord/index.js';
import { startDiscordInteractions } from './bot/discord/interactions-http.js';
import { cachedDataDirUsage, pruneDataDir, retentionFromEnv, schedulePrune } from './bot/retention.js';
import { startSlack } from './bot/slack/index.js';
import { Playground, PLAYGROUND_ACTOR } from './bot/web/playground.js';
import { PlaygroundAccess, playgroundAccessFrom } from './bot/web/playground-access.js';
import { UserError } from './errors.js';
import { createBatchSampler } from './bot/core/batch-sampler.js';
import type { ReplyDelivery } from './bot/core/jobs-types.js';
import { createSlackJobDelivery } from './bot/slack/job-delivery.js';
import { createDiscordReplyDelivery, createDiscordRestClient } from './bot/discord/webhook-delivery.js';
import { startGenerationWorker, type GenerationRecorder, type GenerationWorker, type GenerationWorkerDeps } from './jobs/generation-worker.js';
import { migrateJobs } from './jobs/schema.js';
import { createJobQueue, type JobQueue } from './jobs/job-queue.js';
import { createJobReplies } from './jobs/job-replies.js';
import { createClusterTrainingRunner } from './jobs/training-jobs.js';
import { notifyModelChanged } from './jobs/worker-model-listener.js';
import type pg from 'pg';
import { createPgPool, isDatabaseUnavailable } from './util/postgres.js';
import { samplerEngineFromEnv } from './model/sampler-factory.js';
import { startTrainingWorker, type TrainingWorker, type TrainingWorkerDeps } from './jobs/training-worker.js';

const log = childLogger('app');

/** Renders images for chat with src/model/image-grid.ts (each image upscaled to about 256 px). */
export function displayRenderer(): ImageRenderer {
  return {
    grid: (images, size) => gridPng(images, size),
    image: (image, size) => imagePng(image, size),
  };
}

/** The bot core and what it runs on. */
export interface BotRuntime {
  core: BotCoreHandle;
  store: BotStore;
  embedder: ClipEmbedder;
  registry: CheckpointRegistry;
  /** Training: a child process of this one, or (scaled mode) jobs a training worker runs. */
  training: TrainingControl;
  /**
   * Before this process goes: a run it trains itself saves a checkpoint and stops; in scaled mode the run
   * belongs to the training worker and goes on (this process only stops listening to it).
   */
  releaseTraining(): Promise<void>;
  /** Scaled mode (DATABASE_URL): the job queue, for /metrics. */
  jobs: JobQueue | null;
  /** Scaled mode with LOCAL_WORKER: the generation worker in this process. */
  localWorker: GenerationWorker | null;
  /** Stops training (checkpoint first), the queue and the store. */
  close(): Promise<void>;
}

/** Options of {@link createBotRuntime}. */
export interface BotRuntimeOptions {
  queue?: ImagineQueueOptions;
  /** Extra arguments of every `train` child (e.g. `--synthetic 64` for a demo host). */
  trainingExtraArgs?: string[];
  clipQuantized?: boolean;
  minUpdateIntervalMs?: number;
  /** Wraps the checkpoint sampler provider (metrics, tests that hold the sampler). */
  decorateSamplers?: (provider: SamplerProvider) => SamplerProvider;
}

/**
 * The database of scaled mode for one process (ingress or worker), migrated (Graphile Worker's schema and the
 * job tables; the store migrates its own); a database that cannot be reached is a UserError saying what to check.
 */
async function openScaledDatabase(url: string, applicationName: string, max: number): Promise<pg.Pool> {
  // A burst of requests waits its turn for a connection (admission is one at a time): a wait in the pool is
  // not an outage (a database that is down refuses connections at once), so allow it 30 s.
  const pool = createPgPool(url, { applicationName, max, connectionTimeoutMs: 30_000 });
  try {
    await migrateJobs(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (isDatabaseUnavailable(err)) {
      throw new UserError(`Cannot reach the database of DATABASE_URL (${(err as Error).message}). Check the URL and that PostgreSQL is up.`, { cause: err });
    }
    throw err;
  }
  return pool;
}

/**
 * Builds the bot core over the real model side (ClipEmbedder, CheckpointRegistry, samplers from createSampler:
 * ONNX Runtime off the event loop when it works, else TensorFlow.js, as SAMPLER_ENGINE says; sharp image grids),
 * the store and the training runner. Loads CLIP; checkpoints load on first use.
 *
 * With DATABASE_URL (scaled mode) the store is PostgreSQL and generations are jobs for workers (src/jobs): the
 * core submits them and decodes nothing, unless LOCAL_WORKER runs a generation worker in this process too.
 */
export async function createBotRuntime(config: Pick<BotConfig, 'DATA_DIR' | 'CLIP_MODEL' | 'ADMIN_USER_IDS'>
  & Partial<Pick<BotConfig, 'DISCORD_ADMIN_GUILD_IDS' | 'DATABASE_URL' | 'LOCAL_WORKER' | 'WORKER_CONCURRENCY' | 'ADMISSION_MAX_WAIT_S'
    | 'SLACK_BOT_TOKEN' | 'SLACK_API_URL' | 'DISCORD_TOKEN' | 'DISCORD_API_URL'>>,
  opts: BotRuntimeOptions = {}): Promise<BotRuntime> {
  const dataDir = path.resolve(config.DATA_DIR);
  const backend = await initBackend();
  log.info({ backend: backend.backend, gpu: backend.gpu, dataDir }, 'tensorflow backend ready');
  const pool = config.DATABASE_URL ? await openScaledDatabase(config.DATABASE_URL, 'cvae-ingress', 20) : null;
  const store = await openBotStore(pool
    ? { databaseUrl: config.DATABASE_URL, pool }
    : { file: path.join(dataDir, 'bot.sqlite') });
  const orphans = await store.runs.failOrphans();
  if (orphans) log.warn({ orphans }, 'marked training runs of a previous process as failed');
  const embedder = await ClipEmbedder.load({ model: config.CLIP_MODEL, quantized: opts.clipQuantized });
  log.info({ clipModel: embedder.modelId }, 'CLIP loaded');
  const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
  const active = await registry.active().catch(() => null);
  if (!active) log.warn('no model is active yet: /imagine will ask an admin to train one and /model use it');
  else if (!sameClipModel(active.meta.clipModel, embedder.modelId)) {
    log.error({ model: active.name, modelClip: active.meta.clipModel, loadedClip: embedder.modelId },
      'the active model was trained with another CLIP model; /imagine will refuse it until an admin switches models or CLIP_MODEL');
  }
  const samplers = new CheckpointSamplerProvider({ registry, load: (dir) => createSampler(dir), clipModel: embedder.modelId });
  // Scaled mode: /train start queues a job for `npm run worker -- --train` (one run at a time in the cluster).
  const cluster = pool ? await createClusterTrainingRunner({
    pool, runs: store.runs, checkPreset: (name) => { getPreset(name); }, minUpdateIntervalMs: opts.minUpdateIntervalMs,
  }) : null;
  const training: TrainingControl = cluster ?? new TrainingRunner({
    runs: store.runs, catalog: registry, checkPreset: (name) => { getPreset(name); },
    runsDir: path.join(dataDir, 'checkpoints'), datasetsDir: path.join(dataDir, 'datasets'), lockFile: path.join(dataDir, 'training.lock'),
    // Only what training reads: the chat tokens and secrets stay in this process.
    extraArgs: opts.trainingExtraArgs, env: trainingChildEnv({ ...process.env, DATA_DIR: dataDir, CLIP_MODEL: config.CLIP_MODEL }),
    minUpdateIntervalMs: opts.minUpdateIntervalMs,
  });
  const releaseTraining = async () => {
    if (cluster) await cluster.close();
    else {
      await training.stop();
      await training.idle();
    }
  };
  const admins = new AdminPolicy(config.ADMIN_USER_IDS, { platformAdminGuilds: config.DISCORD_ADMIN_GUILD_IDS });
  const jobs = pool ? createJobQueue({
    pool, maxWaitS: config.ADMISSION_MAX_WAIT_S, maxCount: 4,
    getGeneration: (id) => store.generations.get(id),
    isAdmin: (actor) => admins.isAdmin(actor),
    checkModel: (actor, model) => checkModelChoice({ admins, store, catalog: registry }, actor, model),
  }) : null;
  const decorated = opts.decorateSamplers ? opts.decorateSamplers(samplers) : samplers;
  const core = createBotCore({
    store, embedder, samplers: decorated, catalog: registry, renderer: displayRenderer(), training, admins, queue: opts.queue,
    ...(pool && jobs ? {
      jobs: { submitter: jobs, ...createJobReplies(pool) },
      // Every worker drops its cached samplers and loads the new model for its next batch.
      onModelChanged: async (name: string) => { samplers.clear(); await notifyModelChanged(pool, name); },
    } : {}),
  });
  // Scaled mode on one machine: this process also takes generation jobs (with its own CLIP and samplers).
  const localDeliveries = pool && config.LOCAL_WORKER ? workerDeliveries(config) : null;
  const localWorker = pool && localDeliveries ? await startGenerationWorker({
    pool, runBatch: createBatchSampler({ embedder, samplers: decorated }).runBatch, renderer: displayRenderer(),
    recorder: { insert: (r) => store.generations.insert(r), attachMessage: (id, ref, i) => store.generations.attachMessage(id, ref, i) },
    deliveries: localDeliveries.deliveries, concurrency: config.WORKER_CONCURRENCY,
    engine: engineLabel(process.env.SAMPLER_ENGINE ?? 'auto'), onModelChanged: () => samplers.clear(),
  }) : null;
  if (pool) log.info({ localWorker: Boolean(localWorker), maxWaitS: config.ADMISSION_MAX_WAIT_S }, 'scaled mode: generations are jobs in PostgreSQL');
  return {
    core, store, embedder, registry, training, releaseTraining, jobs, localWorker,
    async close() {
      await releaseTraining();
      await core.close();
      await localWorker?.stop();
      await localDeliveries?.close();
      samplers.clear();
      await embedder.dispose();
      await store.close();
      await pool?.end();
    },
  };
}

/**
 * Reply deliveries of a generation worker, from the chat settings: Slack with the bot token's Web API client,
 * Discord over REST only (the interaction webhook, or the channel once its token expired; never the gateway).
 */
function workerDeliveries(config: Partial<Pick<BotConfig, 'SLACK_BOT_TOKEN' | 'SLACK_API_URL' | 'DISCORD_TOKEN' | 'DISCORD_API_URL'>>): { deliveries: Partial<Record<'discord' | 'slack' | 'web', ReplyDelivery>>; close(): Promise<void> } {
  const deliveries: Partial<Record<'discord' | 'slack' | 'web', ReplyDelivery>> = {};
  if (config.SLACK_BOT_TOKEN) deliveries.slack = createSlackJobDelivery({ botToken: config.SLACK_BOT_TOKEN, apiUrl: config.SLACK_API_URL });
  const discord = config.DISCORD_TOKEN ? createDiscordRestClient(config) : null;
  if (discord) deliveries.discord = createDiscordReplyDelivery({ client: discord });
  return { deliveries, close: async () => { await discord?.destroy(); } };
}

/** How long stop() waits for a start-up still loading (CLIP download...) before closing anyway. */
const STOP_WAIT_FOR_LOADING_MS = 30_000;

export interface AppOptions {
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The shipped demo checkpoint to serve when none is active (default: {@link defaultCheckpoint}, `models/demo`). */
  shippedCheckpoint?: string | null;
  /** Options of the runtime (tests: small queue limits, a quick synthetic training run, a held sampler). */
  runtime?: BotRuntimeOptions;
}

/** A running process; see the module comment. */
export interface RunningApp {
  /** Base URL of the HTTP server, e.g. `http://127.0.0.1:8787`. */
  url: string;
  settings: HttpSettings;
  config: BotConfig;
  health: Health;
  metrics: AppMetrics;
  /** The playground, when served. */
  playground: Playground | null;
  /** Resolves when loading has finished (even when the model or CLIP could not load); rejects when a platform failed to start. */
  ready: Promise<void>;
  /** The runtime once loaded. */
  runtime(): BotRuntime | null;
  /** Graceful stop (idempotent). */
  stop(): Promise<void>;
}

/**
 * Starts the process: validates the configuration (a UserError lists bad values), listens on HOST:PORT and
 * loads everything else in the background (see {@link RunningApp.ready}).
 */
export async function startApp(opts: AppOptions = {}): Promise<RunningApp> {
  const env = opts.env ?? process.env;
  const config = loadConfig(env, { require: [] });
  const settings = httpSettingsFrom(env);
  const chat = config.discord || config.slack;
  const withPlayground = settings.playground ?? !chat;
  const retention = retentionFromEnv(env);
  let stopPruning: (() => void) | null = null;
  const access = new PlaygroundAccess(playgroundAccessFrom(env, settings.host));
  if (!chat && !withPlayground) log.warn('no chat platform configured and PLAYGROUND=0: only /healthz and /metrics are served');

  const health = new Health();
  const metrics = new AppMetrics();
  const server = new HttpServer({ routes: [health.route(), metrics.route()] });
  let runtime: BotRuntime | null = null;
  let samplers: TimedSamplerProvider | null = null;
  let loadError: string | null = null;
  let clipState: CheckResult = { ok: false, detail: 'loading' };
  const stops: { name: string; stop: () => Promise<void> }[] = [];

  const playground = withPlayground
    ? new Playground({
      core: () => runtime?.core ?? null,
      unavailableReason: () => (loadError ? `The bot could not load: ${loadError}` : 'The bot is still starting (loading CLIP and the model); try again in a moment.'),
      status: async () => {
        const r = await health.report();
        return { ready: r.ready, reason: r.reason, model: await servedModel() };
      },
      trainingBusy: () => runtime?.training.busy ?? false,
      noModelHelp: async () => (runtime && !(await runtime.registry.active()) ? noModelHelp() : null),
      presets: presetNames(),
      trackStream: (res) => server.trackStream(res),
      loopbackOnly: isLoopbackHost(settings.host),
      access,
    })
    : null;
  if (playground) server.addRoute(playground.route());
  // Discord slash commands and buttons over HTTP (POST /discord/interactions); "still starting" until loaded.
  const discordPublicKey = config.DISCORD_PUBLIC_KEY;
  if (discordPublicKey) {
    const interactions = startDiscordInteractions({ ...config, DISCORD_PUBLIC_KEY: discordPublicKey }, () => runtime?.core ?? null);
    server.addRoute(interactions.route());
    stops.push({ name: 'discord-http', stop: () => interactions.stop() });
  }

  async function servedModel(): Promise<{ name: string; clipModel: string } | null> {
    const active = await runtime?.registry.active().catch(() => null);
    return active ? { name: active.name, clipModel: active.meta.clipModel } : null;
  }

  health.setCheck('clip', () => (loadError ? { ok: false, detail: loadError } : clipState));
  // Scaled mode without a local worker decodes nothing here: the model is the workers' to load.
  const decodesHere = !config.DATABASE_URL || config.LOCAL_WORKER;
  health.setCheck('model', async () => {
    if (!samplers) return { ok: false, detail: loadError ? 'not loaded (CLIP failed)' : 'waiting for CLIP' };
    if (!decodesHere) {
      const active = await runtime?.registry.active().catch(() => null);
      return active ? { ok: true, detail: `${active.name}, decoded by the workers` } : { ok: false, detail: 'no model is active' };
    }
    const s = await samplers.inner.get();
    return { ok: true, detail: `${s.name} (${s.meta.preset}, ${s.meta.resolution} px)` };
  });
  if (config.DATABASE_URL) {
    health.setCheck('database', async () => {
      const rt = runtime;
      if (!rt?.jobs) return { ok: false, detail: loadError ? 'not connected' : 'connecting' };
      try {
        const s = await rt.jobs.stats();
        return { ok: true, detail: `reachable; ${s.queued} queued, ${s.running} running, ${s.liveWorkers} live worker(s)` };
      } catch (err) {
        return { ok: false, detail: `unreachable: ${(err as Error).message}` };
      }
    });
  }
  health.setCheck('decoder', () => decoderWorkerHealth());
  health.setCheck('engine', () => decoderEngineHealth());
  if (playground) health.setCheck('playground', () => ({ ok: server.listening, detail: server.listening ? 'serving' : 'not listening' }));
  metrics.attach({ ready: async () => (await health.report()).ready, servedModel, decoderEngine: currentDecoderEngine });

  const addr = await server.listen(settings.host, settings.port);
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${hostForUrl === '0.0.0.0' || hostForUrl === '[::]' ? '127.0.0.1' : hostForUrl}:${addr.port}`;
  if (playground) log.info({ url }, 'playground ready to open in a browser (the model may still be loading)');
  const exposure = playground ? access.networkWarning() : null;
  if (exposure) log.warn({ host: settings.host }, exposure);

  async function load(): Promise<void> {
    health.setPhase('starting', 'loading CLIP and the model');
    const dataDir = path.resolve(config.DATA_DIR);
    try {
      const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
      const served = await ensureServedModel(registry, opts.shippedCheckpoint === undefined ? defaultCheckpoint() : opts.shippedCheckpoint);
      const clipModel = pickClipModel(env.CLIP_MODEL, served?.meta ?? null);
      clipState = { ok: false, detail: `loading ${clipModel}` };
      const admins = withPlayground ? [...new Set([...config.ADMIN_USER_IDS, `${PLAYGROUND_ACTOR.platform}:${PLAYGROUND_ACTOR.userId}`])] : config.ADMIN_USER_IDS;
      runtime = await createBotRuntime({
        DATA_DIR: dataDir, CLIP_MODEL: clipModel, ADMIN_USER_IDS: admins, DISCORD_ADMIN_GUILD_IDS: config.DISCORD_ADMIN_GUILD_IDS,
        DATABASE_URL: config.DATABASE_URL, LOCAL_WORKER: config.LOCAL_WORKER, WORKER_CONCURRENCY: config.WORKER_CONCURRENCY,
        ADMISSION_MAX_WAIT_S: config.ADMISSION_MAX_WAIT_S,
        // A local worker posts replies itself, with the chat tokens.
        SLACK_BOT_TOKEN: config.SLACK_BOT_TOKEN, SLACK_API_URL: config.SLACK_API_URL, DISCORD_TOKEN: config.DISCORD_TOKEN, DISCORD_API_URL: config.DISCORD_API_URL,
      }, {
        // Options are spread over the runner's defaults, so none is passed as undefined.
        trainingExtraArgs: [],
        ...(chat ? {} : { minUpdateIntervalMs: 2_000 }), // a local page can take progress every 2 s
        ...opts.runtime,
        decorateSamplers: (inner) => {
          samplers = new TimedSamplerProvider(inner, metrics);
          return opts.runtime?.decorateSamplers ? opts.runtime.decorateSamplers(samplers) : samplers;
        },
      });
      await runtime.embedder.embedTexts(['a photo']); // loads the text tower now, not on the first request
      clipState = { ok: true, detail: runtime.embedder.modelId };
      const training = runtime.training;
      metrics.attach({
        store: runtime.store, queue: runtime.core.queue, training, ...(runtime.jobs ? { jobs: runtime.jobs } : {}),
        trainingProgress: () => training.progress()?.fraction ?? null,
        diskUsage: cachedDataDirUsage(dataDir),
      });
      if (retention.everyHours > 0) {
        const rt = runtime;
        stopPruning = schedulePrune(() => pruneDataDir(dataDir, retention, { store: rt.store, protect: rt.training.busy ? [rt.training.currentRunId ?? ''] : [] }), retention.everyHours);
      }
      if (samplers && decodesHere) {
        await (samplers as TimedSamplerProvider).inner.get().then(
          (s) => log.info({ model: s.name, clipModel: s.meta.clipModel }, 'serving model loaded'),
          (err: Error) => log.warn({ reason: err.message }, 'no model is served yet'),
        );
      }
    } catch (err) {
      loadError = (err as Error).message;
      log.error({ err }, 'the bot could not load; /healthz reports it and the HTTP port stays up');
      health.setPhase('running');
      return;
    }
    const core = runtime.core;
    if (discordGatewayEnabled(config)) {
      const discord = await startDiscord(core, config);
      stops.push({ name: 'discord', stop: () => discord.stop() });
      health.setCheck('discord', () => {
        const s = discord.status();
        return { ok: s.ready, detail: s.ready ? `connected, ${s.guilds} guild(s)` : 'not connected to the gateway' };
      });
    }
    if (config.slack) {
      const slack = await startSlack(core, config);
      stops.push({ name: 'slack', stop: () => slack.stop() });
      health.setCheck('slack', () => {
        const s = slack.status();
        return { ok: s.ok, detail: s.ok ? `${s.mode === 'socket' ? 'Socket Mode connected' : 'HTTP receiver listening'}` : (s.reason ?? 'not connected') };
      });
    }
    health.setPhase('running');
    log.info({ platforms: stops.map((s) => s.name), playground: Boolean(playground), url }, 'bot started');
  }

  const ready = load();
  ready.catch(() => undefined); // the caller handles it; no unhandled rejection meanwhile

  let stopping: Promise<void> | null = null;
  async function stop(): Promise<void> {
    health.setPhase('stopping');
    stopPruning?.();
    playground?.stopAccepting();
    await Promise.race([ready.catch(() => undefined), new Promise((r) => setTimeout(r, STOP_WAIT_FOR_LOADING_MS).unref())]);
    const rt = runtime;
    if (rt) {
      // Queued generations fail with "shutting down" and the running batch finishes; a training run saves a
      // checkpoint and reports its end, while the platforms can still deliver those messages.
      await Promise.all([
        rt.core.close(),
        rt.releaseTraining(),
      ]).catch((err) => log.warn({ err }, 'draining the queue or stopping training failed'));
      // The queue has answered; the playground renders and records what it got before the store closes.
      await playground?.idle();
    }
    for (const p of stops.reverse()) await p.stop().catch((err) => log.warn({ err, platform: p.name }, 'platform stop failed'));
    playground?.close();
    await server.close();
    if (rt) await rt.close().catch((err) => log.warn({ err }, 'closing the runtime failed'));
    log.info('bot stopped');
  }

  return {
    url, settings, config, health, metrics, playground, ready,
    runtime: () => runtime,
    stop: () => (stopping ??= stop()),
  };
}

/** The decoder engine for the heartbeat: what loaded (`onnx/cpu`, `tfjs/gpu`), or what was asked for before a model loaded. */
function engineLabel(requested: string): string {
  const e = currentDecoderEngine();
  return e ? `${e.engine}/${e.device}` : requested;
}

/** Options of {@link startWorkerApp}. */
export interface WorkerAppOptions {
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** `--train`: take training jobs instead of generation jobs. */
  train?: boolean;
  /** The shipped demo checkpoint to serve when none is active (default: {@link defaultCheckpoint}). */
  shippedCheckpoint?: string | null;
  clipQuantized?: boolean;
  /** Where generations are recorded. Default: the shared store in the DATABASE_URL database. */
  recorder?: GenerationRecorder;
  /** Reply deliveries added to those built from the environment (Slack from SLACK_BOT_TOKEN; web always). */
  deliveries?: Partial<Record<'discord' | 'slack' | 'web', ReplyDelivery>>;
  /** Worker settings (tests: shorter heartbeats, a quicker poll). */
  worker?: Pick<GenerationWorkerDeps, 'heartbeat' | 'batch' | 'pollIntervalMs' | 'workerId'>;
  /** `--train` worker settings (tests: a small synthetic run, quicker beats and polls). */
  training?: TrainingWorkerSettings;
}

/** Settings of a training worker ({@link startWorkerApp} with `train`). */
export interface TrainingWorkerSettings extends Pick<TrainingWorkerDeps, 'heartbeat' | 'pollIntervalMs' | 'workerId' | 'stopCheckMs'> {
  /** Extra arguments of every `train` child (e.g. `--synthetic 48 --batch-size 8`). */
  extraArgs?: string[];
  /** Minimum time between stored progress updates, ms (default 2000). */
  minUpdateIntervalMs?: number;
  /** Owner id of the runs it trains (default `<host>:train`: stable, so a restarted trainer fails the run it died with). */
  owner?: string;
}

/** A running training worker process. */
export interface RunningTrainingWorkerApp {
  trainer: TrainingWorker;
  /** Graceful stop: the run going is stopped (checkpoint first, run 'stopped'), then the store and pool closed. */
  stop(): Promise<void>;
}

/** A running worker process. */
export interface RunningWorkerApp {
  worker: GenerationWorker;
  /** Graceful stop: no new jobs, the held ones finished and delivered, then the models, store and pool closed. */
  stop(): Promise<void>;
}

/**
 * Starts a generation worker (`npm run worker`, `cvae worker`): needs DATABASE_URL; migrates the job schema,
 * loads CLIP and the served model as the bot does (createBotRuntime's pieces: the registry, the shipped demo
 * when nothing is active, the CLIP the model was trained with, samplers from createSampler), then takes jobs.
 * `/model use` elsewhere reaches it through `cvae_model_changed` (cached samplers dropped).
 */
export async function startWorkerApp(opts: WorkerAppOptions & { train: true }): Promise<RunningTrainingWorkerApp>;
export async function startWorkerApp(opts?: WorkerAppOptions & { train?: false }): Promise<RunningWorkerApp>;
export async function startWorkerApp(opts: WorkerAppOptions): Promise<RunningWorkerApp | RunningTrainingWorkerApp>;
export async function startWorkerApp(opts: WorkerAppOptions = {}): Promise<RunningWorkerApp | RunningTrainingWorkerApp> {
  const env = opts.env ?? process.env;
  const config = loadConfig(env, { require: [] });
  if (!config.DATABASE_URL) {
    throw new UserError('DATABASE_URL is not set: a worker takes its jobs from the PostgreSQL database the bot queues them in. '
      + 'Set DATABASE_URL=postgres://user:password@host:5432/db (the same as the bot\'s), or run just `npm start` for the single-process bot.');
  }
  if (opts.train) return startTrainingWorkerApp(config.DATABASE_URL, path.resolve(config.DATA_DIR), env, opts.training ?? {});
  const dataDir = path.resolve(config.DATA_DIR);
  const pool = await openScaledDatabase(config.DATABASE_URL, 'cvae-worker', Math.min(20, config.WORKER_CONCURRENCY + 4));
  const closers: (() => Promise<void> | void)[] = [() => pool.end()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch((err) => log.warn({ err }, 'closing the worker failed'));
  };
  try {
    const backend = await initBackend();
    log.info({ backend: backend.backend, gpu: backend.gpu, dataDir }, 'tensorflow backend ready');
    const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
    const served = await ensureServedModel(registry, opts.shippedCheckpoint === undefined ? defaultCheckpoint() : opts.shippedCheckpoint);
    const embedder = await ClipEmbedder.load({ model: pickClipModel(env.CLIP_MODEL, served?.meta ?? null), quantized: opts.clipQuantized });
    closers.push(() => embedder.dispose());
    log.info({ clipModel: embedder.modelId }, 'CLIP loaded');
    const samplers = new CheckpointSamplerProvider({ registry, load: (dir) => createSampler(dir), clipModel: embedder.modelId });
    closers.push(() => samplers.clear());
    await samplers.get().then(
      (s) => log.info({ model: s.name, clipModel: s.meta.clipModel }, 'serving model loaded'),
      (err: Error) => log.warn({ reason: err.message }, 'no model is served yet; jobs are answered with the reason'),
    );
    let recorder = opts.recorder;
    if (!recorder) {
      // The shared store: generations, and the messages that show them, where every ingress reads reactions.
      const store = await openBotStore({ databaseUrl: config.DATABASE_URL, pool, applicationName: 'cvae-worker' });
      closers.push(() => store.close());
      recorder = {
        insert: (record) => store.generations.insert(record),
        attachMessage: (id, ref, imageIndex) => store.generations.attachMessage(id, ref, imageIndex),
      };
    }
    const built = workerDeliveries(config);
    closers.push(() => built.close());
    const deliveries = { ...built.deliveries };
    Object.assign(deliveries, opts.deliveries);
    const { runBatch } = createBatchSampler({ embedder, samplers });
    const worker = await startGenerationWorker({
      pool, runBatch, renderer: displayRenderer(), recorder, deliveries,
      concurrency: config.WORKER_CONCURRENCY, engine: engineLabel(samplerEngineFromEnv(env)),
      onModelChanged: () => samplers.clear(),
      ...opts.worker,
    });
    let stopping: Promise<void> | null = null;
    return {
      worker,
      stop: () => (stopping ??= worker.stop().then(closeAll)),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The `--train` worker (`npm run worker -- --train`, on the training host): takes training jobs one at a time and
 * runs them with the TrainingRunner (a `cvae train` child), storing progress in the shared store, writing and
 * registering checkpoints under DATA_DIR (the shared volume). Loads no model itself.
 */
async function startTrainingWorkerApp(databaseUrl: string, dataDir: string, env: NodeJS.ProcessEnv, settings: TrainingWorkerSettings): Promise<RunningTrainingWorkerApp> {
  const pool = await openScaledDatabase(databaseUrl, 'cvae-train-worker', 6);
  const closers: (() => Promise<void> | void)[] = [() => pool.end()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch((err) => log.warn({ err }, 'closing the training worker failed'));
  };
  try {
    const store = await openBotStore({ databaseUrl, pool, applicationName: 'cvae-train-worker', owner: settings.owner ?? `${os.hostname()}:train` });
    closers.push(() => store.close());
    const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
    const trainer = await startTrainingWorker({
      pool, runs: store.runs,
      runner: {
        catalog: registry, checkPreset: (name) => { getPreset(name); },
        runsDir: path.join(dataDir, 'checkpoints'), datasetsDir: path.join(dataDir, 'datasets'), lockFile: path.join(dataDir, 'training.lock'),
        extraArgs: settings.extraArgs, env: trainingChildEnv({ ...env, DATA_DIR: dataDir }),
        minUpdateIntervalMs: settings.minUpdateIntervalMs,
      },
      workerId: settings.workerId, heartbeat: settings.heartbeat, pollIntervalMs: settings.pollIntervalMs, stopCheckMs: settings.stopCheckMs,
    });
    let stopping: Promise<void> | null = null;
    return { trainer, stop: () => (stopping ??= trainer.stop().then(closeAll)) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
