import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestStateFromHistory, INITIAL_BEST_STATE, shouldStopEarly, updateBest } from '../../src/training/early-stopping.js';

test('updateBest tracks the lowest loss and counts epochs without improvement', () => {
  let s = INITIAL_BEST_STATE;
  const seq = [5, 4, 4.5, 3, 3, 3.5];
  const improved: boolean[] = [];
  seq.forEach((v, i) => {
    const r = updateBest(s, i + 1, v);
    improved.push(r.improved);
    s = r.state;
  });
  assert.deepEqual(improved, [true, true, false, true, false, false]);
  assert.deepEqual(s, { bestValLoss: 3, bestEpoch: 4, epochsSinceBest: 2 });
});

test('NaN never becomes the best; minDelta requires a real improvement', () => {
  let r = updateBest(INITIAL_BEST_STATE, 1, Number.NaN);
  assert.equal(r.improved, false);
  assert.equal(r.state.bestValLoss, null);
  r = updateBest(r.state, 2, 10);
  assert.equal(r.improved, true);
  assert.equal(updateBest(r.state, 3, 9.95, 0.1).improved, false);
  assert.equal(updateBest(r.state, 3, 9.8, 0.1).improved, true);
});

test('shouldStopEarly triggers after `patience` epochs without improvement; 0 disables', () => {
  const s = { bestValLoss: 1, bestEpoch: 1, epochsSinceBest: 2 };
  assert.equal(shouldStopEarly(s, 3), false);
  assert.equal(shouldStopEarly(s, 2), true);
  assert.equal(shouldStopEarly({ ...s, epochsSinceBest: 100 }, 0), false);
});

test('bestStateFromHistory replays a history', () => {
  const h = [4, 2, 3, 3].map((total, i) => ({ epoch: i + 1, val: { total } }));
  assert.deepEqual(bestStateFromHistory(h), { bestValLoss: 2, bestEpoch: 2, epochsSinceBest: 2 });
  assert.deepEqual(bestStateFromHistory([]), INITIAL_BEST_STATE);
});
