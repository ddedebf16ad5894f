/**
 * The ingress side of `web` jobs (the local playground in scaled mode): wait for the reply a worker stored, and
 * read the per-image PNGs workers keep for "Image N" buttons. Polls the request's row (a few queries a second
 * for one waiting page), which also rides out a database restart without a listener to re-arm.
 */
import type pg from 'pg';
import { UserError } from '../bot/core/errors.js';
import type { ScaledGeneration } from '../bot/core/core.js';
import type { ImagineReply } from '../bot/core/types.js';
import { isDatabaseUnavailable } from '../util/postgres.js';
import { readJobOutcome, readStoredImage } from './worker-web-delivery.js';

export interface JobRepliesOptions {
  /** How often to look, ms (default 200). */
  pollMs?: number;
  /** Give up waiting after this long, ms (default 10 minutes). */
  timeoutMs?: number;
}

/** awaitReply and storedImage of {@link ScaledGeneration} over the job tables. */
export function createJobReplies(pool: pg.Pool, opts: JobRepliesOptions = {}): Pick<ScaledGeneration, 'awaitReply' | 'storedImage'> {
  const pollMs = opts.pollMs ?? 200;
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  return {
    async awaitReply(requestId: string): Promise<ImagineReply> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const outcome = await readJobOutcome(pool, requestId).catch((err: unknown) => {
          if (isDatabaseUnavailable(err)) return undefined; // keep waiting: the job survives the restart
          throw err;
        });
        if (outcome === null) throw new Error(`unknown request ${requestId}`);
        if (outcome?.status === 'delivered') {
          if (!outcome.reply) throw new Error(`request ${requestId} was delivered without a stored reply`);
          return outcome.reply;
        }
        if (outcome?.status === 'failed' || outcome?.status === 'cancelled') {
          throw new UserError(outcome.message ?? (outcome.status === 'cancelled' ? 'The request was cancelled.' : 'Sorry, your images could not be drawn. Please try again.'));
        }
        if (Date.now() > until) throw new UserError('Your images are taking too long; the bot is very busy. Please try again later.');
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    storedImage: (generationId, index) => readStoredImage(pool, generationId, index),
  };
}
