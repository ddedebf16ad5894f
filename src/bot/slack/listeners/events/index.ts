import type { App } from '@slack/bolt';
import type { BotCore } from '../../../core/types.js';
import { reactionListener } from './reactions.js';

/** Register the Events API listeners (reactions: subscribe to reaction_added and reaction_removed). */
export function register(app: App, core: BotCore): void {
  const onReaction = reactionListener(core);
  app.event('reaction_added', onReaction);
  app.event('reaction_removed', onReaction);
}
