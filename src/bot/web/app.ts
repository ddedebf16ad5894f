/**
 * The whole bot process behind `npm start`: the HTTP port first (`/healthz` answers 503 while loading,
 * `/metrics`), then the store, CLIP and the served model (createBotRuntime), then the configured chat
 * platforms, and the local playground when no chat platform is configured (or `PLAYGROUND=1`).
 *
 * Shutdown ({@link RunningApp.stop}): stop taking requests (health says stopping, the playground refuses new
 * commands), fail the queued generations with a message and finish the running batch, stop a training run
 * (the trainer saves a checkpoint first) while the platforms are still connected to report it, then
 * disconnect the platforms, close the HTTP server, the models and SQLite.
 */
import path from 'node:path';
import { childLogger } from '../../log.js';
import { loadConfig, type BotConfig } from '../../config/env.js';
import { CheckpointRegistry } from '../../model/registry.js';
import { presetNames } from '../../model/presets.js';
import { decoderWorkerHealth } from '../../model/onnx/decoder-session.js';
import { Health, type CheckResult } from '../../http/health.js';
import { AppMetrics } from '../../http/metrics.js';
import { HttpServer } from '../../http/server.js';
import { createBotRuntime, type BotRuntime } from '../run.js';
import type { LoadedSampler, SamplerProvider } from '../core/deps.js';
import type { ImagineQueueOptions } from '../core/queue.js';
import { startDiscord } from '../discord/index.js';
import { cachedDataDirUsage, pruneDataDir, retentionFromEnv, schedulePrune } from '../retention.js';
import { startSlack } from '../slack/index.js';
import { httpSettingsFrom, isLoopbackHost, type HttpSettings } from './http-config.js';
import { Playground, PLAYGROUND_ACTOR } from './playground.js';
import { PlaygroundAccess, playgroundAccessFrom } from './playground-access.js';
import { progressOf } from './training-sink.js';
import { defaultCheckpoint, ensureServedModel, noModelHelp, pickClipModel } from './served-model.js';

const log = childLogger('app');

/** How long stop() waits for a start-up still loading (CLIP download...) before closing anyway. */
const STOP_WAIT_FOR_LOADING_MS = 30_000;

export interface AppOptions {
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The shipped demo checkpoint to serve when none is active (default: {@link defaultCheckpoint}, `models/demo`). */
  shippedCheckpoint?: string | null;
  /** Options of the runtime (tests: small queue limits, a quick synthetic training run). */
  runtime?: {
    queue?: ImagineQueueOptions;
    trainingExtraArgs?: string[];
    clipQuantized?: boolean;
    minUpdateIntervalMs?: number;
    /** Wraps the (instrumented) sampler provider (tests that hold the sampler). */
    decorateSamplers?: (provider: SamplerProvider) => SamplerProvider;
  };
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

/** Wraps the sampler provider: times each decoder call for the metrics. */
class InstrumentedSamplers implements SamplerProvider {
  constructor(readonly inner: SamplerProvider, private readonly metrics: AppMetrics) {}

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
  let samplers: InstrumentedSamplers | null = null;
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

  async function servedModel(): Promise<{ name: string; clipModel: string } | null> {
    const active = await runtime?.registry.active().catch(() => null);
    return active ? { name: active.name, clipModel: active.meta.clipModel } : null;
  }

  health.setCheck('clip', () => (loadError ? { ok: false, detail: loadError } : clipState));
  health.setCheck('model', async () => {
    if (!samplers) return { ok: false, detail: loadError ? 'not loaded (CLIP failed)' : 'waiting for CLIP' };
    const s = await samplers.inner.get();
    return { ok: true, detail: `${s.name} (${s.meta.preset}, ${s.meta.resolution} px)` };
  });
  health.setCheck('decoder', () => decoderWorkerHealth());
  if (playground) health.setCheck('playground', () => ({ ok: server.listening, detail: server.listening ? 'serving' : 'not listening' }));
  metrics.attach({ ready: async () => (await health.report()).ready, servedModel });

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
      runtime = await createBotRuntime({ DATA_DIR: dataDir, CLIP_MODEL: clipModel, ADMIN_USER_IDS: admins, DISCORD_ADMIN_GUILD_IDS: config.DISCORD_ADMIN_GUILD_IDS }, {
        // Options are spread over the runner's defaults, so none is passed as undefined.
        trainingExtraArgs: [],
        ...(chat ? {} : { minUpdateIntervalMs: 2_000 }), // a local page can take progress every 2 s
        ...opts.runtime,
        decorateSamplers: (inner) => {
          samplers = new InstrumentedSamplers(inner, metrics);
          return opts.runtime?.decorateSamplers ? opts.runtime.decorateSamplers(samplers) : samplers;
        },
      });
      await runtime.embedder.embedTexts(['a photo']); // loads the text tower now, not on the first request
      clipState = { ok: true, detail: runtime.embedder.modelId };
      const training = runtime.training;
      metrics.attach({
        db: runtime.store.db, queue: runtime.core.queue, training,
        trainingProgress: () => (training.busy ? progressOf(training.status()) : null),
        diskUsage: cachedDataDirUsage(dataDir),
      });
      if (retention.everyHours > 0) {
        const rt = runtime;
        stopPruning = schedulePrune(() => pruneDataDir(dataDir, retention, { store: rt.store, protect: rt.training.busy ? [rt.training.currentRunId ?? ''] : [] }), retention.everyHours);
      }
      if (samplers) {
        await (samplers as InstrumentedSamplers).inner.get().then(
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
    if (config.discord) {
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
        rt.training.stop().then(() => rt.training.idle()),
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
