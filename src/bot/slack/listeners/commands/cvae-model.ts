import type { SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore } from '../../../core/types.js';
import { runModelCommand, type ModelCommand } from '../../../core/command-text.js';
import { parseSlackModel } from '../../command-text.js';
import { adminCommand } from './admin-command.js';

const log = childLogger('slack-model');

/** What the /cvae-model handler uses of Bolt's listener arguments. */
export type ModelCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'>;

/** `/cvae-model list | use <name> | publish <name> | unpublish <name>` (admins only; the core checks). Answers only to the caller. */
export function cvaeModelCommand(core: BotCore) {
  return adminCommand<ModelCommand, ModelCommandArgs>({
    name: 'model',
    log,
    parse: parseSlackModel,
    run: (request, actor) => runModelCommand(core, actor, request),
  });
}
