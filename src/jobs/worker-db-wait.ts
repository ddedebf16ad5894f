/**
 * Riding out a database restart inside a job: Graphile Worker records a job's success or failure right after
 * the task returns, and cannot while the database is down (its job runner then stops), so a task whose database
 * write failed for an outage waits for the database and writes again instead of ending at once.
 */
import type pg from 'pg';
import { childLogger } from '../log.js';
import { isDatabaseUnavailable } from '../util/postgres.js';

const log = childLogger('generation-worker');

export interface DatabaseWaitOptions {
  /** Give up after this long, ms (default 5 minutes). */
  maxWaitMs?: number;
  /** Poll every this many ms (default 500). */
  pollMs?: number;
}

/** Resolves once the database answers (or after `maxWaitMs`). */
export async function waitForDatabase(pool: pg.Pool, opts: DatabaseWaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.maxWaitMs ?? 300_000);
  for (;;) {
    try {
      await pool.query('select 1');
      return;
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() > deadline) return;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
}

/** Runs `fn`; while it fails because the database is unreachable, waits for the database and runs it again. */
export async function untilDatabaseAnswers<T>(pool: pg.Pool, what: string, fn: () => Promise<T>, opts: DatabaseWaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.maxWaitMs ?? 300_000);
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() > deadline) throw err;
      log.warn({ what, reason: (err as Error).message }, 'the database is unreachable; waiting for it');
      await waitForDatabase(pool, { ...opts, maxWaitMs: Math.max(0, deadline - Date.now()) });
    }
  }
}
