/**
 * `/imagine ... model:NAME`: a non-admin may pick only the served model or one an admin has published
 * (`/model publish NAME`, or served once with `/model use`); loading a checkpoint (and its ONNX export)
 * happens before the request joins the queue, a bounded number at a time, so a slow load never stalls the
 * queue for everyone else.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createBotCore, type BotCoreHandle } from '../../../src/bot/core/core.js';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import { CheckpointSamplerProvider, type CheckpointSampler } from '../../../src/bot/core/sampler-provider.js';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { openSqliteStore, type BotStore } from '../../../src/bot/core/store/index.js';
import type { CatalogEntry, Embedder, ImageRenderer, ModelCatalog, ServedModelMeta } from '../../../src/bot/core/deps.js';
import type { Actor } from '../../../src/bot/core/types.js';
import { isUserError } from '../../../src/errors.js';
import { parseModelText } from '../../../src/bot/core/command-text.js';
import { tempDataDir } from '../../app/helpers.js';

const admin: Actor = { platform: 'slack', workspaceId: 'T', channelId: 'C', userId: 'UADMIN' };
const alice: Actor = { platform: 'slack', workspaceId: 'T', channelId: 'C', userId: 'UALICE' };
const bob: Actor = { platform: 'slack', workspaceId: 'T', channelId: 'C', userId: 'UBOB' };
const META: ServedModelMeta = { clipModel: 'clip', resolution: 2, preset: 'tiny' };

const embedder: Embedder = { modelId: 'clip', embedTexts: async (t) => t.map(() => new Float32Array([1, 0])) };
const renderer: ImageRenderer = { grid: async () => Buffer.from('grid'), image: async () => Buffer.from('img') };

class Catalog implements ModelCatalog {
  active = 'served';
  readonly names = ['served', 'draft', 'slow', 'other'];
  async list(): Promise<CatalogEntry[]> { return this.names.map((name) => ({ name, dir: `/ckpt/${name}`, meta: META, active: name === this.active })); }
  async register() {}
  async activate(name: string) { this.active = name; }
  async resolve(name: string) {
    if (!this.names.includes(name)) throw new (await import('../../../src/errors.js')).UserError(`no model ${name}`);
    return { name, dir: `/ckpt/${name}`, meta: META };
  }
}

describe('published models and off-queue loading', () => {
  let dir: string;
  let store: BotStore;
  let core: BotCoreHandle;
  let catalog: Catalog;
  let loading: number;
  let maxLoading: number;
  const slowLoads = new Map<string, () => void>();
  const loaded: string[] = [];

  beforeEach(() => {
    dir = tempDataDir('published-');
    store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    catalog = new Catalog();
    loading = 0;
    maxLoading = 0;
    loaded.length = 0;
    const samplers = new CheckpointSamplerProvider({
      registry: { active: async () => ({ name: catalog.active, dir: `/ckpt/${catalog.active}`, meta: META }), resolve: (n) => catalog.resolve(n) },
      clipModel: 'clip',
      load: async (d): Promise<CheckpointSampler> => {
        const name = path.basename(d);
        loading++;
        maxLoading = Math.max(maxLoading, loading);
        try {
          if (name === 'slow') await new Promise<void>((r) => slowLoads.set(name, r));
          else await new Promise((r) => setTimeout(r, 20));
          loaded.push(name);
        } finally {
          loading--;
        }
        return { meta: META, dispose: () => {}, sample: async (e) => e.map(() => new Uint8Array(12)) };
      },
    });
    core = createBotCore({
      store, embedder, samplers, catalog, renderer, admins: new AdminPolicy(['slack:UADMIN']),
      training: new TrainingRunner({ runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'lock') }),
      queue: { batchWindowMs: 5 },
    });
  });
  afterEach(async () => {
    for (const open of slowLoads.values()) open();
    slowLoads.clear();
    await core.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lets a non-admin pick only the served model or a published one', async () => {
    assert.equal((await core.imagine(alice, { prompt: 'cows' })).model, 'served');
    assert.equal((await core.imagine(alice, { prompt: 'cows', model: 'served' })).model, 'served');
    await assert.rejects(core.imagine(alice, { prompt: 'cows', model: 'draft' }), (err: Error) => isUserError(err) && /`draft` is not published/.test(err.message));
    assert.equal((await core.imagine(admin, { prompt: 'cows', model: 'draft' })).model, 'draft', 'admins may try any model');
    const adminDraft = await core.imagine(admin, { prompt: 'sheep', model: 'draft' });
    await assert.rejects(core.reroll(bob, adminDraft.generationId), /not published/, 'nor through the buttons of an admin\'s generation');

    await assert.rejects(core.modelPublish(alice, 'draft', true), /only bot admins/);
    assert.match(await core.modelPublish(admin, 'draft', true), /published/);
    assert.equal((await core.imagine(alice, { prompt: 'cows', model: 'draft' })).model, 'draft');
    assert.equal((await core.reroll(bob, adminDraft.generationId)).model, 'draft');
    assert.match(await core.modelPublish(admin, 'draft', false), /no longer/);
    await assert.rejects(core.imagine(alice, { prompt: 'cows', model: 'draft' }), /not published/);

    await core.modelUse(admin, 'other');
    await core.modelUse(admin, 'served');
    assert.equal((await core.imagine(alice, { prompt: 'cows', model: 'other' })).model, 'other', 'a model an admin served once is published');
    assert.match(await core.modelList(admin), /`other`.*published/);
  });

  it('loads a model before the request joins the queue, so a slow load does not stall other requests', async () => {
    await core.imagine(alice, { prompt: 'warm up' }); // the served model is loaded
    let slowDone = false;
    const slow = core.imagine(admin, { prompt: 'cows', model: 'slow' }).then((r) => { slowDone = true; return r; });
    while (!slowLoads.has('slow')) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    const quick = await core.imagine(alice, { prompt: 'sheep' });
    assert.equal(quick.model, 'served');
    assert.equal(slowDone, false, 'answered while the slow model was still loading');
    assert.ok(Date.now() - t0 < 2_000);
    slowLoads.get('slow')!();
    assert.equal((await slow).model, 'slow');
  });

  it('loads at most one checkpoint at a time', async () => {
    await Promise.all(['draft', 'other', 'served'].map((model) => core.imagine(admin, { prompt: `p ${model}`, model })));
    assert.equal(maxLoading, 1);
  });

  it('parses /model publish and unpublish', () => {
    assert.deepEqual(parseModelText('publish run-1'), { verb: 'publish', name: 'run-1' });
    assert.deepEqual(parseModelText('unpublish run-1'), { verb: 'unpublish', name: 'run-1' });
  });
});
