import type { App } from '@slack/bolt';
import type { BotCore } from '../../../core/types.js';
import type { ShareLookupOptions } from '../../publish.js';
import { cvaeModelCommand } from './cvae-model.js';
import { cvaeTrainCommand } from './cvae-train.js';
import { imagineCommand } from './imagine.js';

/** Slash commands of the app; their names must match the app's configuration in Slack. */
export const SLASH_COMMANDS = { imagine: '/imagine', train: '/cvae-train', model: '/cvae-model' } as const;

/** Register the slash command listeners. */
export function register(app: App, core: BotCore, opts: ShareLookupOptions = {}): void {
  app.command(SLASH_COMMANDS.imagine, imagineCommand(core, opts));
  app.command(SLASH_COMMANDS.train, cvaeTrainCommand(core));
  app.command(SLASH_COMMANDS.model, cvaeModelCommand(core));
}
