/**
 * TrainingRunner: runs one training run per host as a child process (`cvae train --json-events`), reads its
 * JSON events line by line, reports structured progress ({@link TrainingProgress}: at most one update every
 * 15 s, plus each epoch's sample grid and loss curve) to the sink of the channel it was started from, which
 * renders it for its platform, records the run in
 * the store (its latest progress too, every {@link TrainingRunnerOptions.heartbeatMs}, which keeps the run marked
 * alive for other processes on a shared database) and, when the run ends with a checkpoint, registers that checkpoint. Stop sends SIGTERM: the
 * trainer saves a checkpoint and ends with a `done` event of reason `stopped`. The bot survives a crashing run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { childLogger } from '../../log.js';
import { dataDir, repoRoot } from '../../paths.js';
import { isValidName } from '../../util/names.js';
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from '../../util/postgres.js';
import { parseEventLine, type TrainingEvent } from '../../training/events.js';
import { UserError } from './errors.js';
import type { ModelCatalog } from './deps.js';
import type { RunStore, RunStatus } from './store/run-store.js';
import { formatTrainingProgress, type TrainingImage, type TrainingProgress } from './training-progress.js';
import type { Actor, TrainingProgressSink } from './types.js';
import { TrainingLock } from './training-lock.js';

const log = childLogger('training-runner');

export interface TrainingRunnerOptions {
  runs: RunStore;
  catalog: ModelCatalog;
  /** Checks a preset name, throwing a UserError listing the names when unknown (e.g. getPreset). */
  checkPreset?: (name: string) => void;
  /** Where run folders go (default `<DATA_DIR>/runs`). */
  runsDir?: string;
  /** Where named datasets live (default `<DATA_DIR>/datasets`). */
  datasetsDir?: string;
  /** Host-wide lock file (default `<DATA_DIR>/training.lock`). */
  lockFile?: string;
  /** Extra arguments for `train` (e.g. for a small synthetic run in tests). */
  extraArgs?: string[];
  /** Command to run instead of `node --import tsx src/cli/main.ts`. */
  command?: { file: string; args: string[]; cwd?: string };
  env?: NodeJS.ProcessEnv;
  /** Minimum time between status edits (default 15000 ms). */
  minUpdateIntervalMs?: number;
  /** How often the run's progress is stored (its heartbeat; default 30000 ms, well under RUN_STALE_AFTER_MS). */
  heartbeatMs?: number;
  /** Time to wait after SIGTERM before SIGKILL (default 120000 ms). */
  killAfterMs?: number;
  now?: () => number;
}

/**
 * What the core and the composition root use of a training runner: {@link TrainingRunner} in one process, or the
 * scaled mode's ClusterTrainingRunner (src/jobs/training-jobs.ts), which queues the run for a training worker.
 */
export interface TrainingControl {
  /** True while a run is going (the cluster runner: one it knows of). */
  readonly busy: boolean;
  /** The id of the run going now, or null. */
  readonly currentRunId: string | null;
  start(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink): Promise<string>;
  status(): Promise<string>;
  stop(): Promise<string>;
  /** Resolves when the run this process watches has ended. */
  idle(): Promise<void>;
  /** Where the current run stands; null when none is going. */
  progress(): TrainingProgress | null;
}

interface ActiveRun {
  id: string;
  preset: string;
  child: ChildProcess;
  sink: TrainingProgressSink;
  startedAt: number;
  stopping: boolean;
  /** The latest progress (what status() shows). */
  last: TrainingProgress;
  lastUpdateAt: number;
  pending: TrainingProgress | null;
  pendingTimer: NodeJS.Timeout | null;
  epochs: number | null;
  done: Promise<void>;
  sinkChain: Promise<void>;
  heartbeat: NodeJS.Timeout | null;
}

