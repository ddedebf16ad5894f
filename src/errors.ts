/**
 * An error whose message tells a person what went wrong and what to do about it.
 * The CLI and the bots show its message as is, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

/** True for errors that carry a message meant for a person. */
export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}
