import type { RespondFn } from '@slack/bolt';
import type { Logger } from '../../log.js';
import type { ImagineHooks } from '../core/types.js';
import { ephemeral } from './blocks.js';

/**
 * Hooks that tell the user, privately, their place in the queue while a generation waits. Best effort: a lost
 * position notice must not cost the user their picture.
 */
export function queuePositionHooks(respond: RespondFn, log: Logger): ImagineHooks {
  return {
    onQueued: async (position) => {
      await respond(ephemeral(`:hourglass_flowing_sand: You are number ${position} in the queue.`)).catch((err: unknown) => {
        log.warn({ error: (err as Error).message }, 'could not tell the queue position');
      });
    },
  };
}
