/**
 * Wiring of the bot process: the bot core over the real model side (ClipEmbedder, CheckpointRegistry, samplers
 * from createSampler — ONNX Runtime off the event loop when it works, else TensorFlow.js; SAMPLER_ENGINE —, sharp
 * image grids), the SQLite store and the training runner; then the configured platforms (Discord, Slack,
 * or both in one process).
 */
import path from 'node:path';
import { childLogger } from '../log.js';
import type { BotConfig } from '../config/env.js';
import { initBackend } from '../model/backend.js';
import { ClipEmbedder } from '../model/clip/embedder.js';
import { sameClipModel } from '../model/clip/clip-name.js';
import { CheckpointRegistry } from '../model/registry.js';
import { createSampler } from '../model/sampler-factory.js';
import { gridPng, imagePng } from '../model/image-grid.js';
import { getPreset } from '../model/presets.js';
import { AdminPolicy } from './core/admin.js';
import { createBotCore, type BotCoreHandle } from './core/core.js';
import { CheckpointSamplerProvider } from './core/sampler-provider.js';
import { openBotStore, type BotStore } from './core/store/index.js';
import { TrainingRunner } from './core/training-runner.js';
import { trainingChildEnv } from './core/training-env.js';
import type { ImageRenderer, SamplerProvider } from './core/deps.js';
import type { ImagineQueueOptions } from './core/queue.js';
import { startDiscord } from './discord/index.js';
import { startSlack } from './slack/index.js';

const log = childLogger('bot');

/** Renders images for chat with src/model/image-grid.ts (each image upscaled to about 256 px). */
export function displayRenderer(): ImageRenderer {
  return {
    grid: (images, size) => gridPng(images, size),
    image: (image, size) => imagePng(image, size),
  };
}

export interface BotRuntime {
  core: BotCoreHandle;
  store: BotStore;
  embedder: ClipEmbedder;
  registry: CheckpointRegistry;
  training: TrainingRunner;
  /** Stops training (checkpoint first), the queue and the store. */
  close(): Promise<void>;
}

/** Builds the core from the configuration (loads CLIP; checkpoints load on first use). */
export async function createBotRuntime(config: Pick<BotConfig, 'DATA_DIR' | 'CLIP_MODEL' | 'ADMIN_USER_IDS'> & Partial<Pick<BotConfig, 'DISCORD_ADMIN_GUILD_IDS'>>, opts: {
  queue?: ImagineQueueOptions;
  /** Extra arguments of every `train` child (e.g. `--synthetic 64` for a demo host). */
  trainingExtraArgs?: string[];
  clipQuantized?: boolean;
  minUpdateIntervalMs?: number;
  /** Wraps the checkpoint sampler provider (metrics, tests that hold the sampler). */
  decorateSamplers?: (provider: SamplerProvider) => SamplerProvider;
} = {}): Promise<BotRuntime> {
  const dataDir = path.resolve(config.DATA_DIR);
  const backend = await initBackend();
  log.info({ backend: backend.backend, gpu: backend.gpu, dataDir }, 'tensorflow backend ready');
  const store = openBotStore(path.join(dataDir, 'bot.sqlite'));
  const orphans = store.runs.failOrphans();
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
  const training = new TrainingRunner({
    runs: store.runs, catalog: registry, checkPreset: (name) => { getPreset(name); },
    runsDir: path.join(dataDir, 'checkpoints'), datasetsDir: path.join(dataDir, 'datasets'), lockFile: path.join(dataDir, 'training.lock'),
    // Only what training reads: the chat tokens and secrets stay in this process.
    extraArgs: opts.trainingExtraArgs, env: trainingChildEnv({ ...process.env, DATA_DIR: dataDir, CLIP_MODEL: config.CLIP_MODEL }),
    minUpdateIntervalMs: opts.minUpdateIntervalMs,
  });
  const core = createBotCore({
    store, embedder, samplers: opts.decorateSamplers ? opts.decorateSamplers(samplers) : samplers, catalog: registry, renderer: displayRenderer(), training,
    admins: new AdminPolicy(config.ADMIN_USER_IDS, { platformAdminGuilds: config.DISCORD_ADMIN_GUILD_IDS }), queue: opts.queue,
  });
  return {
    core, store, embedder, registry, training,
    async close() {
      await training.stop();
      await training.idle();
      await core.close();
      samplers.clear();
      await embedder.dispose();
      store.close();
    },
  };
}

export interface RunningBot {
  runtime: BotRuntime;
  platforms: string[];
  stop(): Promise<void>;
}

/** Starts the core and every configured platform. */
export async function startBot(config: BotConfig): Promise<RunningBot> {
  const runtime = await createBotRuntime(config);
  const stops: (() => Promise<void>)[] = [];
  const platforms: string[] = [];
  try {
    if (config.discord) {
      const discord = await startDiscord(runtime.core, config);
      stops.push(() => discord.stop());
      platforms.push('discord');
    }
    if (config.slack) {
      const slack = await startSlack(runtime.core, config);
      stops.push(() => slack.stop());
      platforms.push('slack');
    }
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await runtime.close();
    throw err;
  }
  log.info({ platforms }, 'bot started');
  return {
    runtime, platforms,
    async stop() {
      for (const stop of stops.reverse()) await stop().catch((err) => log.warn({ err }, 'platform stop failed'));
      await runtime.close();
      log.info('bot stopped');
    },
  };
}
