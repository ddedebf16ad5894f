/**
 * The bot's SQLite database (better-sqlite3, WAL), the default store: opening it and applying versioned schema
 * migrations. (Scaled mode keeps the same tables in PostgreSQL: ../postgres/migrations.ts mirrors this list.)
 * Tables: generations, generation_messages, feedback, runs, published_models. `PRAGMA user_version` holds the schema version.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { dataDir } from '../../../../paths.js';
import { childLogger } from '../../../../log.js';

const log = childLogger('bot-store');

export type Db = Database.Database;

/** Ordered schema migrations; migration i brings the schema to version i + 1. Never edit one that shipped: append. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE generations (
     id TEXT PRIMARY KEY,
     platform TEXT NOT NULL,
     workspace_id TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('imagine','reroll','variations')),
     parent_id TEXT REFERENCES generations(id),
     prompt TEXT NOT NULL,
     seeds TEXT NOT NULL,
     count INTEGER NOT NULL,
     variation_seed INTEGER,
     model TEXT NOT NULL,
     clip_model TEXT NOT NULL,
     latency_ms INTEGER NOT NULL,
     message_ref TEXT,
     created_at TEXT NOT NULL
   );
   CREATE INDEX generations_message ON generations(platform, message_ref);
   CREATE INDEX generations_created ON generations(created_at);
   CREATE TABLE feedback (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
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
     best_val_loss REAL,
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
   INSERT OR IGNORE INTO generation_messages (platform, message_ref, generation_id, image_index, created_at)
     SELECT platform, message_ref, id, NULL, created_at FROM generations WHERE message_ref IS NOT NULL;`,
  // v3: the models table was written and never read: the checkpoint registry (registry.json) is the one record.
  'DROP TABLE models;',
  // v4: models an admin published (anyone may pick them with /imagine model:NAME; serving one publishes it).
  // The hardening branch shipped its own v3 (`ALTER TABLE models ADD COLUMN published_at`, backfilled from
  // activated_at) in parallel with the v3 above, so a database at user_version 3 has either no models table or
  // one with published_at. The stub table (created only when absent) lets one statement carry the
  // publications over from either, and the models table goes in both cases.
  `CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, published_at TEXT);
   CREATE TABLE published_models (
     name TEXT PRIMARY KEY,
     published_at TEXT NOT NULL
   );
   INSERT INTO published_models (name, published_at) SELECT name, published_at FROM models WHERE published_at IS NOT NULL;
   DROP TABLE models;`,
  // v5 (scaled mode): which process owns a run and when it last said it was alive (a starting process fails only
  // its own runs or runs nobody has kept alive), and the run's latest progress (JSON of TrainingProgress).
  `ALTER TABLE runs ADD COLUMN owner TEXT;
   ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
   ALTER TABLE runs ADD COLUMN progress TEXT;`,
];

/** Applies the migrations the database has not seen yet, each in its own transaction. Returns the new version. */
export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this program (${MIGRATIONS.length}); upgrade the bot`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
    log.info({ version: v + 1 }, 'applied schema migration');
  }
  return MIGRATIONS.length;
}

/** Opens (creating) the bot database: `<DATA_DIR>/bot.sqlite` by default, or `:memory:`. WAL, foreign keys on, migrated. */
export function openDatabase(file: string = path.join(dataDir(), 'bot.sqlite')): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  if (file !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}
