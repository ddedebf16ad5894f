/**
 * TrainingRunner: runs one training run per host as a child process (`cvae train --json-events`), reads its
 * JSON events line by line, reports progress to the sink of the channel it was started from (one status
 * message edited at most every 15 s, plus each epoch's sample grid and loss curve), records the run in
 * SQLite and, when the run ends with a checkpoint, registers that checkpoint. Stop sends SIGTERM: the
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
import { parseEventLine, type TrainingEvent, type LossTerms } from '../../training/events.js';
import { UserError } from './errors.js';
import type { ModelCatalog } from './deps.js';
import type { RunStore, RunStatus } from './store/run-store.js';
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
  /** Time to wait after SIGTERM before SIGKILL (default 120000 ms). */
  killAfterMs?: number;
  now?: () => number;
}

interface ActiveRun {
  id: string;
  preset: string;
  child: ChildProcess;
  sink: TrainingProgressSink;
  startedAt: number;
  stopping: boolean;
  lastText: string;
  lastUpdateAt: number;
  pendingText: string | null;
  pendingTimer: NodeJS.Timeout | null;
  epochs: number | null;
  lastEvent: TrainingEvent | null;
  done: Promise<void>;
  sinkChain: Promise<void>;
}

/** Runs and watches training child processes, one at a time per host. */
export class TrainingRunner {
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

