/** The bot's store: generations, feedback and runs over one database (SQLite by default, PostgreSQL in scaled mode). */
import type pg from 'pg';
import type { Db } from './sqlite/database.js';
import type { GenerationStore } from './generation-store.js';
import type { FeedbackStore } from './feedback-store.js';
import type { RunStore } from './run-store.js';

/** All stores over one database. */
export interface BotStore {
  /** Which database holds them. */
  readonly kind: 'sqlite' | 'postgres';
  readonly generations: GenerationStore;
  readonly feedback: FeedbackStore;
  readonly runs: RunStore;
  /** False once closed. */
  isOpen(): boolean;
  /** Closes the database (the SQLite file, or the pool the store opened). */
  close(): Promise<void>;
}

/** The SQLite store, with its database handle (tests, migrations). */
export interface SqliteBotStore extends BotStore {
  readonly kind: 'sqlite';
  readonly db: Db;
}

/** The PostgreSQL store, with its pool. */
export interface PostgresBotStore extends BotStore {
  readonly kind: 'postgres';
  readonly pool: pg.Pool;
}
