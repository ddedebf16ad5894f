import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImagineQueue } from '../../../src/bot/core/queue.js';

describe('ImagineQueue', () => {
  it('bounds the global queue, keeps batch keys apart, caps batch size, and rejects waiting jobs on close', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    const calls: { key: string; payloads: number[] }[] = [];
    const q = new ImagineQueue<number, number>(async (payloads, key) => {
      calls.push({ key, payloads });
      await gate;
      return payloads.map((p) => p * 10);
    }, { batchWindowMs: 5, maxWaiting: 3, maxBatchSize: 4 });
    const first = q.submit({ userKey: 'a', batchKey: 'm1', size: 1, payload: 1 });
    while (calls.length === 0) await new Promise((r) => setTimeout(r, 2));
    const waiting = [
      q.submit({ userKey: 'b', batchKey: 'm2', size: 1, payload: 2 }),
      q.submit({ userKey: 'c', batchKey: 'm1', size: 3, payload: 3 }),
      q.submit({ userKey: 'd', batchKey: 'm1', size: 2, payload: 4 }),
    ];
    await assert.rejects(q.submit({ userKey: 'e', batchKey: 'm1', size: 1, payload: 5 }), /very busy/);
    assert.deepEqual(q.stats(), { waiting: 3, running: 1 });
    open();
    assert.deepEqual(await Promise.all([first, ...waiting]), [10, 20, 30, 40]);
    // The oldest job's key goes first; same-key jobs join it while they fit in maxBatchSize images.
    assert.deepEqual(calls, [{ key: 'm1', payloads: [1] }, { key: 'm2', payloads: [2] }, { key: 'm1', payloads: [3] }, { key: 'm1', payloads: [4] }]);

    let hold!: () => void;
    const q2 = new ImagineQueue<number, number>(async (p) => { await new Promise<void>((r) => { hold = r; }); return p; }, { batchWindowMs: 1 });
    const running = q2.submit({ userKey: 'a', batchKey: '', size: 1, payload: 1 });
    while (!hold) await new Promise((r) => setTimeout(r, 2));
    const queued = q2.submit({ userKey: 'b', batchKey: '', size: 1, payload: 2 });
    const closing = q2.close();
    await assert.rejects(queued, /shutting down/);
    await assert.rejects(q2.submit({ userKey: 'c', batchKey: '', size: 1, payload: 3 }), /shutting down/);
    hold();
    assert.equal(await running, 1);
    await closing;
  });
});
