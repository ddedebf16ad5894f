import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore } from '../../../core/types.js';
import { runTrainCommand, type TrainCommand } from '../../../core/command-text.js';
import { parseSlackTrain } from '../../command-text.js';
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
  return adminCommand<TrainCommand, TrainCommandArgs>({
    name: 'train',
    log,
    parse: parseSlackTrain,
    run: (request, actor, { command, client }) => runTrainCommand(core, actor, request, () => new SlackTrainingSink(client, command.channel_id)),
  });
}
