import type { AckFn, RespondArguments, RespondFn, SlashCommand } from '@slack/bolt';
import type { Logger } from '../../../../log.js';
import { userMessageOf } from '../../../core/errors.js';
import { slackActor } from '../../actor.js';
import { ephemeral, slackText } from '../../blocks.js';
import { respondWithError } from '../../respond-error.js';
import type { Actor } from '../../../core/types.js';

/** What an admin command handler gets of Bolt's listener arguments. */
export interface AdminCommandArgs {
  command: SlashCommand;
  ack: AckFn<string | RespondArguments>;
  respond: RespondFn;
}

/**
 * The shape every admin slash command shares: parse the text (a parse error is the ack, with the usage),
 * ack at once (Slack allows 3 s), run the request through the core and answer privately to the caller, or
 * show the error privately.
 */
export function adminCommand<R extends { verb: string }, A extends AdminCommandArgs>(opts: {
  parse(text: string): R;
  run(request: R, actor: Actor, args: A): Promise<string>;
  log: Logger;
  name: string;
}) {
  return async function handleAdminCommand(args: A): Promise<void> {
    const { command, ack, respond } = args;
    let request: R;
    try {
      request = opts.parse(command.text);
    } catch (err) {
      await ack(ephemeral(slackText(userMessageOf(err))));
      return;
    }
    await ack();
    const actor = slackActor(command.team_id, command.channel_id, command.user_id);
    try {
      await respond(ephemeral(slackText(await opts.run(request, actor, args))));
    } catch (err) {
      await respondWithError(respond, err, opts.log, `${opts.name} ${request.verb}`);
    }
  };
}
