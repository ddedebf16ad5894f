import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointSamplerProvider, type CheckpointSampler } from '../../../src/bot/core/sampler-provider.js';
import { UserError } from '../../../src/bot/core/errors.js';
import type { ServedModelMeta } from '../../../src/bot/core/deps.js';

/** A registry whose entries (and their metadata, as re-read from disk) the test changes. */
function harness() {
  const metas = new Map<string, ServedModelMeta>();
  const loads: string[] = [];
  const disposed: string[] = [];
  const gates: (() => void)[] = [];
  let hold = false;
  const registry = {
    async active() { return null; },
    async resolve(name: string) {
      const meta = metas.get(name);
      if (!meta) throw new UserError(`no model ${name}`);
      return { name, dir: `/ckpt/${name}`, meta: { ...meta } };
    },
  };
  const load = async (dir: string): Promise<CheckpointSampler> => {
    const label = `${dir}@${loads.filter((d) => d.startsWith(dir)).length}`;
    loads.push(label);
    return {
      meta: { clipModel: 'clip-a', resolution: 8, preset: 'tiny' },
      async sample(embeddings) {
        if (hold) await new Promise<void>((resolve) => gates.push(resolve));
        return embeddings.map(() => new Uint8Array([loads.indexOf(label)]));
      },
      dispose() { disposed.push(label); },
    };
  };
  const provider = new CheckpointSamplerProvider({ registry, load, clipModel: 'clip-a', maxLoaded: 1 });
  return { metas, loads, disposed, provider, hold: (on: boolean) => { hold = on; }, release: () => gates.splice(0).forEach((g) => g()) };
}

const meta = (createdAt: string, step: number): ServedModelMeta => ({ clipModel: 'clip-a', resolution: 8, preset: 'tiny', createdAt, step });

test('a checkpoint is loaded once while it is unchanged', async () => {
  const h = harness();
  h.metas.set('m', meta('2026-01-01T00:00:00Z', 10));
  await h.provider.get('m');
  await h.provider.get('m');
  assert.deepEqual(h.loads, ['/ckpt/m@0']);
});

test('a checkpoint re-saved in place is loaded again and the stale load disposed', async () => {
  const h = harness();
  h.metas.set('m', meta('2026-01-01T00:00:00Z', 10));
  const first = await h.provider.get('m');
  assert.deepEqual(await first.sample([new Float32Array(1)], [1]), [new Uint8Array([0])]);
  h.metas.set('m', meta('2026-01-01T00:05:00Z', 20)); // the run saved a better epoch into the same folder
  const second = await h.provider.get('m');
  assert.deepEqual(h.loads, ['/ckpt/m@0', '/ckpt/m@1']);
  assert.deepEqual(await second.sample([new Float32Array(1)], [1]), [new Uint8Array([1])], 'serves the new weights');
  assert.deepEqual(h.disposed, ['/ckpt/m@0']);
});

test('a sampler evicted while a batch runs on it is disposed only after the batch', async () => {
  const h = harness();
  h.metas.set('a', meta('t1', 1));
  h.metas.set('b', meta('t1', 1));
  const a = await h.provider.get('a');
  h.hold(true);
  const running = a.sample([new Float32Array(1)], [1]);
  await h.provider.get('b'); // maxLoaded 1: evicts a
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.disposed, [], 'not disposed under a running batch');
  h.release();
  assert.deepEqual(await running, [new Uint8Array([0])]);
  assert.deepEqual(h.disposed, ['/ckpt/a@0']);
});

test('a checkpoint trained with another CLIP is refused with a message naming both', async () => {
  const h = harness();
  h.metas.set('m', { ...meta('t', 1), clipModel: 'clip-b' });
  await assert.rejects(h.provider.get('m'), (err: Error) => err instanceof UserError && /clip-b/.test(err.message) && /clip-a/.test(err.message));
  assert.deepEqual(h.loads, []);
});