/** Runs and watches training child processes, one at a time per host. */
export class TrainingRunner implements TrainingControl {
  private run: ActiveRun | null = null;
  /** A start between its checks and its child being spawned (the lock is held then too). */
  private starting = false;
  private lock: TrainingLock;
  private readonly o: Required<Omit<TrainingRunnerOptions, 'checkPreset' | 'command'>> & Pick<TrainingRunnerOptions, 'checkPreset' | 'command'>;

  constructor(opts: TrainingRunnerOptions) {
    this.o = {
      runsDir: path.join(dataDir(), 'runs'),
      datasetsDir: path.join(dataDir(), 'datasets'),
      lockFile: path.join(dataDir(), 'training.lock'),
      extraArgs: [],
      env: process.env,
      minUpdateIntervalMs: 15_000,
      heartbeatMs: 30_000,
      killAfterMs: 120_000,
      now: Date.now,
      // An option passed as undefined keeps its default.
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as TrainingRunnerOptions),
    };
    this.lock = new TrainingLock(this.o.lockFile);
  }

  /** The id of the run going now, or null. */
  get currentRunId(): string | null {
    return this.run?.id ?? null;
  }

  /** True while a run started by this process is going. */
  get busy(): boolean {
    return this.run !== null;
  }

  /**
   * Starts a run; resolves with the message to show once the child is started. `recorded`: the run is already
   * recorded in the store under this id and claimed by this process (a training job of scaled mode, whose
   * ingress recorded it): the store checks and the insert are the caller's, only the child is started here.
   */
  async start(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink,
    recorded?: { runId: string }): Promise<string> {
    const preset = opts.preset.trim();
    if (!isValidName(preset)) throw new UserError('Preset names use letters, digits, `.`, `-` and `_`.');
    this.o.checkPreset?.(preset);
    if (opts.epochs !== undefined && (!Number.isInteger(opts.epochs) || opts.epochs < 1 || opts.epochs > 1000)) {
      throw new UserError('Epochs must be a whole number from 1 to 1000.');
    }
    const dataArgs = this.dataArgs(opts.dataset);
    if (this.run) throw new UserError(`A training run (\`${this.run.id}\`) is already going. Use \`/train status\` or \`/train stop\`.`);
    if (this.starting) throw new UserError('A training run is already starting or going. Use `/train status` or `/train stop`.');
    this.acquireLock();
    this.starting = true;
    const id = recorded?.runId ?? `${preset}-${new Date(this.o.now()).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}-${crypto.randomBytes(2).toString('hex')}`;
    const outDir = path.join(this.o.runsDir, id);
    try {
      await fsp.mkdir(this.o.runsDir, { recursive: true });
      const trainArgs = ['train', '--preset', preset, '--json-events', '--out', outDir];
      if (opts.epochs !== undefined) trainArgs.push('--epochs', String(opts.epochs));
      trainArgs.push(...dataArgs);
      trainArgs.push(...this.o.extraArgs);
      const cmd = this.o.command ?? { file: process.execPath, args: ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts')], cwd: repoRoot };
      // One run at a time across every process sharing the store (the lock file covers this host only). Runs left
      // 'running' by a process that died (this owner's, or stale ones) are marked failed first.
      if (!recorded) {
        const orphans = await this.o.runs.failOrphans().catch((err: unknown) => { throw storeError(err); });
        if (orphans) log.warn({ orphans }, 'marked training runs of a process that died as failed');
        const elsewhere = await this.o.runs.running().catch((err: unknown) => { throw storeError(err); });
        if (elsewhere) throw new UserError(`A training run (\`${elsewhere.id}\`) is already going. Use \`/train status\` or \`/train stop\`.`);
        await this.o.runs.start({
          id, preset, epochs: opts.epochs ?? null, dataset: opts.dataset ?? null, platform: actor.platform,
          channelId: actor.channelId, userId: actor.userId, startedAt: new Date(this.o.now()).toISOString(),
        }).catch((err: unknown) => { throw storeError(err); });
      }
      const child = spawn(cmd.file, [...cmd.args, ...trainArgs], {
        cwd: cmd.cwd ?? repoRoot,
        env: this.o.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        shell: false,
      });
      const run: ActiveRun = {
        id, preset, child, sink, startedAt: this.o.now(), stopping: false, lastUpdateAt: Number.NEGATIVE_INFINITY,
        last: { state: 'starting', runId: id, preset, epochs: opts.epochs ?? null, fraction: 0, resolution: null, trainSize: null },
        pending: null, pendingTimer: null, epochs: opts.epochs ?? null, done: Promise.resolve(),
        sinkChain: Promise.resolve(), heartbeat: null,
      };
      this.run = run;
      run.heartbeat = setInterval(() => { void this.storeProgress(run); }, this.o.heartbeatMs);
      run.heartbeat.unref();
      run.done = this.watch(run);
      log.info({ runId: id, preset, epochs: opts.epochs, platform: actor.platform, userId: actor.userId, pid: child.pid }, 'training run started');
      return `Started training run \`${id}\` (preset \`${preset}\`${opts.epochs ? `, ${opts.epochs} epochs` : ''}). Progress will appear here.`;
    } catch (err) {
      this.releaseLock();
      this.run = null;
      throw err;
    } finally {
      this.starting = false;
    }
  }

  /** Where the current run stands; null when none is going. */
  progress(): TrainingProgress | null {
    return this.run?.last ?? null;
  }

  /**
   * A one-paragraph status of the current run: this process's, else one another process sharing the store trains
   * (from its stored progress), else the last run.
   */
  async status(): Promise<string> {
    if (this.run) return formatTrainingProgress(this.run.last);
    const elsewhere = await this.o.runs.running().catch((err: unknown) => { throw storeError(err); });
    if (elsewhere) {
      return elsewhere.progress ? formatTrainingProgress(elsewhere.progress) : `Training run \`${elsewhere.id}\` is going on another host.`;
    }
    const last = (await this.o.runs.recent(1).catch((err: unknown) => { throw storeError(err); }))[0];
    if (!last) return 'No training run is going, and none has run yet.';
    return `No training run is going. Last run \`${last.id}\`: ${last.status}${last.bestValLoss != null ? `, best val loss ${last.bestValLoss.toFixed(1)}` : ''}${last.message ? ` (${last.message})` : ''}.`;
  }

  /** Asks the run to stop (SIGTERM: the trainer saves a checkpoint first). */
  async stop(): Promise<string> {
    const run = this.run;
    if (!run) return 'No training run is going.';
    if (run.stopping) return `Training run \`${run.id}\` is already stopping.`;
    run.stopping = true;
    run.child.kill('SIGTERM');
    const killer = setTimeout(() => { if (run.child.exitCode === null) run.child.kill('SIGKILL'); }, this.o.killAfterMs);
    killer.unref();
    run.done.finally(() => clearTimeout(killer));
    log.info({ runId: run.id }, 'training run stop requested');
    return `Stopping training run \`${run.id}\`: it saves a checkpoint first.`;
  }

  /** Resolves when the current run (if any) has ended and its final status was sent. */
  async idle(): Promise<void> {
    await this.run?.done;
  }

  /**
   * What to train on: `--dataset <datasets dir>/<name>`, `--synthetic 256` for the name `synthetic` (a quick try),
   * nothing when the configured extra arguments already say, else the only dataset there is.
   */
  private dataArgs(name: string | undefined): string[] {
    if (name === undefined || name.trim() === '') {
      if (this.o.extraArgs.includes('--dataset') || this.o.extraArgs.includes('--synthetic')) return [];
      const names = this.datasetNames();
      if (names.length === 1) return ['--dataset', path.join(this.o.datasetsDir, names[0])];
      throw new UserError(names.length
        ? `Say which dataset to train on (\`dataset:\`): ${names.map((n) => `\`${n}\``).join(', ')}, or \`synthetic\` for a quick try.`
        : 'There is no dataset yet: build one with `cvae dataset build` on the host, or use `dataset: synthetic` for a quick try.');
    }
    if (name.trim() === 'synthetic') return ['--synthetic', '256'];
    return ['--dataset', this.resolveDataset(name.trim())];
  }

  private datasetNames(): string[] {
    try {
      return fs.readdirSync(this.o.datasetsDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch {
      return [];
    }
  }

  private resolveDataset(name: string): string {
    if (!isValidName(name) || name.includes('..')) {
      throw new UserError('Dataset names use letters, digits, `.`, `-` and `_` (a folder under the data dir\'s `datasets/`).');
    }
    const dir = path.join(this.o.datasetsDir, name);
    if (!fs.existsSync(dir)) {
      const names = this.datasetNames();
      throw new UserError(`There is no dataset \`${name}\`. Known datasets: ${names.length ? names.map((n) => `\`${n}\``).join(', ') : 'none (build one with `cvae dataset build`)'}.`);
    }
    return dir;
  }

  /** Takes the host-wide lock atomically (training-lock.ts); a UserError says who holds it. */
  private acquireLock(): void {
    this.lock.acquire();
  }

  private releaseLock(): void {
    this.lock.release();
  }

  private async watch(run: ActiveRun): Promise<void> {
    const stderrTail: string[] = [];
    const errLines = readline.createInterface({ input: run.child.stderr! });
    errLines.on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const lines = readline.createInterface({ input: run.child.stdout! });
    let doneEvent: Extract<TrainingEvent, { type: 'done' }> | null = null;
    let errorEvent: Extract<TrainingEvent, { type: 'error' }> | null = null;
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      run.child.on('close', (code, signal) => resolve({ code, signal }));
      run.child.on('error', (err) => { errorEvent = { type: 'error', message: err.message }; resolve({ code: -1, signal: null }); });
    });
    for await (const line of lines) {
      const event = parseEventLine(line);
      if (!event) continue;
      if (event.type === 'done') doneEvent = event;
      else if (event.type === 'error') errorEvent = event;
      else this.onProgress(run, event);
    }
    const { code, signal } = await exit;
    let status: Exclude<RunStatus, 'running'>;
    let message: string | null = null;
    let registered: string | null = null;
    const done = doneEvent as Extract<TrainingEvent, { type: 'done' }> | null;
    const error = errorEvent as Extract<TrainingEvent, { type: 'error' }> | null;
    if (done) {
      status = done.reason;
      try {
        await this.o.catalog.register(run.id, done.checkpointDir);
        registered = run.id;
      } catch (err) {
        message = `checkpoint not registered: ${(err as Error).message}`;
        log.error({ err, runId: run.id }, 'could not register checkpoint');
      }
    } else {
      status = 'failed';
      message = error?.message ?? `training process exited (${signal ?? `code ${code}`})${stderrTail.length ? `: ${stderrTail.at(-1)!.slice(0, 300)}` : ''}`;
    }
    const ref = { runId: run.id, preset: run.preset, epochs: run.epochs };
    const final: TrainingProgress = done
      ? { ...ref, state: 'finished', reason: done.reason, epochsCompleted: done.epochsCompleted, bestValLoss: done.bestValLoss, registered,
        fraction: done.reason === 'completed' ? 1 : run.last.fraction }
      : { ...ref, state: 'failed', message: message ?? 'unknown error', fraction: run.last.fraction };
    if (run.heartbeat) clearInterval(run.heartbeat);
    try {
      await this.o.runs.finish(run.id, { status, message, checkpointDir: done?.checkpointDir ?? null, bestValLoss: done?.bestValLoss ?? null, progress: final });
    } catch (err) {
      // Left 'running' in the store; the next start of this owner (or anyone, once its heartbeat is stale) fails it.
      log.error({ err, runId: run.id, status }, 'could not record the end of a training run');
    }
    log.info({ runId: run.id, status, code, signal, registered }, 'training run ended');
    if (run.pendingTimer) clearTimeout(run.pendingTimer);
    run.last = final;
    this.run = null;
    this.releaseLock();
    await this.enqueueSink(run, () => run.sink.update(final));
    await run.sinkChain;
  }

  private onProgress(run: ActiveRun, event: TrainingEvent): void {
    const ref = { runId: run.id, preset: run.preset };
    if (event.type === 'start') {
      run.epochs = event.epochs;
      this.setStatus(run, { ...ref, state: 'starting', epochs: event.epochs, fraction: 0, resolution: event.resolution, trainSize: event.trainSize });
    } else if (event.type === 'step') {
      this.setStatus(run, {
        ...ref, state: 'training', epochs: run.epochs, fraction: clamp01(event.step / Math.max(1, event.totalSteps)), epoch: event.epoch,
        step: event.step, totalSteps: event.totalSteps, losses: event.losses, imagesPerSec: event.imagesPerSec, etaSec: event.etaSec,
      });
    } else if (event.type === 'epoch') {
      this.setStatus(run, {
        ...ref, state: 'epoch-done', epochs: event.epochs, fraction: clamp01(event.epoch / Math.max(1, event.epochs)), epoch: event.epoch,
        train: event.train, val: event.val, best: event.best,
      });
      const about = { epoch: event.epoch, epochs: event.epochs, valLoss: event.val.total, best: event.best };
      this.enqueueSink(run, async () => {
        const [sample, curve] = await Promise.all([readOptional(event.samplePng), readOptional(event.lossCurvePng)]);
        const images: TrainingImage[] = [];
        if (sample) images.push({ ...about, kind: 'samples', png: sample });
        if (curve) images.push({ ...about, kind: 'loss-curve', png: curve });
        for (const image of images) await run.sink.image(image);
      });
    }
  }

  /** Records the progress; sends it now if 15 s have passed since the last update, else later (the latest then). */
  private setStatus(run: ActiveRun, progress: TrainingProgress): void {
    run.last = progress;
    const wait = run.lastUpdateAt + this.o.minUpdateIntervalMs - this.o.now();
    if (wait <= 0 && !run.pendingTimer) {
      run.lastUpdateAt = this.o.now();
      this.enqueueSink(run, () => run.sink.update(progress));
      return;
    }
    run.pending = progress;
    if (!run.pendingTimer) {
      run.pendingTimer = setTimeout(() => {
        run.pendingTimer = null;
        if (this.run !== run || run.pending === null) return;
        const p = run.pending;
        run.pending = null;
        run.lastUpdateAt = this.o.now();
        this.enqueueSink(run, () => run.sink.update(p));
      }, Math.max(wait, 0));
      run.pendingTimer.unref();
    }
  }

  /** Stores the run's latest progress (its heartbeat); a failure is logged, never fatal. */
  private async storeProgress(run: ActiveRun): Promise<void> {
    if (this.run !== run) return;
    try {
      await this.o.runs.setProgress(run.id, run.last);
    } catch (err) {
      log.warn({ runId: run.id, reason: (err as Error).message }, 'could not store training progress');
    }
  }

  /** Sends to the sink in order; a failing sink is logged, never fatal. */
  private enqueueSink(run: ActiveRun, fn: () => Promise<void>): Promise<void> {
    run.sinkChain = run.sinkChain.then(fn).catch((err) => log.warn({ err, runId: run.id }, 'training progress sink failed'));
    return run.sinkChain;
  }
}

async function readOptional(file: string | undefined): Promise<Buffer | null> {
  if (!file) return null;
  try {
    return await fsp.readFile(file);
  } catch {
    return null;
  }
}

/** A store error for an admin waiting on a command: a database outage becomes a UserError. */
function storeError(err: unknown): unknown {
  return isDatabaseUnavailable(err) ? new UserError(DATABASE_UNAVAILABLE_MESSAGE, { cause: err }) : err;
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
