/**
 * The bot's tables in PostgreSQL (scaled mode): the SQLite migrations (../sqlite/database.ts) translated, version
 * for version, so both stores are at the same schema version with the same tables and columns. Differences:
 * identity columns instead of AUTOINCREMENT and rowid (`generations.position` is the insertion order the SQLite
 * store reads from rowid), DOUBLE PRECISION for REAL, jsonb for a run's progress. Times stay ISO-8601 text as in
 * SQLite, so every query compares and orders them the same way.
 *
 * `store_schema_version` holds the version. Migrating takes a session advisory lock first, so ingress replicas and
 * workers starting together migrate once: the others wait, then find the schema up to date.
 */
import type pg from 'pg';
import { childLogger } from '../../../../log.js';

const log = childLogger('bot-store');

/** Ordered migrations; migration i brings the schema to version i + 1, as MIGRATIONS[i] does in SQLite. Append only. */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE generations (
     id TEXT PRIMARY KEY,
     position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
     platform TEXT NOT NULL,
     workspace_id TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('imagine','reroll','variations')),
     parent_id TEXT REFERENCES generations(id),
     prompt TEXT NOT NULL,
     seeds TEXT NOT NULL,
     count INTEGER NOT NULL,
     variation_seed BIGINT,
     model TEXT NOT NULL,
     clip_model TEXT NOT NULL,
     latency_ms INTEGER NOT NULL,
     message_ref TEXT,
     created_at TEXT NOT NULL
   );
   CREATE INDEX generations_message ON generations(platform, message_ref);
   CREATE INDEX generations_created ON generations(created_at);
   CREATE TABLE feedback (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     generation_id TEXT NOT NULL REFERENCES generations(id),
     image_index INTEGER,
     platform TEXT NOT NULL,
     user_id TEXT NOT NULL,
     reaction TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('up','down','favourite','other')),
     added INTEGER NOT NULL CHECK (added IN (0,1)),
     created_at TEXT NOT NULL
   );
   CREATE INDEX feedback_generation ON feedback(generation_id);
   CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     preset TEXT NOT NULL,
     epochs INTEGER,
     dataset TEXT,
     platform TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('running','completed','early-stop','stopped','failed')),
     message TEXT,
     checkpoint_dir TEXT,
     best_val_loss DOUBLE PRECISION,
     started_at TEXT NOT NULL,
     finished_at TEXT
   );
   CREATE TABLE models (
     name TEXT PRIMARY KEY,
     dir TEXT NOT NULL,
     preset TEXT,
     clip_model TEXT,
     run_id TEXT REFERENCES runs(id),
     registered_at TEXT NOT NULL,
     activated_at TEXT
   );`,
  // v2: a generation can be shown by several messages (the grid, single images); reactions find theirs here.
  `CREATE TABLE generation_messages (
     platform TEXT NOT NULL,
     message_ref TEXT NOT NULL,
     generation_id TEXT NOT NULL REFERENCES generations(id),
     image_index INTEGER,
     created_at TEXT NOT NULL,
     PRIMARY KEY (platform, message_ref)
   );
   INSERT INTO generation_messages (platform, message_ref, generation_id, image_index, created_at)
     SELECT platform, message_ref, id, NULL, created_at FROM generations WHERE message_ref IS NOT NULL
     ON CONFLICT DO NOTHING;`,
  // v3: the models table was written and never read (the checkpoint registry is the one record).
  'DROP TABLE models;',
  // v4: models an admin published. (SQLite's v4 also carries publications over from a parallel v3 that PostgreSQL
  // never had.)
  `CREATE TABLE published_models (
     name TEXT PRIMARY KEY,
     published_at TEXT NOT NULL
   );`,
  // v5 (scaled mode): a run's owner and heartbeat (a starting process fails only its own or dead runs) and its
  // latest progress.
  `ALTER TABLE runs ADD COLUMN owner TEXT;
   ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
   ALTER TABLE runs ADD COLUMN progress JSONB;
   CREATE INDEX runs_status ON runs(status);`,
];

/** The advisory lock key migrations run under (any constant; "cvae" "store"). */
const MIGRATION_LOCK = 0x63766165_73746f72n;

/** Applies the migrations the database has not seen yet, each in its own transaction, under an advisory lock. Resolves the version. */
export async function migratePostgres(pool: pg.Pool, migrations: readonly string[] = PG_MIGRATIONS): Promise<number> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS store_schema_version (version INTEGER NOT NULL)');
      const row = (await client.query<{ version: number }>('SELECT version FROM store_schema_version')).rows[0];
      if (!row) await client.query('INSERT INTO store_schema_version (version) VALUES (0)');
      const current = row?.version ?? 0;
      if (current > migrations.length) {
        throw new Error(`database schema version ${current} is newer than this program (${migrations.length}); upgrade the bot`);
      }
      for (let v = current; v < migrations.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(migrations[v]);
          await client.query('UPDATE store_schema_version SET version = $1', [v + 1]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        log.info({ version: v + 1 }, 'applied schema migration (postgres)');
      }
      return migrations.length;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => { broken = true; });
    }
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    // A client whose session may still hold the lock (or broke) is not given back to the pool.
    client.release(broken);
  }
}

/** The schema version of the database (0 before the first migration). */
export async function schemaVersion(pool: pg.Pool): Promise<number> {
  const exists = (await pool.query<{ t: string | null }>("SELECT to_regclass('store_schema_version') AS t")).rows[0].t;
  if (!exists) return 0;
  return (await pool.query<{ version: number }>('SELECT version FROM store_schema_version')).rows[0]?.version ?? 0;
}
