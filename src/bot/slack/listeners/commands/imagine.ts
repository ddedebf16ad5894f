import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import { userMessageOf } from '../../../core/errors.js';
import type { BotCore } from '../../../core/types.js';
import { slackActor } from '../../actor.js';
import { ephemeral, escapeMrkdwn, queuedNotice, slackText } from '../../blocks.js';
import type { ImagineCommand } from '../../../core/command-text.js';
import { parseSlackImagine } from '../../command-text.js';
import { publishGeneration, type ShareLookupOptions } from '../../publish.js';
import { queuePositionHooks } from '../../queue-notice.js';
import { respondWithError } from '../../respond-error.js';

const log = childLogger('slack-imagine');

/** What the /imagine handler uses of Bolt's listener arguments (tests pass fakes). */
export type ImagineCommandArgs = Pick<SlackCommandMiddlewareArgs, 'command' | 'ack' | 'respond'> & Pick<AllMiddlewareArgs, 'client'>;

/**
 * `/imagine <prompt> [--count N] [--seed N] [--model NAME]`: ack at once (Slack allows 3 s) with an ephemeral
 * "working on it", or with the usage when the text cannot be parsed; then generate through the core (telling
 * the user their queue position while they wait) and post the grid and the buttons in the channel.
 * In scaled mode (`core.jobs`) the request becomes a job keyed by the command's trigger id (a retried request
 * makes no second job), the user gets a private "queued" notice with a Cancel button, and a worker posts.
 */
export function imagineCommand(core: BotCore, opts: ShareLookupOptions = {}) {
  return async function handleImagine({ command, ack, respond, client }: ImagineCommandArgs): Promise<void> {
    let request: ImagineCommand;
    try {
      request = parseSlackImagine(command.text);
    } catch (err) {
      await ack(ephemeral(slackText(userMessageOf(err))));
      return;
    }
    await ack(ephemeral(`:art: Drawing “${escapeMrkdwn(request.prompt)}”…`));
    const actor = slackActor(command.team_id, command.channel_id, command.user_id);
    try {
      if (core.jobs) {
        const receipt = await core.jobs.submit(actor, { kind: 'imagine', options: request }, { platform: 'slack', channelId: command.channel_id },
          `slack:${command.trigger_id}`);
        await respond(queuedNotice(receipt));
        return;
      }
      const reply = await core.imagine(actor, request, queuePositionHooks(respond, log));
      await publishGeneration(client, core, command.channel_id, reply, opts);
    } catch (err) {
      await respondWithError(respond, err, log, 'imagine');
    }
  };
}
