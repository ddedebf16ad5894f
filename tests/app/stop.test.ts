/**
 * Graceful stop of the app in-process: it stops taking requests (health says stopping, new commands get
 * 503), fails the queued generations with a message, lets the running batch finish, then closes the port.
 * The sampler is held so that the queue state is known when stop() starts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import type { LoadedSampler, SamplerProvider } from '../../src/bot/core/deps.js';
import { addTinyModel, request, startTestApp, tempDataDir, waitFor } from './helpers.js';

/** Sampler calls wait for `release()`. */
class HeldSamplers implements SamplerProvider {
  sampling = 0;
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => { this.open = r; });
  constructor(private readonly inner: SamplerProvider) {}
  release(): void {
    this.open();
  }
  async get(name?: string): Promise<LoadedSampler> {
    const s = await this.inner.get(name);
    return { ...s, sample: async (e, seeds) => { this.sampling++; await this.gate; return s.sample(e, seeds); } };
  }
}

describe('app stop', () => {
  it('fails queued generations with a message, finishes the running one, refuses new work, closes the port', async () => {
    const dataDir = tempDataDir('web-stop-');
    await addTinyModel(dataDir, 'tiny-stop');
    let held!: HeldSamplers;
    const app = await startTestApp(dataDir, {}, { decorateSamplers: (p) => (held = new HeldSamplers(p)) });
    try {
      const ids: string[] = [];
      for (const prompt of ['one', 'two', 'three', 'four']) {
        const r = await request(app, 'POST', '/api/command', { text: `/imagine ${prompt}` });
        assert.equal(r.status, 202);
        ids.push(r.json.messageId);
      }
      await waitFor(() => held.sampling > 0 && app.runtime()!.core.queue.stats().waiting === 3, 'one running, three waiting');
      const log = app.playground!.log;

      const stopped = app.stop();
      const failed = await waitFor(() => {
        const ms = ids.slice(1).map((id) => log.get(id)!);
        return ms.every((m) => m.state === 'failed') ? ms : null;
      }, 'the queued ones to fail');
      for (const m of failed) assert.match(m.text, /shutting down; please try again/);
      assert.equal(log.get(ids[0])!.state, 'queued', 'the running one is still going');

      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.status, 503);
      assert.equal(health.json.status, 'stopping');
      const refused = await request(app, 'POST', '/api/command', { text: '/imagine five' });
      assert.equal(refused.status, 503);
      assert.match(refused.json.error, /shutting down/);

      held.release();
      await stopped;
      assert.equal(log.get(ids[0])!.state, 'done', 'the running generation finished');
      await assert.rejects(fetch(`${app.url}/healthz`), 'the port is closed');
      assert.equal(app.runtime()!.store.isOpen(), false, 'the store (SQLite) is closed');
    } finally {
      held?.release();
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
