/** The bot's SQLite store: generations, feedback, runs. */
import { openDatabase, type Db } from './database.js';
import { GenerationStore } from './generation-store.js';
import { FeedbackStore } from './feedback-store.js';
import { RunStore } from './run-store.js';

export { openDatabase, migrate, MIGRATIONS, type Db } from './database.js';
export * from './generation-store.js';
export * from './feedback-store.js';
export * from './run-store.js';

/** All stores over one database. */
export interface BotStore {
  db: Db;
  generations: GenerationStore;
  feedback: FeedbackStore;
  runs: RunStore;
  /** False once closed. */
  isOpen(): boolean;
  close(): void;
}

/** Opens the store (default `<DATA_DIR>/bot.sqlite`). */
export function openBotStore(file?: string): BotStore {
  const db = openDatabase(file);
  return {
    db,
    generations: new GenerationStore(db),
    feedback: new FeedbackStore(db),
    runs: new RunStore(db),
    isOpen: () => db.open,
    close: () => db.close(),
  };
}
