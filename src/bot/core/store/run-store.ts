/**
 * Training runs, and which models an admin published. (Registered models live in the checkpoint registry,
 * `registry.json`; the store keeps only the publication, an admin's decision the registry does not hold.)
 * The contract both stores (SQLite, PostgreSQL) keep.
 *
 * Ownership: a run records the owner that trains it (the store's owner id, e.g. `host:train`) and a heartbeat the
 * owner refreshes while it trains ({@link RunStore.setProgress}, {@link RunStore.touch}). With several processes
 * sharing one database, a starting process fails only the runs it owned itself (it died with them) and runs whose
 * owner has not been heard of for {@link RUN_STALE_AFTER_MS}; a run another live process trains is left alone.
 */
import type { Platform } from '../types.js';
import type { TrainingProgress } from '../training-progress.js';

export type RunStatus = 'running' | 'completed' | 'early-stop' | 'stopped' | 'failed';

/** A 'running' run whose heartbeat is older than this is taken as dead (its owner stopped without saying). */
export const RUN_STALE_AFTER_MS = 3 * 60_000;

export interface RunRecord {
  id: string;
  preset: string;
  epochs: number | null;
  dataset: string | null;
  platform: Platform;
  channelId: string;
  userId: string;
  status: RunStatus;
  message: string | null;
  checkpointDir: string | null;
  bestValLoss: number | null;
  startedAt: string;
  finishedAt: string | null;
  /** Who trains it (the store owner id of the process that started it); null for runs of older versions. */
  owner: string | null;
  /** When its owner last said it was alive (ISO time). */
  heartbeatAt: string | null;
  /** The latest progress its owner stored, or null. */
  progress: TrainingProgress | null;
}

/** What starting a run records. */
export type RunStart = Pick<RunRecord, 'id' | 'preset' | 'epochs' | 'dataset' | 'platform' | 'channelId' | 'userId' | 'startedAt'>;

/** How a run ended. */
export interface RunFinish {
  status: Exclude<RunStatus, 'running'>;
  message?: string | null;
  checkpointDir?: string | null;
  bestValLoss?: number | null;
  /** The final progress (stored with the end). */
  progress?: TrainingProgress | null;
}

/** Reads and writes the runs and published_models tables. */
export interface RunStore {
  /** The owner id this store records on the runs it starts. */
  readonly owner: string;
  /** Records a run that has just started, owned by {@link owner}, heartbeat now. */
  start(r: RunStart): Promise<void>;
  /** Records how a run ended. */
  finish(id: string, f: RunFinish): Promise<void>;
  /** Stores the run's latest progress (and refreshes its heartbeat). */
  setProgress(id: string, progress: TrainingProgress): Promise<void>;
  /** Refreshes the run's heartbeat (its owner is alive and still training it). */
  touch(id: string): Promise<void>;
  /** The run with this id, or null. */
  get(id: string): Promise<RunRecord | null>;
  /** The most recent runs, newest first. */
  recent(limit?: number): Promise<RunRecord[]>;
  /**
   * The newest run that is 'running' anywhere (any process on the database) with a heartbeat younger than
   * `staleAfterMs` (default {@link RUN_STALE_AFTER_MS}), or null: one run at a time across the cluster.
   */
  running(opts?: { staleAfterMs?: number; now?: Date }): Promise<RunRecord | null>;
  /**
   * Marks as failed the runs left 'running' by a process that died with them: those this owner started, those of
   * no recorded owner, and those whose heartbeat is older than `staleAfterMs`. Resolves how many.
   */
  failOrphans(opts?: { staleAfterMs?: number; now?: Date }): Promise<number>;
  /** How many runs the store holds in each status (every status present, 0 when none). */
  countByStatus(): Promise<Record<RunStatus, number>>;
  /** Records that a model became the served one: serving publishes it (a publication made earlier keeps its date). */
  markServed(name: string): Promise<void>;
  /** Publishes a model (anyone may pick it) or takes it back. */
  setPublished(name: string, published: boolean): Promise<void>;
  /** Whether an admin has published the model. */
  isPublished(name: string): Promise<boolean>;
  /** Names of the published models. */
  publishedNames(): Promise<Set<string>>;
}

/** The message a run failed by {@link RunStore.failOrphans} gets. */
export const ORPHAN_MESSAGE = 'the bot stopped while this run was going';

/** A runs row as both databases return it (PostgreSQL returns progress already parsed, jsonb). */
export interface RunRow {
  id: string; preset: string; epochs: number | null; dataset: string | null; platform: string; channel_id: string;
  user_id: string; status: string; message: string | null; checkpoint_dir: string | null; best_val_loss: number | null;
  started_at: string; finished_at: string | null; owner: string | null; heartbeat_at: string | null;
  progress: string | TrainingProgress | null;
}

export function runFromRow(r: RunRow): RunRecord {
  return {
    id: r.id, preset: r.preset, epochs: r.epochs, dataset: r.dataset, platform: r.platform as Platform,
    channelId: r.channel_id, userId: r.user_id, status: r.status as RunStatus, message: r.message,
    checkpointDir: r.checkpoint_dir, bestValLoss: r.best_val_loss, startedAt: r.started_at, finishedAt: r.finished_at,
    owner: r.owner, heartbeatAt: r.heartbeat_at,
    progress: typeof r.progress === 'string' ? JSON.parse(r.progress) as TrainingProgress : r.progress,
  };
}

/** Every status at 0, then the counts found. */
export function statusCounts(rows: { status: string; n: number | string }[]): Record<RunStatus, number> {
  const counts: Record<RunStatus, number> = { running: 0, completed: 0, 'early-stop': 0, stopped: 0, failed: 0 };
  for (const r of rows) counts[r.status as RunStatus] = Number(r.n);
  return counts;
}

/** The heartbeat cutoff: runs with an older heartbeat are taken as dead. */
export function staleCutoff(opts: { staleAfterMs?: number; now?: Date } = {}): string {
  return new Date((opts.now ?? new Date()).getTime() - (opts.staleAfterMs ?? RUN_STALE_AFTER_MS)).toISOString();
}
