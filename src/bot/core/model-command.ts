/** Runs a parsed `/model` command (list, use, publish, unpublish) on the core, for every adapter alike. */
import type { ModelCommand } from './command-text.js';
import { UserError } from './errors.js';
import type { Actor, BotCore } from './types.js';

/** The core's answer to a `/model` command. */
export function runModelCommand(core: BotCore, actor: Actor, cmd: ModelCommand): Promise<string> {
  if (cmd.verb === 'list') return core.modelList(actor);
  if (cmd.verb === 'use') return core.modelUse(actor, cmd.name);
  if (!core.modelPublish) return Promise.reject(new UserError('Publishing models is not available here.'));
  return core.modelPublish(actor, cmd.name, cmd.verb === 'publish');
}
