import type { SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore } from '../../../core/types.js';
import { parseModelText } from '../../../core/command-text.js';
import { adminCommand } from './admin-command.js';
import { runModelCommand } from '../../../core/model-command.js';

const log = childLogger('slack-model');

/** What the /cvae-model handler uses of Bolt's listener arguments. */
export type ModelCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'>;

/** `/cvae-model list | use <name> | publish <name> | unpublish <name>` (admins only; the core checks). Answers only to the caller. */
export function cvaeModelCommand(core: BotCore) {
  return adminCommand<ReturnType<typeof parseModelText>, ModelCommandArgs>({
    name: 'model',
    log,
    parse: parseModelText,
    run: (request, actor) => runModelCommand(core, actor, request),
  });
}
