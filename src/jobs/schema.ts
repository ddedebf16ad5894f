/**
 * The PostgreSQL schema of scaled mode's job queue: Graphile Worker's own `graphile_worker` schema (installed by
 * its runMigrations) plus our tables, and the typed rows that cross the ingress/worker boundary.
 *
 * - `generation_requests`: one row per admitted request (dedupe on `request_key`, status, the resolved job).
 *   The Graphile job `generate` carries a {@link GenerationJobPayload} and its job key is the request id.
 * - `worker_heartbeats`: live workers and their measured throughput (admission reads it).
 * - `generation_results`: replies for `web` targets, read by the waiting ingress after `cvae_job_done`.
 *
 * {@link migrateJobs} is safe to call from every process at start: a session advisory lock makes concurrent
 * starters migrate one at a time, and versions already applied are skipped.
 */
import type pg from 'pg';
import { Logger as GraphileLogger, runMigrations, type LogFunctionFactory } from 'graphile-worker';
import { childLogger } from '../log.js';
import type { ReplyTarget } from '../bot/core/jobs-types.js';
import type { Actor } from '../bot/core/types.js';

const log = childLogger('jobs-schema');

/** The Graphile Worker task that renders and delivers one generation request. */
export const GENERATE_TASK = 'generate';
/** NOTIFY channel: a request finished (payload: the request id); the ingress waiting on a `web` target reads its result. */
export const JOB_DONE_CHANNEL = 'cvae_job_done';
/** NOTIFY channel: the served model changed (payload: the model name); workers drop cached samplers. */
export const MODEL_CHANGED_CHANNEL = 'cvae_model_changed';

/** Status of a generation request. Only `queued` ones can be cancelled. */
export type RequestStatus = 'queued' | 'running' | 'delivered' | 'failed' | 'cancelled';
/** Statuses that count against a user's limit and the queue ahead. */
export const ACTIVE_STATUSES: readonly RequestStatus[] = ['queued', 'running'];

/** A generation request resolved at the ingress: everything a worker needs, no store lookup. */
export interface ResolvedGenerationJob {
  prompt: string;
  seeds: number[];
  variationSeed: number | null;
  /** Checkpoint name; null = the model the worker serves. */
  model: string | null;
  kind: 'imagine' | 'reroll' | 'variations';
  /** The generation rerolled or varied; null for imagine. */
  parentId: string | null;
}

/** What a `generate` job carries. */
export interface GenerationJobPayload {
  requestId: string;
  actor: Actor;
  target: ReplyTarget;
  job: ResolvedGenerationJob;
}

/** A worker's role in `worker_heartbeats`. */
export type WorkerRole = 'generate' | 'train';

/**
 * Advisory-lock namespaces (the first key of the two-key form), so our locks never collide with another
 * application's on the same database. 0x63766165 = "cvae".
 */
export const LOCK_NAMESPACE = 0x63766165;
/** Second key under {@link LOCK_NAMESPACE}: schema migrations. */
export const LOCK_SCHEMA = 1;
/** Second key under {@link LOCK_NAMESPACE}: admission (queue length read and insert serialised across ingresses). */
export const LOCK_ADMISSION = 2;
/** Namespace of per-user locks (second key: hashtext(user_key)). */
export const LOCK_USER_NAMESPACE = 0x63766166;

/** Our migrations, in order; version = index + 1. Never edit a shipped one: append. */
const MIGRATIONS: readonly string[] = [
  `
  create table generation_requests (
    request_id text primary key,
    request_key text not null unique,
    seq bigint generated always as identity,
    user_key text not null,
    platform text not null,
    actor jsonb not null,
    target jsonb not null,
    job jsonb not null,
    images int not null check (images > 0),
    status text not null default 'queued' check (status in ('queued', 'running', 'delivered', 'failed', 'cancelled')),
    attempts int not null default 0,
    generation_id text,
    position int not null,
    predicted_wait_s real not null,
    error text,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz
  );
  create index generation_requests_active on generation_requests (seq) where status in ('queued', 'running');
  create index generation_requests_user_active on generation_requests (user_key) where status in ('queued', 'running');

  create table worker_heartbeats (
    worker_id text primary key,
    role text not null check (role in ('generate', 'train')),
    seen_at timestamptz not null default now(),
    started_at timestamptz not null default now(),
    images_per_s real,
    graphile_worker_ids text[] not null default '{}',
    engine text
  );
  create index worker_heartbeats_seen on worker_heartbeats (role, seen_at);

  create table generation_results (
    request_id text primary key references generation_requests (request_id) on delete cascade,
    reply jsonb not null,
    grid bytea,
    images bytea[] not null default '{}',
    created_at timestamptz not null default now()
  );
  `,
];

/** The newest version of our part of the schema. */
export const JOBS_SCHEMA_VERSION = MIGRATIONS.length;

/** Graphile Worker's log lines through our pino logger (structured, module `graphile-worker`). */
export function graphileLogger(): GraphileLogger {
  const glog = childLogger('graphile-worker');
  const factory: LogFunctionFactory = (scope) => (level, message, meta) => {
    const fields = { ...scope, ...(meta && typeof meta === 'object' ? meta : {}) };
    if (level === 'error') glog.error(fields, message);
    else if (level === 'warning') glog.warn(fields, message);
    else if (level === 'info') glog.info(fields, message);
    else glog.debug(fields, message);
  };
  return new GraphileLogger(factory);
}

/**
 * Brings the database to the current schema: Graphile Worker's migrations, then ours, under one session
 * advisory lock so that ingresses and workers starting together migrate once. Needs a pool of at least 2
 * connections (the lock holder and Graphile's). Returns our schema version.
 */
export async function migrateJobs(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('select pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCK_SCHEMA]);
    try {
      await runMigrations({ pgPool: pool, logger: graphileLogger() });
      await client.query(`create table if not exists jobs_schema_migrations (
        version int primary key, applied_at timestamptz not null default now())`);
      const { rows } = await client.query<{ v: number | null }>('select max(version) as v from jobs_schema_migrations');
      const current = rows[0]?.v ?? 0;
      for (let v = current + 1; v <= MIGRATIONS.length; v++) {
        await client.query('begin');
        try {
          await client.query(MIGRATIONS[v - 1]);
          await client.query('insert into jobs_schema_migrations (version) values ($1)', [v]);
          await client.query('commit');
        } catch (err) {
          await client.query('rollback').catch(() => undefined);
          throw err;
        }
        log.info({ version: v }, 'jobs schema migrated');
      }
      return MIGRATIONS.length;
    } finally {
      await client.query('select pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LOCK_SCHEMA]).catch(() => undefined);
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    // A connection that failed mid-way may hold the lock or a broken state: drop it rather than reuse it.
    client.release(broken);
  }
}
