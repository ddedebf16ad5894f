/**
 * Errors of discord.js as log fields without secrets or bulk: interaction tokens in webhook URLs are redacted,
 * request bodies (which carry the PNGs and users' prompts) are dropped.
 */
import { DiscordAPIError, HTTPError } from 'discord.js';

/** Replaces the token part of interaction webhook/callback URLs with `[redacted]`. */
export function redactDiscordUrl(url: string): string {
  return url
    .replace(/(\/webhooks\/\d+\/)[^/?]+/g, '$1[redacted]')
    .replace(/(\/interactions\/\d+\/)[^/?]+/g, '$1[redacted]');
}

/** A loggable view of an error (pass as `err`). */
export function safeError(err: unknown): unknown {
  if (err instanceof DiscordAPIError || err instanceof HTTPError) {
    return {
      type: err.name, message: redactDiscordUrl(err.message), status: err.status, method: err.method, url: redactDiscordUrl(err.url),
      ...(err instanceof DiscordAPIError ? { code: err.code } : {}),
      stack: err.stack ? redactDiscordUrl(err.stack.split('\n').slice(0, 6).join('\n')) : undefined,
    };
  }
  if (err instanceof Error) {
    return { type: err.name, message: redactDiscordUrl(err.message), stack: err.stack ? redactDiscordUrl(err.stack) : undefined };
  }
  return err;
}
