/**
 * `model`: what a preset builds, and the checkpoint registry.
 *
 *   model info [--preset NAME] [--json]   build the preset, print its parameter count and the backend
 *   model presets [--json]                the preset names
 *   model list [--json]                   checkpoints of the registry (* marks the active one)
 *   model use NAME                        make a checkpoint the active (served) one
 *   model register NAME DIR               name a checkpoint folder
 */
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../model/backend.js';
import { buildCvae } from '../../model/cvae.js';
import { getPreset, presetNames } from '../../model/presets.js';
import { CheckpointRegistry } from '../../model/registry.js';

/** Where a command prints its results (stdout unless a test injects its own). */
export interface CommandOutput {
  write(text: string): void;
}

const stdout: CommandOutput = { write: (text) => void process.stdout.write(text) };

interface RegistryOptions {
  checkpoints?: string;
  json?: boolean;
}

const registryOf = (o: RegistryOptions) => new CheckpointRegistry(o.checkpoints);

/** Adds the `model` command and its subcommands. */
export function register(program: Command, out: CommandOutput = stdout): void {
  const model = program.command('model').description('model presets and the checkpoint registry');

  model
    .command('info')
    .description('build a preset and print its trainable parameter count and the compute backend')
    .option('--preset <name>', 'preset to build', '128-image')
    .option('--json', 'print JSON')
    .action(async (o: { preset: string; json?: boolean }) => {
      const preset = getPreset(o.preset);
      const backend = await initBackend();
      const cvae = buildCvae(preset, { seed: 0 });
      const info = {
        trainableParams: cvae.trainableParams(),
        backend: backend.backend,
        gpu: backend.gpu,
        backendPackage: backend.package,
        preset: preset.name,
        resolution: preset.resolution,
        conditioning: preset.conditioning,
        latentDim: preset.latentDim,
        embeddingDim: preset.embeddingDim,
        dropout: preset.dropout,
        train: preset.train,
        tfjsVersion: tf.version.tfjs,
      };
      cvae.dispose();
      if (o.json) {
        out.write(`${JSON.stringify(info)}\n`);
        return;
      }
      out.write(
        [
          `preset            ${info.preset} (${info.resolution}x${info.resolution}, ${info.conditioning}-conditioned, latent ${info.latentDim}, dropout ${info.dropout})`,
          `trainable params  ${info.trainableParams.toLocaleString('en-US')}`,
          `backend           ${info.backend} (${info.backendPackage})${info.gpu ? ' on GPU' : ''}`,
          `training defaults lr ${info.train.learningRate}, batch ${info.train.batchSize}, ${info.train.epochs} epochs, patience ${info.train.patience}`,
          '',
        ].join('\n'),
      );
    });

  model
    .command('presets')
    .description('list the model presets')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const rows = presetNames().map((n) => getPreset(n));
      if (o.json) {
        out.write(`${JSON.stringify(rows.map((p) => ({ name: p.name, resolution: p.resolution, conditioning: p.conditioning, description: p.description })))}\n`);
        return;
      }
      for (const p of rows) out.write(`${p.name.padEnd(20)} ${String(p.resolution).padStart(3)} px  ${p.conditioning.padEnd(5)}  ${p.description}\n`);
    });

  model
    .command('list')
    .description('list the checkpoints of the registry (* marks the active one)')
    .option('--checkpoints <dir>', 'checkpoints root (default <DATA_DIR>/checkpoints)')
    .option('--json', 'print JSON')
    .action(async (o: RegistryOptions) => {
      const list = await registryOf(o).list();
      if (o.json) {
        out.write(`${JSON.stringify(list)}\n`);
        return;
      }
      if (list.length === 0) {
        out.write('no checkpoints yet (train one with: npm run cli -- train --preset demo ...)\n');
        return;
      }
      for (const e of list) {
        const m = e.meta;
        const val = m.bestValLoss ?? m.losses.val?.total;
        out.write(
          `${e.active ? '*' : ' '} ${e.name.padEnd(24)} ${m.preset.padEnd(20)} epoch ${String(m.epoch).padStart(3)}  ` +
            `val ${val === undefined ? '-' : val.toFixed(1)}  clip ${m.clipModel}  ${e.dir}\n`,
        );
      }
    });

  model
    .command('use')
    .description('make a checkpoint the active one (the one the bot serves)')
    .argument('<name>', 'checkpoint name (see model list)')
    .option('--checkpoints <dir>', 'checkpoints root (default <DATA_DIR>/checkpoints)')
    .action(async (name: string, o: RegistryOptions) => {
      const registry = registryOf(o);
      await registry.activate(name);
      const e = await registry.resolve(name);
      out.write(`active model: ${name} (${e.meta.preset}, epoch ${e.meta.epoch}, ${e.dir})\n`);
    });

  model
    .command('register')
    .description('give a checkpoint folder a name in the registry')
    .argument('<name>', 'name to register')
    .argument('<dir>', 'checkpoint folder (holds meta.json)')
    .option('--checkpoints <dir>', 'checkpoints root (default <DATA_DIR>/checkpoints)')
    .action(async (name: string, dir: string, o: RegistryOptions) => {
      await registryOf(o).register(name, dir);
      out.write(`registered ${name} -> ${dir}\n`);
    });
}