  /** Starts a run; resolves with the message to show once the child is started. */
  async start(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink): Promise<string> {
    const preset = opts.preset.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(preset)) throw new UserError('Preset names use letters, digits, `.`, `-` and `_`.');
    this.o.checkPreset?.(preset);
    if (opts.epochs !== undefined && (!Number.isInteger(opts.epochs) || opts.epochs < 1 || opts.epochs > 1000)) {
      throw new UserError('Epochs must be a whole number from 1 to 1000.');
    }
    const dataArgs = this.dataArgs(opts.dataset);
    if (this.run) throw new UserError(`A training run (\`${this.run.id}\`) is already going. Use \`/train status\` or \`/train stop\`.`);
    if (this.starting) throw new UserError('A training run is already starting or going. Use `/train status` or `/train stop`.');
    this.acquireLock();
    this.starting = true;
    const id = `${preset}-${new Date(this.o.now()).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}-${crypto.randomBytes(2).toString('hex')}`;
    const outDir = path.join(this.o.runsDir, id);
    try {
      await fsp.mkdir(this.o.runsDir, { recursive: true });
      const trainArgs = ['train', '--preset', preset, '--json-events', '--out', outDir];
      if (opts.epochs !== undefined) trainArgs.push('--epochs', String(opts.epochs));
      trainArgs.push(...dataArgs);
      trainArgs.push(...this.o.extraArgs);
      const cmd = this.o.command ?? { file: process.execPath, args: ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts')], cwd: repoRoot };
      this.o.runs.start({
        id, preset, epochs: opts.epochs ?? null, dataset: opts.dataset ?? null, platform: actor.platform,
        channelId: actor.channelId, userId: actor.userId, startedAt: new Date(this.o.now()).toISOString(),
      });
      const child = spawn(cmd.file, [...cmd.args, ...trainArgs], {
        cwd: cmd.cwd ?? repoRoot,
        env: this.o.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        shell: false,
      });
      const run: ActiveRun = {
        id, preset, child, sink, startedAt: this.o.now(), stopping: false, lastText: '', lastUpdateAt: Number.NEGATIVE_INFINITY,
        pendingText: null, pendingTimer: null, epochs: opts.epochs ?? null, lastEvent: null, done: Promise.resolve(),
        sinkChain: Promise.resolve(),
      };
      this.run = run;
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

  /** A one-paragraph status of the current (or last) run. */
  status(): string {
    if (this.run) return this.run.lastText || `Training run \`${this.run.id}\` is starting…`;
    const last = this.o.runs.recent(1)[0];
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
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name) || name.includes('..')) {
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
      run.lastEvent = event;
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
        this.o.runs.registerModel({ name: run.id, dir: done.checkpointDir, preset: run.preset, runId: run.id });
        registered = run.id;
      } catch (err) {
        message = `checkpoint not registered: ${(err as Error).message}`;
        log.error({ err, runId: run.id }, 'could not register checkpoint');
      }
    } else {
      status = 'failed';
      message = error?.message ?? `training process exited (${signal ?? `code ${code}`})${stderrTail.length ? `: ${stderrTail.at(-1)!.slice(0, 300)}` : ''}`;
    }
    this.o.runs.finish(run.id, { status, message, checkpointDir: done?.checkpointDir ?? null, bestValLoss: done?.bestValLoss ?? null });
    log.info({ runId: run.id, status, code, signal, registered }, 'training run ended');
    const finalText = done
      ? `Training run \`${run.id}\` ${done.reason === 'completed' ? 'finished' : done.reason === 'early-stop' ? 'stopped early (no more improvement)' : 'was stopped'} after ${done.epochsCompleted} epoch(s)${done.bestValLoss != null ? `, best val loss ${done.bestValLoss.toFixed(1)}` : ''}.${registered ? ` Checkpoint registered as \`${registered}\`; serve it with \`/model use ${registered}\`.` : ''}`
      : `Training run \`${run.id}\` failed: ${message}`;
    if (run.pendingTimer) clearTimeout(run.pendingTimer);
    run.lastText = finalText;
    this.run = null;
    this.releaseLock();
    await this.enqueueSink(run, () => run.sink.update(finalText));
    await run.sinkChain;
  }

  private onProgress(run: ActiveRun, event: TrainingEvent): void {
    if (event.type === 'start') {
      run.epochs = event.epochs;
      this.setStatus(run, `Training run \`${run.id}\` (preset \`${event.preset}\`, ${event.resolution} px, ${event.trainSize} training images): starting ${event.epochs} epoch(s)…`);
    } else if (event.type === 'step') {
      this.setStatus(run, formatStep(run.id, event, run.epochs));
    } else if (event.type === 'epoch') {
      const caption = `Epoch ${event.epoch}/${event.epochs}: val loss ${event.val.total.toFixed(1)}${event.best ? ' (best so far)' : ''}`;
      this.setStatus(run, `Training run \`${run.id}\`: epoch ${event.epoch}/${event.epochs} done. ${formatLosses('train', event.train)}; ${formatLosses('val', event.val)}.`);
      this.enqueueSink(run, async () => {
        const [sample, curve] = await Promise.all([readOptional(event.samplePng), readOptional(event.lossCurvePng)]);
        if (sample) await run.sink.image(`samples-epoch-${event.epoch}.png`, sample, `${caption}: samples`);
        if (curve) await run.sink.image(`loss-epoch-${event.epoch}.png`, curve, `${caption}: loss curve`);
      });
    }
  }

  /** Sets the status text; edits the message now if 15 s have passed since the last edit, else later. */
  private setStatus(run: ActiveRun, text: string): void {
    run.lastText = text;
    const wait = run.lastUpdateAt + this.o.minUpdateIntervalMs - this.o.now();
    if (wait <= 0 && !run.pendingTimer) {
      run.lastUpdateAt = this.o.now();
      this.enqueueSink(run, () => run.sink.update(text));
      return;
    }
    run.pendingText = text;
    if (!run.pendingTimer) {
      run.pendingTimer = setTimeout(() => {
        run.pendingTimer = null;
        if (this.run !== run || run.pendingText === null) return;
        const t = run.pendingText;
        run.pendingText = null;
        run.lastUpdateAt = this.o.now();
        this.enqueueSink(run, () => run.sink.update(t));
      }, Math.max(wait, 0));
      run.pendingTimer.unref();
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

/** `train loss 123.4 (bce 120.0, kl 6.1, ssim 0.42)` */
export function formatLosses(label: string, l: LossTerms): string {
  return `${label} loss ${l.total.toFixed(1)} (bce ${l.bce.toFixed(1)}, kl ${l.kl.toFixed(2)}, ssim ${l.ssim.toFixed(3)})`;
}

/** A text progress bar, e.g. `[██████░░░░░░░░░░] 37%`. */
export function progressBar(fraction: number, width = 16): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${Math.round(f * 100)}%`;
}

/** `1h 02m`, `3m 20s`, `45s`. */
export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** The status message of a step event: progress bar, epoch, losses, speed and ETA. */
export function formatStep(runId: string, e: Extract<TrainingEvent, { type: 'step' }>, epochs: number | null): string {
  return [
    `Training run \`${runId}\`: epoch ${e.epoch}${epochs ? `/${epochs}` : ''}, step ${e.step}/${e.totalSteps}`,
    progressBar(e.step / Math.max(1, e.totalSteps)),
    `${formatLosses('batch', e.losses)} · ${e.imagesPerSec.toFixed(1)} img/s · ETA ${e.etaSec == null ? 'unknown' : formatDuration(e.etaSec)}`,
  ].join('\n');
}
