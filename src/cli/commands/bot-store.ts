/**
 * The bot store as the CLI commands open it: PostgreSQL when DATABASE_URL is set (scaled mode), else the SQLite
 * file in DATA_DIR. A database that cannot be reached is a UserError saying so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../errors.js';
import { envSchema } from '../../config/env.js';
import { isDatabaseUnavailable } from '../../util/postgres.js';
import { openPostgresStore, openSqliteStore, type BotStore } from '../../bot/core/store/index.js';

/** DATABASE_URL from the environment (checked), or undefined when unset. */
export function databaseUrlFrom(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.DATABASE_URL?.trim();
  if (!raw) return undefined;
  const ok = envSchema.shape.DATABASE_URL.safeParse(raw);
  if (!ok.success) throw new UserError(`DATABASE_URL: ${ok.error.issues[0]?.message ?? 'is not a PostgreSQL URL'}`);
  return raw;
}

/**
 * Opens the store the bot uses: PostgreSQL at DATABASE_URL, else `<dataDir>/bot.sqlite`. Resolves null when there is
 * no SQLite file yet (nothing recorded).
 */
export async function openCliStore(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<BotStore | null> {
  const url = databaseUrlFrom(env);
  if (url) {
    try {
      return await openPostgresStore(url, { applicationName: 'cvae-cli', maxConnections: 2 });
    } catch (err) {
      if (isDatabaseUnavailable(err)) throw new UserError('Cannot reach the database at DATABASE_URL; is PostgreSQL running?', { cause: err });
      throw err;
    }
  }
  const file = path.join(dataDir, 'bot.sqlite');
  return fs.existsSync(file) ? openSqliteStore(file) : null;
}
