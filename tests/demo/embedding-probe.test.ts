import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jointClass, nearestLabels, scoreJoint } from '../../scripts/embedding-probe.js';

test('joint classes are distinct for every sky and ground, and score sky and ground separately', () => {
  const classes = new Set<number>();
  for (const sky of ['blue', 'cloudy', 'sunset', 'night']) for (const ground of ['grass', 'snow', 'field', 'sand']) classes.add(jointClass(sky, ground));
  assert.deepEqual([...classes].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
  const prompts = [
    { prompt: 'a', sky: 'night', ground: 'snow' },
    { prompt: 'b', sky: 'blue', ground: 'sand' },
    { prompt: 'c', sky: 'sunset', ground: 'grass' },
    { prompt: 'd', sky: 'sunset', ground: 'field' },
  ] as const;
  const predicted = [jointClass('night', 'snow'), jointClass('blue', 'grass'), jointClass('night', 'grass'), jointClass('night', 'sand')];
  assert.deepEqual(scoreJoint(predicted, prompts), { sky: 0.5, ground: 0.5, both: 0.25 });
});

test('nearestLabels picks the row with the largest cosine', () => {
  const rows = Float32Array.from([1, 0, 0, 1, Math.SQRT1_2, Math.SQRT1_2]);
  const queries = [Float32Array.from([0.9, 0.1]), Float32Array.from([0.1, 0.9]), Float32Array.from([0.7, 0.72])];
  assert.deepEqual(nearestLabels(rows, [10, 11, 12], queries, 2), [10, 11, 12]);
});
