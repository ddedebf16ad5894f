/** Best-epoch selection and early stopping, as pure functions over the validation losses. */

/** What the run knows about its best epoch so far. */
export interface BestState {
  /** Lowest validation loss seen (null before the first epoch). */
  bestValLoss: number | null;
  /** Epoch (1-based) of `bestValLoss`. */
  bestEpoch: number | null;
  /** Epochs finished since the best one (0 right after an improvement). */
  epochsSinceBest: number;
}

export const INITIAL_BEST_STATE: BestState = Object.freeze({ bestValLoss: null, bestEpoch: null, epochsSinceBest: 0 });

/**
 * Folds one finished epoch's validation loss into the state. An epoch improves when its loss is finite and
 * lower than the best by more than `minDelta` (default 0); a NaN or infinite loss never improves.
 */
export function updateBest(state: BestState, epoch: number, valLoss: number, minDelta = 0): { state: BestState; improved: boolean } {
  const improved = Number.isFinite(valLoss) && (state.bestValLoss === null || valLoss < state.bestValLoss - minDelta);
  if (improved) return { improved, state: { bestValLoss: valLoss, bestEpoch: epoch, epochsSinceBest: 0 } };
  return { improved, state: { ...state, epochsSinceBest: state.epochsSinceBest + 1 } };
}

/**
 * True when training should stop: `patience` epochs in a row brought no improvement.
 * `patience` 0 or less (or not finite) turns early stopping off.
 */
export function shouldStopEarly(state: BestState, patience: number): boolean {
  return Number.isFinite(patience) && patience > 0 && state.epochsSinceBest >= patience;
}

/** Rebuilds the state from a run's history (epochs in order), e.g. when resuming. */
export function bestStateFromHistory(history: readonly { epoch: number; val: { total: number } }[], minDelta = 0): BestState {
  let state: BestState = INITIAL_BEST_STATE;
  for (const h of history) state = updateBest(state, h.epoch, h.val.total, minDelta).state;
  return state;
}
