/**
 * The bot's store: generations, feedback, runs. SQLite by default (one process); PostgreSQL when a DATABASE_URL
 * is given (scaled mode: ingress replicas and workers share it). Both keep the same contract and schema version.
 */
import { openSqliteStore } from './sqlite/index.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/index.js';
import type { BotStore } from './bot-store.js';

export { openDatabase, migrate, MIGRATIONS, type Db } from './sqlite/database.js';
export { PG_MIGRATIONS, migratePostgres, schemaVersion } from './postgres/migrations.js';
export { openSqliteStore } from './sqlite/index.js';
export { openPostgresStore, type PostgresStoreOptions } from './postgres/index.js';
export type { BotStore, SqliteBotStore, PostgresBotStore } from './bot-store.js';
export * from './generation-store.js';
export * from './feedback-store.js';
export * from './run-store.js';

export interface OpenBotStoreOptions extends PostgresStoreOptions {
  /** `postgres://...`: the PostgreSQL store. Unset or empty: SQLite. */
  databaseUrl?: string | null;
  /** The SQLite file (default `<DATA_DIR>/bot.sqlite`; `:memory:` for none); not used with `databaseUrl`. */
  file?: string;
}

/** Opens the store: PostgreSQL when `databaseUrl` is set (migrated under an advisory lock), else SQLite. */
export async function openBotStore(opts: OpenBotStoreOptions = {}): Promise<BotStore> {
  const { databaseUrl, file, ...pgOpts } = opts;
  if (databaseUrl) return openPostgresStore(databaseUrl, pgOpts);
  return openSqliteStore(file, { owner: pgOpts.owner });
}
