import type { SlackEventMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import type { BotCore, ReactionEvent } from '../../../core/types.js';
import { slackMessageRef } from '../../actor.js';
import type { SingleImageRefs } from '../../single-image-refs.js';

const log = childLogger('slack-reactions');

/** What the reaction handler uses of Bolt's listener arguments. */
export type ReactionArgs = Pick<SlackEventMiddlewareArgs<'reaction_added'>, 'event'> | Pick<SlackEventMiddlewareArgs<'reaction_removed'>, 'event'>;

/**
 * `reaction_added` / `reaction_removed` → core.recordReaction with messageRef `channel:ts`. Reactions on a
 * single-image post are recorded against its grid with the image index. Reactions on other messages, and on
 * things that are not messages (files), are ignored by the core (it answers false).
 */
export function reactionListener(core: Pick<BotCore, 'recordReaction'>, singles: SingleImageRefs) {
  return async function handleReaction({ event }: ReactionArgs): Promise<void> {
    if (event.item.type !== 'message') return;
    const ref = slackMessageRef(event.item.channel, event.item.ts);
    const single = singles.lookup(ref);
    const reaction: ReactionEvent = {
      platform: 'slack',
      messageRef: single?.gridMessageRef ?? ref,
      userId: event.user,
      reaction: event.reaction,
      added: event.type === 'reaction_added',
    };
    if (single) reaction.imageIndex = single.imageIndex;
    try {
      const recorded = core.recordReaction(reaction);
      log.debug({ messageRef: reaction.messageRef, added: reaction.added, recorded }, 'reaction');
    } catch (err) {
      log.error({ err, messageRef: reaction.messageRef }, 'could not record a reaction');
    }
  };
}
