import type { SlackEventMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore, ReactionEvent } from '../../../core/types.js';
import { slackMessageRef } from '../../actor.js';

const log = childLogger('slack-reactions');

/** What the reaction handler uses of Bolt's listener arguments. */
export type ReactionArgs = Pick<SlackEventMiddlewareArgs<'reaction_added'>, 'event'> | Pick<SlackEventMiddlewareArgs<'reaction_removed'>, 'event'>;

/**
 * `reaction_added` / `reaction_removed` → core.recordReaction with messageRef `channel:ts` (the core knows which
 * generation, and which image for a single-image post, a message shows). Reactions on other messages are
 * ignored by the core (it answers false); reactions on things that are not messages (files) are not forwarded.
 */
export function reactionListener(core: Pick<BotCore, 'recordReaction'>) {
  return async function handleReaction({ event }: ReactionArgs): Promise<void> {
    if (event.item.type !== 'message') return;
    const reaction: ReactionEvent = {
      platform: 'slack',
      messageRef: slackMessageRef(event.item.channel, event.item.ts),
      userId: event.user,
      reaction: event.reaction,
      added: event.type === 'reaction_added',
    };
    try {
      const recorded = await core.recordReaction(reaction);
      log.debug({ messageRef: reaction.messageRef, added: reaction.added, recorded }, 'reaction');
    } catch (err) {
      log.error({ err, messageRef: reaction.messageRef }, 'could not record a reaction');
    }
  };
}
