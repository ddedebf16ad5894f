/**
 * Where a training run stands, as structured data: the training runner turns the trainer's typed events into
 * {@link TrainingProgress} updates and {@link TrainingImage}s and hands them to the sink of the channel the run
 * was started from. Text is made only at the edge: the adapters (Discord, Slack, the playground page) render
 * with {@link formatTrainingProgress} and {@link trainingImageCaption}; /metrics reads `fraction`.
 */
import type { LossTerms } from '../../model/loss.js';
import type { DoneReason } from '../../training/events.js';

interface RunRef {
  runId: string;
  preset: string;
  /** Target epochs of the run, when known. */
  epochs: number | null;
  /** Overall progress 0..1 (the fraction of the run's optimizer steps or epochs done); null: unknown. */
  fraction: number | null;
}

/** The run's child process is up and the trainer has set up the data (or not yet: sizes unknown). */
export interface TrainingStarting extends RunRef {
  state: 'starting';
  resolution: number | null;
  trainSize: number | null;
}

/** An optimizer step finished. */
export interface TrainingStepping extends RunRef {
  state: 'training';
  epoch: number;
  /** Global step (1-based) and the run's total. */
  step: number;
  totalSteps: number;
  /** Loss terms of this step's batch. */
  losses: LossTerms;
  imagesPerSec: number;
  /** Seconds left (training steps only); null while unknown. */
  etaSec: number | null;
}

/** An epoch finished: validated and checkpointed. */
export interface TrainingEpochDone extends RunRef {
  state: 'epoch-done';
  epoch: number;
  train: LossTerms;
  val: LossTerms;
  /** This epoch is the best so far. */
  best: boolean;
}

/** The run ended without an error: completed, stopped early, or stopped by an admin. */
export interface TrainingFinished extends RunRef {
  state: 'finished';
  reason: DoneReason;
  epochsCompleted: number;
  bestValLoss: number | null;
  /** The registry name of its checkpoint; null when registering failed. */
  registered: string | null;
}

/** The run failed (crash, bad data...). */
export interface TrainingFailed extends RunRef {
  state: 'failed';
  message: string;
}

export type TrainingProgress = TrainingStarting | TrainingStepping | TrainingEpochDone | TrainingFinished | TrainingFailed;

/** An image of an epoch: its sample grid or the loss curve of the run so far. */
export interface TrainingImage {
  kind: 'samples' | 'loss-curve';
  epoch: number;
  epochs: number;
  valLoss: number;
  best: boolean;
  png: Buffer;
}

/** True once the run has ended (the last update of a run). */
export function trainingEnded(p: TrainingProgress): p is TrainingFinished | TrainingFailed {
  return p.state === 'finished' || p.state === 'failed';
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

/** The status message of a run (Markdown-ish: backticks around names; the adapters convert it for their platform). */
export function formatTrainingProgress(p: TrainingProgress): string {
  const run = `Training run \`${p.runId}\``;
  switch (p.state) {
    case 'starting':
      return p.resolution === null
        ? `${run} is starting…`
        : `${run} (preset \`${p.preset}\`, ${p.resolution} px, ${p.trainSize} training images): starting ${p.epochs} epoch(s)…`;
    case 'training':
      return [
        `${run}: epoch ${p.epoch}${p.epochs ? `/${p.epochs}` : ''}, step ${p.step}/${p.totalSteps}`,
        progressBar(p.step / Math.max(1, p.totalSteps)),
        `${formatLosses('batch', p.losses)} · ${p.imagesPerSec.toFixed(1)} img/s · ETA ${p.etaSec == null ? 'unknown' : formatDuration(p.etaSec)}`,
      ].join('\n');
    case 'epoch-done':
      return `${run}: epoch ${p.epoch}/${p.epochs} done. ${formatLosses('train', p.train)}; ${formatLosses('val', p.val)}.`;
    case 'finished': {
      const how = p.reason === 'completed' ? 'finished' : p.reason === 'early-stop' ? 'stopped early (no more improvement)' : 'was stopped';
      const loss = p.bestValLoss != null ? `, best val loss ${p.bestValLoss.toFixed(1)}` : '';
      const served = p.registered ? ` Checkpoint registered as \`${p.registered}\`; serve it with \`/model use ${p.registered}\`.` : '';
      return `${run} ${how} after ${p.epochsCompleted} epoch(s)${loss}.${served}`;
    }
    case 'failed':
      return `${run} failed: ${p.message}`;
  }
}

/** File name of a training image, e.g. `samples-epoch-3.png`, `loss-epoch-3.png`. */
export function trainingImageName(img: Pick<TrainingImage, 'kind' | 'epoch'>): string {
  return `${img.kind === 'samples' ? 'samples' : 'loss'}-epoch-${img.epoch}.png`;
}

/** `Epoch 3/10: val loss 812.3 (best so far): samples` */
export function trainingImageCaption(img: Omit<TrainingImage, 'png'>): string {
  return `Epoch ${img.epoch}/${img.epochs}: val loss ${img.valLoss.toFixed(1)}${img.best ? ' (best so far)' : ''}: ${img.kind === 'samples' ? 'samples' : 'loss curve'}`;
}
