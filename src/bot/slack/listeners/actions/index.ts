import type { App, BlockButtonAction } from '@slack/bolt';
import type { BotCore } from '../../../core/types.js';
import { CANCEL_ACTION, IMAGE_ACTION_PATTERN, REROLL_ACTION, VARIATIONS_ACTION } from '../../blocks.js';
import type { ShareLookupOptions } from '../../publish.js';
import { cancelButton, regenerateButton, singleImageButton } from './generation-buttons.js';

/** Register the Block Kit button listeners (Reroll, Variations, one per image, Cancel on a queued notice). */
export function register(app: App, core: BotCore, opts: ShareLookupOptions = {}): void {
  app.action<BlockButtonAction>(REROLL_ACTION, regenerateButton(core, 'reroll', opts));
  app.action<BlockButtonAction>(VARIATIONS_ACTION, regenerateButton(core, 'variations', opts));
  app.action<BlockButtonAction>(IMAGE_ACTION_PATTERN, singleImageButton(core, opts));
  app.action<BlockButtonAction>(CANCEL_ACTION, cancelButton(core));
}
