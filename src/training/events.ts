/**
 * Typed progress events of a training run. The trainer emits them through `onEvent`; the CLI renders them
 * as a progress bar or prints them as JSON lines (`train --json-events`), and the bot's training child
 * process parses those lines. Every event is plain JSON data (no typed arrays, no tensors).
 *
 * Numbering: `epoch` is 1-based (the epoch being run, or just finished); `step` is the 1-based global
 * optimizer step (steps completed so far, over the whole run including resumed parts).
 */
import type { LossTerms } from '../model/loss.js';

/** The run is set up: model built (or restored) and the data sizes are known. */
export interface StartEvent {
  type: 'start';
  preset: string;
  resolution: number;
  conditioning: 'image' | 'text';
  /** Target number of epochs of the whole run. */
  epochs: number;
  /** Epoch (1-based) the run starts at: 1 for a fresh run, later when resumed. */
  startEpoch: number;
  /** Global step the run starts after (0 for a fresh run). */
  startStep: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  clipNorm: number | null;
  patience: number;
  trainSize: number;
  valSize: number;
  stepsPerEpoch: number;
  /** Global step count at which the run would end if it is not stopped early. */
  totalSteps: number;
  trainableParams: number;
  datasetFingerprint: string;
  resumed: boolean;
  outDir: string;
  /** TensorFlow.js backend doing the work (`tensorflow`, `wasm`, `cpu`). */
  backend: string;
}

/** One optimizer step finished. */
export interface StepEvent {
  type: 'step';
  epoch: number;
  /** Global step (1-based). */
  step: number;
  totalSteps: number;
  /** Step within the epoch (1-based) and the epoch's step count. */
  epochStep: number;
  stepsPerEpoch: number;
  /** Loss terms of this step's batch. */
  losses: LossTerms;
  /** Smoothed training throughput. */
  imagesPerSec: number;
  /** Estimated seconds until `totalSteps` (training steps only; validation is not counted); null while unknown. */
  etaSec: number | null;
}

/** An epoch finished: validated, checkpointed, artefacts written. */
export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  /** Mean of the epoch's training step losses (weighted by batch size). */
  train: LossTerms;
  /** Validation loss (training: false) over the whole val split. */
  val: LossTerms;
  /** True when this epoch is the new best (lowest `val.total`); `best/` was updated. */
  best: boolean;
  bestValLoss: number;
  bestEpoch: number;
  /** Epochs since the best one (early stopping compares this with `patience`). */
  epochsSinceBest: number;
  /** Sample grid of this epoch (fixed embeddings and seeds), a PNG file. */
  samplePng: string;
  /** Loss curve of the run so far, a PNG file. */
  lossCurvePng: string;
  /** The `last/` checkpoint folder, just written. */
  checkpointDir: string;
  durationSec: number;
}

export type DoneReason = 'completed' | 'early-stop' | 'stopped';

/** The run ended without an error. */
export interface DoneEvent {
  type: 'done';
  reason: DoneReason;
  /** Best validation loss of the run (null when no epoch finished). */
  bestValLoss: number | null;
  bestEpoch: number | null;
  /** Epochs completed (whole run, resumed parts included). */
  epochsCompleted: number;
  step: number;
  /** The checkpoint to use: `best/` when an epoch finished, else `last/`. */
  checkpointDir: string;
  /** The `last/` checkpoint folder (resume point). */
  lastCheckpointDir: string;
}

/** The run failed; the error is also thrown by `train()`. */
export interface ErrorEvent {
  type: 'error';
  message: string;
}

export type TrainingEvent = StartEvent | StepEvent | EpochEvent | DoneEvent | ErrorEvent;

/** Serialises an event as one JSON line (no trailing newline). */
export function formatEventLine(event: TrainingEvent): string {
  return JSON.stringify(event);
}

const TYPES = new Set(['start', 'step', 'epoch', 'done', 'error']);

/**
 * Parses one line of `train --json-events` output. Returns null for lines that are not training events
 * (blank lines, stray output), so a reader can skip them.
 */
export function parseEventLine(line: string): TrainingEvent | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return null;
  try {
    const value = JSON.parse(trimmed) as { type?: unknown };
    if (value && typeof value === 'object' && typeof value.type === 'string' && TYPES.has(value.type)) {
      return value as TrainingEvent;
    }
  } catch {
    // not JSON: not an event
  }
  return null;
}
