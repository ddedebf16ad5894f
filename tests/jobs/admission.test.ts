import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_WORKER_MESSAGE, decideAdmission, liveThroughput, predictWaitS } from '../../src/jobs/admission.js';

const base = { imagesAhead: 0, images: 1, maxWaitS: 60, unmeasuredImagesPerS: 4 };

test('predicted wait is the images ahead plus this request over the summed throughput of the live workers', () => {
  assert.equal(predictWaitS(10, 2, 4), 3);
  assert.equal(predictWaitS(0, 4, 2), 2);
  assert.equal(predictWaitS(5, 1, 0), Infinity);
  assert.equal(liveThroughput([{ imagesPerS: 3 }, { imagesPerS: 1.5 }], 4), 4.5);
});

test('a worker that has not measured yet counts with the assumed throughput', () => {
  assert.equal(liveThroughput([{ imagesPerS: null }, { imagesPerS: 0 }, { imagesPerS: 2 }], 4), 10);
  const d = decideAdmission({ ...base, imagesAhead: 7, workers: [{ imagesPerS: null }] });
  assert.deepEqual(d, { admit: true, predictedWaitS: 2, imagesPerS: 4 });
});

test('accepted up to the bound, refused politely just past it', () => {
  const workers = [{ imagesPerS: 1 }, { imagesPerS: 1 }]; // 2 images/s
  const at = decideAdmission({ ...base, imagesAhead: 116, images: 4, workers }); // 120 / 2 = 60 s
  assert.equal(at.admit, true);
  assert.equal(at.predictedWaitS, 60);
  const past = decideAdmission({ ...base, imagesAhead: 117, images: 4, workers }); // 60.5 s
  assert.equal(past.admit, false);
  if (past.admit) return;
  assert.equal(past.reason, 'too-long');
  assert.match(past.message, /about 61 s/);
  assert.match(past.message, /60 s/);
  assert.match(past.message, /try again/);
});

test('a lone request bigger than the bound on a slow worker is refused too', () => {
  const d = decideAdmission({ ...base, imagesAhead: 0, images: 4, maxWaitS: 10, workers: [{ imagesPerS: 0.2 }] });
  assert.equal(d.admit, false);
});

test('no live worker: refused with the message that says so, whatever the queue', () => {
  const d = decideAdmission({ ...base, workers: [] });
  assert.equal(d.admit, false);
  if (d.admit) return;
  assert.equal(d.reason, 'no-worker');
  assert.equal(d.message, NO_WORKER_MESSAGE);
  // Workers that report no throughput at all, with none assumed, cannot draw anything either.
  const zero = decideAdmission({ ...base, unmeasuredImagesPerS: 0, workers: [{ imagesPerS: 0 }] });
  assert.equal(zero.admit, false);
  if (!zero.admit) assert.equal(zero.reason, 'no-worker');
});
