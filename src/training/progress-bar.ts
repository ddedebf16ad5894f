/**
 * Terminal rendering of TrainingEvents for the CLI: a cli-progress bar on a TTY (stderr by default), with
 * one summary line per epoch above it; plain lines (epochs, and a step line at most every 30 s) elsewhere.
 */
import cliProgress from 'cli-progress';
import type { LossTerms } from '../model/loss.js';
import type { TrainingEvent } from './events.js';
import { formatDuration } from './throughput.js';

/** `total 123.4 (bce 120.1, kl 6.2, ssim 0.412)` */
export function formatLosses(l: LossTerms): string {
  return `total ${fmt(l.total)} (bce ${fmt(l.bce)}, kl ${fmt(l.kl)}, ssim ${l.ssim.toFixed(3)})`;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

/** One human line for an event (used for the log lines above the bar and for non-TTY output). */
export function describeEvent(e: TrainingEvent): string {
  switch (e.type) {
    case 'start':
      return (
        `${e.resumed ? 'resuming' : 'training'} ${e.preset} (${e.resolution}px, ${e.conditioning}-conditioned, ` +
        `${e.trainableParams.toLocaleString('en-US')} params) on ${e.trainSize} train / ${e.valSize} val images; ` +
        `epochs ${e.startEpoch}..${e.epochs}, batch ${e.batchSize}, lr ${e.learningRate}, seed ${e.seed}, backend ${e.backend} → ${e.outDir}`
      );
    case 'step':
      return (
        `epoch ${e.epoch} step ${e.epochStep}/${e.stepsPerEpoch} (${e.step}/${e.totalSteps}) ` +
        `loss ${fmt(e.losses.total)} ${e.imagesPerSec.toFixed(1)} img/s ETA ${formatDuration(e.etaSec ?? Infinity)}`
      );
    case 'epoch':
      return (
        `epoch ${e.epoch}/${e.epochs}: train ${formatLosses(e.train)} | val ${formatLosses(e.val)}` +
        `${e.best ? ' [best]' : ` (best ${fmt(e.bestValLoss)} @ ${e.bestEpoch})`} ${formatDuration(e.durationSec)}`
      );
    case 'done':
      return (
        `done (${e.reason}) after ${e.epochsCompleted} epochs, ${e.step} steps; best val loss ` +
        `${e.bestValLoss === null ? 'n/a' : `${fmt(e.bestValLoss)} @ epoch ${e.bestEpoch}`}; checkpoint ${e.checkpointDir}`
      );
    case 'error':
      return `training failed: ${e.message}`;
  }
}

export interface ProgressBarOptions {
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Force (true) or suppress (false) the animated bar; default: when the stream is a TTY. */
  tty?: boolean;
}

/** Consumes TrainingEvents and draws them; call `stop()` when the run ends (also done on 'done'/'error'). */
export class TrainingProgressBar {
  private readonly stream: NodeJS.WritableStream;
  private readonly tty: boolean;
  private multi: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;
  private lastPlainStep = 0;

  constructor(opts: ProgressBarOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
  }

  /** Renders one event. */
  handle(e: TrainingEvent): void {
    if (!this.tty) return this.plain(e);
    switch (e.type) {
      case 'start':
        this.stop();
        this.line(describeEvent(e));
        this.multi = new cliProgress.MultiBar(
          {
            stream: this.stream as NodeJS.WritableStream,
            format: 'epoch {epoch} [{bar}] {percentage}% | step {value}/{total} | loss {loss} | {ips} img/s | ETA {etaText}',
            hideCursor: true,
            gracefulExit: false,
            clearOnComplete: false,
            fps: 5,
            forceRedraw: true,
            // `tty: true` on a stream that is not a terminal (tests, `script`): draw anyway
            noTTYOutput: true,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar = this.multi.create(e.totalSteps, e.startStep, { epoch: `${e.startEpoch}/${e.epochs}`, loss: '-', ips: '-', etaText: '?' });
        break;
      case 'step':
        this.bar?.update(e.step, {
          epoch: `${e.epoch} ${e.epochStep}/${e.stepsPerEpoch}`,
          loss: fmt(e.losses.total),
          ips: e.imagesPerSec.toFixed(1),
          etaText: formatDuration(e.etaSec ?? Infinity),
        });
        break;
      case 'epoch':
        this.line(describeEvent(e));
        break;
      case 'error':
      case 'done':
        this.stop();
        this.line(describeEvent(e));
        break;
    }
  }

  /** Stops the bar (restores the cursor). Safe to call twice. */
  stop(): void {
    if (this.multi) {
      this.multi.stop();
      this.multi = null;
      this.bar = null;
    }
  }

  private line(text: string): void {
    if (this.multi) {
      this.multi.log(`${text}\n`);
      this.multi.update();
    }
    else this.stream.write(`${text}\n`);
  }

  private plain(e: TrainingEvent): void {
    if (e.type === 'step') {
      const now = Date.now();
      if (now - this.lastPlainStep < 30_000) return;
      this.lastPlainStep = now;
    }
    this.stream.write(`${describeEvent(e)}\n`);
  }
}
