/**
 * Errors the bot core throws for people: adapters show `err.message` to the user (ephemeral where the
 * platform allows) and a generic apology for anything else.
 */
import { UserError, isUserError } from '../../errors.js';

export { UserError, isUserError };

/** The actor may not do this (admin check failed). The attempt is logged by the core. */
export class NotAllowedError extends UserError {
  constructor(message = 'Sorry, only bot admins can do that.') {
    super(message);
    this.name = 'NotAllowedError';
  }
}

/** Generic apology for errors that are not meant for the user. */
export const GENERIC_APOLOGY = 'Sorry, something went wrong on my side. Please try again in a moment.';

/** The message an adapter shows for any error thrown by the core. */
export function userMessageOf(err: unknown): string {
  return isUserError(err) ? err.message : GENERIC_APOLOGY;
}
