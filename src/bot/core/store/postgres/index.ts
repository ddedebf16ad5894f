/** Opens the PostgreSQL store (scaled mode: ingress replicas and workers share it). */
import os from 'node:os';
import type pg from 'pg';
import { createPgPool } from '../../../../util/postgres.js';
import { migratePostgres } from './migrations.js';
import { PgGenerationStore } from './generations.js';
import { PgFeedbackStore } from './feedback.js';
import { PgRunStore } from './runs.js';
import type { PostgresBotStore } from '../bot-store.js';

export interface PostgresStoreOptions {
  /** Use this pool (the caller ends it) instead of opening one on the URL. */
  pool?: pg.Pool;
  /** application_name of the pool the store opens (default `cvae-store`). */
  applicationName?: string;
  /** Most connections of the pool the store opens (default 10). */
  maxConnections?: number;
  /**
   * Recorded on the runs this process starts; a starting process fails only its own runs (and dead ones).
   * Default `<host>:<pid>`, unique per process; give a stable one per role (e.g. `<host>:train`) so that a restarted
   * trainer fails the run it died with at once instead of after the heartbeat goes stale.
   */
  owner?: string;
}

/** Opens a pool on `url` (or uses `opts.pool`), migrates the schema under an advisory lock, and returns the store. */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresBotStore> {
  const pool = opts.pool ?? createPgPool(url, { applicationName: opts.applicationName ?? 'cvae-store', max: opts.maxConnections });
  const ownsPool = !opts.pool;
  try {
    await migratePostgres(pool);
  } catch (err) {
    if (ownsPool) await pool.end().catch(() => undefined);
    throw err;
  }
  let open = true;
  return {
    kind: 'postgres',
    pool,
    generations: new PgGenerationStore(pool),
    feedback: new PgFeedbackStore(pool),
    runs: new PgRunStore(pool, opts.owner ?? `${os.hostname()}:${process.pid}`),
    isOpen: () => open,
    async close() {
      if (!open) return;
      open = false;
      if (ownsPool) await pool.end();
    },
  };
}
