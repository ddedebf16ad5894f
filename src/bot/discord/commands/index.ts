/** Every slash command of the bot, by name. */
import * as imagine from './imagine.js';
import * as train from './train.js';
import * as model from './model.js';
import type { SlashCommand } from './types.js';

export type { SlashCommand } from './types.js';

export const commands: ReadonlyMap<string, SlashCommand> = new Map<string, SlashCommand>([
  ['imagine', imagine],
  ['train', train],
  ['model', model],
]);

/** The JSON bodies to register with Discord. */
export function commandDefinitions() {
  return [...commands.values()].map((c) => c.data.toJSON());
}
