import type { RespondFn } from '@slack/bolt';
import type { Logger } from '../../log.js';
import { isUserError, userMessageOf } from '../core/errors.js';
import { ephemeral, slackText } from './blocks.js';

/**
 * Tell the user what went wrong, only to them (ephemeral via response_url): the message of a UserError, or a
 * generic apology for anything else (which is logged with its stack; user errors are logged at info).
 */
export async function respondWithError(respond: RespondFn, err: unknown, log: Logger, what: string): Promise<void> {
  if (isUserError(err)) log.info({ reason: err.message }, `${what} refused`);
  else log.error({ err }, `${what} failed`);
  try {
    await respond({ ...ephemeral(slackText(userMessageOf(err))), replace_original: false });
  } catch (respondErr) {
    // Only the message: the error of a response_url POST carries that URL, which lets anyone post in the channel.
    log.warn({ error: (respondErr as Error).message }, 'could not send the error to the user');
  }
}
