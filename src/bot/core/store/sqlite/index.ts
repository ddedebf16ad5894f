/** Opens the SQLite store (the default: one process, `<DATA_DIR>/bot.sqlite`). */
import os from 'node:os';
import { openDatabase } from './database.js';
import { SqliteGenerationStore } from './generations.js';
import { SqliteFeedbackStore } from './feedback.js';
import { SqliteRunStore } from './runs.js';
import type { SqliteBotStore } from '../bot-store.js';

/**
 * Opens (creating and migrating) the SQLite store: `<DATA_DIR>/bot.sqlite` by default, or `:memory:`.
 * `owner` is recorded on the runs this process starts (default: the host name; one host uses the file).
 */
export function openSqliteStore(file?: string, opts: { owner?: string } = {}): SqliteBotStore {
  const db = openDatabase(file);
  return {
    kind: 'sqlite',
    db,
    generations: new SqliteGenerationStore(db),
    feedback: new SqliteFeedbackStore(db),
    runs: new SqliteRunStore(db, opts.owner ?? os.hostname()),
    isOpen: () => db.open,
    close: async () => { db.close(); },
  };
}
