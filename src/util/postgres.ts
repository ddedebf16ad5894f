/**
 * node-postgres pools for scaled mode (DATABASE_URL): one place that opens them the same way for the store,
 * the job queue and the workers, and that tells a database outage from a bug.
 *
 * A pool survives a database restart by itself: a broken idle connection is dropped (its 'error' is logged
 * here instead of crashing the process) and the next query opens a new one. Queries during the outage fail
 * fast (connection timeout) with an error {@link isDatabaseUnavailable} recognises, which callers turn into a
 * polite "try again" instead of a stack trace.
 */
import pg from 'pg';
import { childLogger } from '../log.js';

const log = childLogger('postgres');

export interface PgPoolOptions {
  /** Shown in pg_stat_activity (e.g. `cvae-ingress`, `cvae-worker`). */
  applicationName: string;
  /** Most connections (default 10). */
  max?: number;
  /** How long to wait for a connection before failing a query, ms (default 5000). */
  connectionTimeoutMs?: number;
}

/** Opens a pool on `url` (connections are made on first use). */
export function createPgPool(url: string, opts: PgPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    application_name: opts.applicationName,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', (err) => log.warn({ reason: err.message, pool: opts.applicationName }, 'an idle database connection broke; the next query reconnects'));
  // A checked-out client whose server goes away emits 'error' too; the query in flight fails on its own.
  pool.on('connect', (client) => client.on('error', (err) => log.warn({ reason: err.message, pool: opts.applicationName }, 'a database connection broke')));
  return pool;
}

/** SQLSTATE classes and codes that mean "the database is not there right now", not "the query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-3]|53300)/; // connection exceptions, admin/crash shutdown, cannot connect now, too many connections
const UNAVAILABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** True when `err` says the database cannot be reached (down, restarting, refusing connections). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (UNAVAILABLE_NET.has(code) || UNAVAILABLE_SQLSTATE.test(code)) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(msg);
}

/** What a user is told when a request fails because the database is down. */
export const DATABASE_UNAVAILABLE_MESSAGE = 'The bot cannot reach its database right now; nothing was queued. Please try again in a minute.';

/**
 * One transaction on a pooled client: BEGIN, the work, COMMIT; ROLLBACK and rethrow on error. A failed ROLLBACK
 * means the connection is gone, so the client is dropped instead of going back to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: unknown) => { broken = e as Error; });
    throw err;
  } finally {
    client.release(broken);
  }
}
