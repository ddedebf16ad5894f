/**
 * `/model use` reaches every worker: a NOTIFY on cvae_model_changed calls onModelChanged with the model name,
 * in a running generation worker too; after a database restart the listener reconnects by itself, says the
 * model may have changed meanwhile (null), and hears the next change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBatchSampler } from '../../src/bot/core/batch-sampler.js';
import { startGenerationWorker } from '../../src/jobs/generation-worker.js';
import { listenForModelChanges, notifyModelChanged } from '../../src/jobs/worker-model-listener.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { FakeSamplers, HashEmbedder, sharpRenderer } from '../bot/core/helpers.js';
import { MemoryRecorder, migratedDatabase } from './worker-helpers.js';

/** Calls of a callback, awaitable one by one. */
class Calls<T> {
  private readonly seen: T[] = [];
  private waiters: ((v: T) => void)[] = [];
  readonly fn = (v: T) => {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.seen.push(v);
  };
  next(): Promise<T> {
    if (this.seen.length) return Promise.resolve(this.seen.shift() as T);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

describe('model-change listener', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  it('reaches a running generation worker', async () => {
    const { pool } = await migratedDatabase(server, 'model_worker');
    const changes = new Calls<string | null>();
    const worker = await startGenerationWorker({
      pool, runBatch: createBatchSampler({ embedder: new HashEmbedder(), samplers: new FakeSamplers() }).runBatch,
      renderer: sharpRenderer, recorder: new MemoryRecorder(), deliveries: {}, onModelChanged: changes.fn,
    });
    try {
      await notifyModelChanged(pool, 'sheep-v2');
      assert.equal(await changes.next(), 'sheep-v2');
    } finally {
      await worker.stop();
      await pool.end();
    }
  });

  it('reconnects after a database restart and hears the next change', async () => {
    const { pool, url } = await migratedDatabase(server, 'model_restart');
    const changes = new Calls<string | null>();
    const listener = listenForModelChanges({ connection: { connectionString: url }, onModelChanged: changes.fn, reconnectDelayMs: 100 });
    try {
      await listener.ready;
      assert.equal(listener.listening(), true);
      await notifyModelChanged(pool, 'before');
      assert.equal(await changes.next(), 'before');
      await server.restart();
      assert.equal(await changes.next(), null, 'after reconnecting: the model may have changed during the outage');
      assert.equal(listener.listening(), true);
      await notifyModelChanged(pool, 'after');
      assert.equal(await changes.next(), 'after');
    } finally {
      await listener.stop();
      await pool.end();
    }
  });
});
