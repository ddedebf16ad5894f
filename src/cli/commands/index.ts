import type { Command } from 'commander';
import * as clip from './clip.js';
import * as dataset from './dataset.js';
import * as embed from './embed.js';
import * as feedback from './feedback.js';
import * as judge from './judge.js';
import * as model from './model.js';
import * as prune from './prune.js';
import * as registerCommands from './register-commands.js';
import * as sample from './sample.js';
import * as slackManifest from './slack-manifest.js';
import * as trainCommand from './train.js';
import * as worker from './worker.js';

/** A CLI command module: adds its command (and subcommands) to the program. */
export interface CommandModule {
  register(program: Command): void;
}

/** Every command module of the CLI. Add a new command by adding its module here. */
export const commandModules: CommandModule[] = [
  trainCommand,
  embed,
  dataset,
  feedback,
  model,
  sample,
  registerCommands,
  slackManifest,
  judge,
  clip,
  prune,
  worker,
];
