import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import { userMessageOf } from '../../../core/errors.js';
import type { BotCore } from '../../../core/types.js';
import { slackActor } from '../../actor.js';
import { ephemeral, slackText } from '../../blocks.js';
import { parseTrainText, type TrainCommand } from '../../../core/command-text.js';
import { SlackTrainingSink } from '../../progress-sink.js';
import { respondWithError } from '../../respond-error.js';

const log = childLogger('slack-train');

/** What the /cvae-train handler uses of Bolt's listener arguments. */
export type TrainCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'> & Pick<AllMiddlewareArgs, 'client'>;

/**
 * `/cvae-train start preset:<name> [epochs:N] [dataset:DIR]`, `/cvae-train status`, `/cvae-train stop`
 * (admins only; the core checks and logs refusals). Progress of a started run goes to this channel.
 */
export function cvaeTrainCommand(core: BotCore) {
  return async function handleCvaeTrain({ command, ack, respond, client }: TrainCommandArgs): Promise<void> {
    let request: TrainCommand;
    try {
      request = parseTrainText(command.text);
    } catch (err) {
      await ack(ephemeral(slackText(userMessageOf(err))));
      return;
    }
    await ack();
    const actor = slackActor(command.team_id, command.channel_id, command.user_id);
    try {
      let answer: string;
      if (request.verb === 'start') {
        const { preset, epochs, dataset } = request;
        answer = await core.trainStart(actor, { preset, epochs, dataset }, new SlackTrainingSink(client, command.channel_id));
      } else if (request.verb === 'status') {
        answer = await core.trainStatus(actor);
      } else {
        answer = await core.trainStop(actor);
      }
      await respond(ephemeral(slackText(answer)));
    } catch (err) {
      await respondWithError(respond, err, log, `train ${request.verb}`);
    }
  };
}
