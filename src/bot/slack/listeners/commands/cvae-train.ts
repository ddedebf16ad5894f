import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore } from '../../../core/types.js';
import { parseTrainText } from '../../../core/command-text.js';
import { SlackTrainingSink } from '../../progress-sink.js';
import { adminCommand } from './admin-command.js';

const log = childLogger('slack-train');

/** What the /cvae-train handler uses of Bolt's listener arguments. */
export type TrainCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'> & Pick<AllMiddlewareArgs, 'client'>;

/**
 * `/cvae-train start preset:<name> [epochs:N] [dataset:DIR]`, `/cvae-train status`, `/cvae-train stop`
 * (admins only; the core checks and logs refusals). Progress of a started run goes to this channel.
 */
export function cvaeTrainCommand(core: BotCore) {
  return adminCommand<ReturnType<typeof parseTrainText>, TrainCommandArgs>({
    name: 'train',
    log,
    parse: parseTrainText,
    run: (request, actor, { command, client }) => {
      if (request.verb === 'start') {
        const { preset, epochs, dataset } = request;
        return core.trainStart(actor, { preset, epochs, dataset }, new SlackTrainingSink(client, command.channel_id));
      }
      return request.verb === 'status' ? core.trainStatus(actor) : core.trainStop(actor);
    },
  });
}
