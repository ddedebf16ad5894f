import type { SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import { userMessageOf } from '../../../core/errors.js';
import type { BotCore } from '../../../core/types.js';
import { slackActor } from '../../actor.js';
import { ephemeral, slackText } from '../../blocks.js';
import { parseModelText, type ModelCommand } from '../../../core/command-text.js';
import { respondWithError } from '../../respond-error.js';

const log = childLogger('slack-model');

/** What the /cvae-model handler uses of Bolt's listener arguments. */
export type ModelCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'>;

/** `/cvae-model list`, `/cvae-model use <name>` (admins only; the core checks). Answers only to the caller. */
export function cvaeModelCommand(core: BotCore) {
  return async function handleCvaeModel({ command, ack, respond }: ModelCommandArgs): Promise<void> {
    let request: ModelCommand;
    try {
      request = parseModelText(command.text);
    } catch (err) {
      await ack(ephemeral(slackText(userMessageOf(err))));
      return;
    }
    await ack();
    const actor = slackActor(command.team_id, command.channel_id, command.user_id);
    try {
      const answer = request.verb === 'list' ? await core.modelList(actor) : await core.modelUse(actor, request.name);
      await respond(ephemeral(slackText(answer)));
    } catch (err) {
      await respondWithError(respond, err, log, `model ${request.verb}`);
    }
  };
}
