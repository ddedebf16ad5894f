import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBotCore, type BotCoreHandle } from '../../../src/bot/core/core.js';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import { NotAllowedError, UserError } from '../../../src/bot/core/errors.js';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { openSqliteStore, type BotStore } from '../../../src/bot/core/store/index.js';
import { perturbEmbedding } from '../../../src/bot/core/variations.js';
import { deferred, FakeCatalog, FakeSamplers, HashEmbedder, sharpRenderer } from './helpers.js';
import type { Actor } from '../../../src/bot/core/types.js';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const alice: Actor = { platform: 'discord', workspaceId: 'g1', channelId: 'c1', userId: 'alice' };
const bob: Actor = { ...alice, userId: 'bob' };
const admin: Actor = { ...alice, userId: 'boss' };

describe('bot core', () => {
  let dir: string;
  let store: BotStore;
  let samplers: FakeSamplers;
  let catalog: FakeCatalog;
  let embedder: HashEmbedder;
  let core: BotCoreHandle;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'core-'));
    store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    samplers = new FakeSamplers({ m1: 'test-clip', m2: 'test-clip', old: 'other-clip' });
    catalog = new FakeCatalog(samplers);
    embedder = new HashEmbedder();
    core = createBotCore({
      store, embedder, samplers, catalog, renderer: sharpRenderer,
      admins: new AdminPolicy(['discord:boss'], { platformAdminGuilds: ['g1'] }),
      training: new TrainingRunner({ runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'lock') }),
      queue: { batchWindowMs: 20 },
    });
  });
  afterEach(async () => {
    await core.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('imagine renders PNGs, records the generation, and is reproducible by seed', async () => {
    const r = await core.imagine(alice, { prompt: '  cows <@123> in\nsnow ', count: 3, seed: 7 });
    assert.equal(r.prompt, 'cows in snow');
    assert.deepEqual(r.seeds, [7, 8, 9]);
    assert.equal(r.model, 'm1');
    assert.equal(r.images.length, 3);
    assert.deepEqual(r.grid.subarray(0, 8), PNG);
    assert.match(r.text, /cows in snow/);
    assert.match(r.text, /seeds 7–9/);
    assert.match(r.text, /m1/);
    const row = (await store.generations.get(r.generationId))!;
    assert.equal(row.userId, 'alice');
    assert.deepEqual(row.seeds, [7, 8, 9]);
    assert.equal(row.clipModel, 'test-clip');
    const again = await core.imagine(bob, { prompt: 'cows in snow', count: 3, seed: 7 });
    assert.ok(again.grid.equals(r.grid));
    assert.notEqual(again.generationId, r.generationId);
  });

  it('batches requests of different users that arrive together into one sampler call', async () => {
    const results = await Promise.all([
      core.imagine(alice, { prompt: 'sheep', seed: 1 }),
      core.imagine(bob, { prompt: 'cows', seed: 2, count: 2 }),
      core.imagine({ ...alice, userId: 'carol' }, { prompt: 'grass', seed: 3 }),
    ]);
    assert.equal(samplers.calls.length, 1);
    assert.deepEqual(samplers.calls[0].seeds, [1, 2, 3, 3]);
    assert.deepEqual(results.map((r) => r.seeds), [[1], [2, 3], [3]]);
    // Embeddings are batched and cached.
    assert.deepEqual(embedder.calls, [['sheep', 'cows', 'grass']]);
  });

  it('refuses politely beyond 1 running + 3 waiting per user, and reports queue positions', async () => {
    let open!: () => void;
    samplers.gate = new Promise((r) => { open = r; });
    const first = core.imagine(alice, { prompt: 'a', seed: 1 });
    await samplers.waitForCalls(1); // the first batch is running
    const positions: number[][] = [[], [], []];
    const queued = [0, 1, 2].map(() => deferred());
    const waiting = [0, 1, 2].map((i) => core.imagine(alice, { prompt: `w${i}`, seed: 10 + i }, {
      onQueued: (p) => { positions[i].push(p); queued[i].resolve(); },
    }));
    await assert.rejects(core.imagine(alice, { prompt: 'too many' }), (e: unknown) => e instanceof UserError && /limit is 1 running and 3 waiting/.test(e.message));
    const bobs = core.imagine(bob, { prompt: 'bob is fine', seed: 5 });
    await Promise.all(queued.map((q) => q.promise));
    assert.deepEqual(positions.map((p) => p[0]), [1, 2, 3]);
    open();
    const all = await Promise.all([first, ...waiting, bobs]);
    assert.deepEqual(all.map((r) => [r.prompt, r.seeds]), [['a', [1]], ['w0', [10]], ['w1', [11]], ['w2', [12]], ['bob is fine', [5]]]);
    assert.equal((await store.generations.list()).filter((g) => g.userId === 'alice').length, 4, 'the refused request was never generated');
    // After the first batch, alice's waiting jobs run one per batch (1 running per user); bob joins the second.
    assert.deepEqual(samplers.calls.map((c) => c.seeds), [[1], [10, 5], [11], [12]]);
    assert.deepEqual(positions[2], [3, 2, 1]);
  });

  it('rejects bad prompts, counts and seeds with helpful messages', async () => {
    await assert.rejects(core.imagine(alice, { prompt: '   ' }), /describe the image/);
    await assert.rejects(core.imagine(alice, { prompt: '<@123> <#456> 🐄🐑 ' }), /only mentions or emoji/);
    await assert.rejects(core.imagine(alice, { prompt: 'x'.repeat(501) }), /501 characters.*500 or fewer/);
    await assert.rejects(core.imagine(alice, { prompt: 'ok', count: 9 }), /from 1 to 4/);
    await assert.rejects(core.imagine(alice, { prompt: 'ok', seed: -1 }), /seed must be/);
    await assert.rejects(core.imagine(alice, { prompt: 'ok', model: '../etc/passwd' }), /Model names use/);
    assert.equal(samplers.calls.length, 0);
  });

  it('reroll changes seeds; variations keep seeds but change the images slightly', async () => {
    const r = await core.imagine(alice, { prompt: 'cow', count: 2, seed: 100 });
    const rr = await core.reroll(bob, r.generationId);
    assert.equal(rr.prompt, 'cow');
    assert.notDeepEqual(rr.seeds, r.seeds);
    const v = await core.variations(bob, r.generationId);
    assert.deepEqual(v.seeds, r.seeds);
    assert.ok(!v.grid.equals(r.grid));
    assert.equal((await store.generations.get(v.generationId))!.parentId, r.generationId);
    assert.equal((await store.generations.get(v.generationId))!.kind, 'variations');
    const single = await core.singleImage(r.generationId, 1);
    assert.ok(single.png.equals(r.images[1]));
    assert.match(single.text, /seed 101/);
    await assert.rejects(core.singleImage(r.generationId, 5), /images 1 to 2/);
    await assert.rejects(core.reroll(alice, 'nope'), /cannot find that generation/);
  });

  it('reroll and variations report their queue position while they wait', async () => {
    const r = await core.imagine(alice, { prompt: 'cow', seed: 1 });
    let open!: () => void;
    samplers.gate = new Promise((res) => { open = res; });
    const busy = core.imagine(alice, { prompt: 'busy', seed: 2 });
    await samplers.waitForCalls(2); // that batch is running
    const positions: Record<string, number[]> = { reroll: [], variations: [] };
    const queued = { reroll: deferred(), variations: deferred() };
    const reroll = core.reroll(bob, r.generationId, { onQueued: (p) => { positions.reroll.push(p); queued.reroll.resolve(); } });
    const variations = core.variations({ ...bob, userId: 'carol' }, r.generationId, {
      onQueued: (p) => { positions.variations.push(p); queued.variations.resolve(); },
    });
    await Promise.all([queued.reroll.promise, queued.variations.promise]);
    assert.deepEqual(positions, { reroll: [1], variations: [2] });
    open();
    await Promise.all([busy, reroll, variations]);
  });

  it('close() waits for generations being rendered and recorded, and refuses new ones', async () => {
    let openRender!: () => void;
    const renderGate = new Promise<void>((res) => { openRender = res; });
    const rendering = deferred();
    const slow = createBotCore({
      store, embedder, samplers, catalog, admins: new AdminPolicy([]),
      renderer: { grid: async (images, size) => { rendering.resolve(); await renderGate; return sharpRenderer.grid(images, size); }, image: sharpRenderer.image },
      training: new TrainingRunner({ runs: store.runs, catalog, runsDir: path.join(dir, 'runs2'), lockFile: path.join(dir, 'lock2') }),
      queue: { batchWindowMs: 5 },
    });
    const pending = slow.imagine(alice, { prompt: 'late cow', seed: 3 });
    await rendering.promise; // the queue has answered; rendering runs
    let closed = false;
    const closing = slow.close().then(() => { closed = true; });
    await assert.rejects(slow.imagine(bob, { prompt: 'too late' }), (e: unknown) => e instanceof UserError && /shutting down/.test(e.message));
    await new Promise((res) => setImmediate(res)); // the queue's close has settled; only the rendering holds close() now
    assert.equal(closed, false, 'close() returned while a generation was still being recorded');
    openRender();
    const reply = await pending;
    await closing;
    assert.equal((await store.generations.get(reply.generationId))?.prompt, 'late cow', 'recorded before close() returned');
  });

  it('perturbEmbedding stays unit length, near the original, and is deterministic', () => {
    const e = new Float32Array(512).fill(1 / Math.sqrt(512));
    const a = perturbEmbedding(e, 5);
    const b = perturbEmbedding(e, 5);
    const c = perturbEmbedding(e, 6);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-5);
    const cos = a.reduce((s, x, i) => s + x * e[i], 0);
    assert.ok(cos > 0.9 && cos < 0.999, `cos ${cos}`);
  });

  it('records reactions on generation messages; the same reaction twice counts once', async () => {
    const r = await core.imagine(alice, { prompt: 'sheep', seed: 1 });
    await core.attachMessage(r.generationId, 'msg-1');
    assert.equal(await core.recordReaction({ platform: 'discord', messageRef: 'other', userId: 'bob', reaction: '👍', added: true }), false);
    assert.equal(await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'bob', reaction: '👍', added: true }), true);
    assert.equal(await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'bob', reaction: '👍', added: true }), true);
    await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'carol', reaction: '👎', added: true });
    await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'carol', reaction: '👎', added: false });
    await core.recordReaction({ platform: 'discord', messageRef: 'msg-1', userId: 'dave', reaction: '⭐', added: true });
    const events = await store.feedback.list();
    assert.deepEqual(events.map((e) => [e.userId, e.kind, e.added]), [
      ['bob', 'up', true], ['carol', 'down', true], ['carol', 'down', false], ['dave', 'favourite', true]]);
    assert.deepEqual(await store.feedback.stats(), [{ model: 'm1', generations: 1, up: 1, down: 0, favourite: 1, upRatio: 1 }]);
    // A message showing one image: its reactions count for that image.
    await core.attachMessage(r.generationId, 'msg-single', 0);
    await core.recordReaction({ platform: 'discord', messageRef: 'msg-single', userId: 'erin', reaction: '👎', added: true });
    assert.equal((await store.feedback.list()).at(-1)!.imageIndex, 0);
    assert.equal((await store.generations.get(r.generationId))!.messageRef, 'msg-1', 'the grid message stays the generation\'s message');
  });

  it('admin commands: refused for others, model list/use, CLIP mismatch refused', async () => {
    await assert.rejects(core.modelList(alice), (e: unknown) => e instanceof NotAllowedError && /only bot admins/.test(e.message));
    await assert.rejects(core.trainStart(alice, { preset: 'tiny' }, { update: async () => {}, image: async () => {} }), NotAllowedError);
    await assert.rejects(core.trainStop(bob), NotAllowedError);
    assert.ok(await core.modelList({ ...alice, platformAdmin: true }), 'Manage Server members are admins in an admin guild');
    await assert.rejects(core.modelList({ ...alice, workspaceId: 'g2', platformAdmin: true }), NotAllowedError, 'not in another guild');
    const list = await core.modelList(admin);
    assert.match(list, /▶ `m1`/);
    assert.match(list, /`old`.*not servable/);
    assert.match(await core.modelUse(admin, 'm2'), /Now serving `m2`/);
    assert.equal(catalog.entries.find((e) => e.active)!.name, 'm2');
    await assert.rejects(core.modelUse(admin, 'old'), /trained with CLIP other-clip/);
    assert.equal(catalog.entries.find((e) => e.active)!.name, 'm2');
    assert.match(await core.trainStatus(admin), /No training run/);
  });
});
