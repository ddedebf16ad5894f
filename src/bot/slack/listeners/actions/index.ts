import type { App, BlockButtonAction } from '@slack/bolt';
import type { BotCore } from '../../../core/types.js';
import { IMAGE_ACTION_PATTERN, REROLL_ACTION, VARIATIONS_ACTION } from '../../blocks.js';
import type { ShareLookupOptions } from '../../publish.js';
import { regenerateButton, singleImageButton } from './generation-buttons.js';

/** Register the Block Kit button listeners (Reroll, Variations, one per image). */
export function register(app: App, core: BotCore, opts: ShareLookupOptions = {}): void {
  app.action<BlockButtonAction>(REROLL_ACTION, regenerateButton(core, 'reroll', opts));
  app.action<BlockButtonAction>(VARIATIONS_ACTION, regenerateButton(core, 'variations', opts));
  app.action<BlockButtonAction>(IMAGE_ACTION_PATTERN, singleImageButton(core, opts));
}
