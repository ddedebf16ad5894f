/**
 * The bot as the end-to-end tests run it: the production wiring (createBotRuntime: real SQLite store, queue,
 * admin policy, TrainingRunner with a real `train` child process, ClipEmbedder on the tiny test CLIP,
 * CheckpointRegistry and Sampler) over a tiny checkpoint built here with buildCvae + saveCheckpoint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBotRuntime, type BotRuntime } from '../../src/app.js';
import type { BotCoreHandle } from '../../src/bot/core/core.js';
import type { BotStore } from '../../src/bot/core/store/index.js';
import type { TrainingControl } from '../../src/bot/core/training-runner.js';
import type { ImagineQueueOptions } from '../../src/bot/core/queue.js';
import type { LoadedSampler, SamplerProvider } from '../../src/bot/core/deps.js';
import type { CheckpointRegistry } from '../../src/model/registry.js';
import { buildCvae } from '../../src/model/cvae.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { getPreset } from '../../src/model/presets.js';

export const TINY_CLIP_DIR = path.resolve('tests/fixtures/tiny-clip');

export interface E2eCore {
  runtime: BotRuntime;
  core: BotCoreHandle;
  store: BotStore;
  catalog: CheckpointRegistry;
  training: TrainingControl;
  dataDir: string;
  modelName: string;
  /** Makes the next sampler calls wait until the returned function is called. */
  holdSampler(): () => void;
  /** Resolves once a held sampler call has started. */
  waitUntilSampling(): Promise<void>;
  /** Resolves once the training run has reported a step. */
  waitForTrainingStep(): Promise<void>;
  close(): Promise<void>;
}

/** Wraps the real provider so a test can hold sampling (to make queue tests deterministic). */
class HoldableSamplers implements SamplerProvider {
  gate: Promise<void> | null = null;
  sampling = 0;
  constructor(private readonly inner: SamplerProvider) {}
  async get(name?: string): Promise<LoadedSampler> {
    const s = await this.inner.get(name);
    return {
      ...s,
      sample: async (embs, seeds) => {
        this.sampling++;
        if (this.gate) await this.gate;
        return s.sample(embs, seeds);
      },
    };
  }
}

/** Builds, saves, registers and activates a tiny checkpoint conditioned on `clipModel`. */
export async function makeTinyModel(registry: CheckpointRegistry, name: string, clipModel: string): Promise<string> {
  const preset = getPreset('tiny');
  const cvae = buildCvae(preset, { seed: 3 });
  const dir = path.join(registry.root, name);
  await saveCheckpoint(dir, cvae, {
    name, preset: 'tiny', resolution: preset.resolution, conditioning: preset.conditioning, clipModel,
    datasetFingerprint: 'test', epoch: 0, step: 0, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
  await registry.register(name, dir);
  return dir;
}

export async function createE2eCore(opts: { admins: string[]; adminGuilds?: string[]; queue?: ImagineQueueOptions }): Promise<E2eCore> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-e2e-'));
  let samplers!: HoldableSamplers;
  const runtime = await createBotRuntime(
    { DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP_DIR, ADMIN_USER_IDS: opts.admins, DISCORD_ADMIN_GUILD_IDS: opts.adminGuilds },
    {
      queue: opts.queue, clipQuantized: false,
      trainingExtraArgs: ['--synthetic', '64', '--batch-size', '8'],
      decorateSamplers: (real) => (samplers = new HoldableSamplers(real)),
    },
  );
  const modelName = 'tiny-e2e';
  await makeTinyModel(runtime.registry, modelName, runtime.embedder.modelId);
  await runtime.registry.activate(modelName);
  const training = runtime.training;
  return {
    runtime, core: runtime.core, store: runtime.store, catalog: runtime.registry, training, dataDir, modelName,
    holdSampler() {
      let open!: () => void;
      samplers.gate = new Promise((r) => { open = r; });
      samplers.sampling = 0;
      return () => { samplers.gate = null; open(); };
    },
    async waitUntilSampling() {
      while (samplers.sampling === 0) await new Promise((r) => setTimeout(r, 10));
    },
    async waitForTrainingStep() {
      const t0 = Date.now();
      while (!/step \d+/.test(await training.status())) {
        if (!training.busy) throw new Error(`training ended early: ${await training.status()}`);
        if (Date.now() - t0 > 120_000) throw new Error('no training step within 120 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      await runtime.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
