/**
 * End to end: the real Bolt app (HTTP receiver, signature checks) and the real bot core (queue, SQLite store,
 * admin policy, TrainingRunner) over the real model side (tiny CLIP, a tiny-preset checkpoint in the registry,
 * Sampler, sharp grids) against a fake Slack Web API on 127.0.0.1, driven by signed slash commands, button
 * clicks and reaction events.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import { createBotCore, type BotCoreHandle } from '../../../src/bot/core/core.js';
import { openSqliteStore, type BotStore } from '../../../src/bot/core/store/index.js';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { startSlack, type SlackHandle } from '../../../src/bot/slack/index.js';
import { runFeedbackExport } from '../../../src/cli/commands/feedback.js';
import {
  sendBlockAction, sendReactionEvent, sendSlashCommand, signedPost, startFakeSlack, type FakeSlack, type FakeSlackMessage,
} from '../../fakes/slack-server.js';
import type { LoadedSampler, SamplerProvider } from '../../../src/bot/core/deps.js';
import { CheckpointSamplerProvider } from '../../../src/bot/core/sampler-provider.js';
import { initBackend } from '../../../src/model/backend.js';
import { saveCheckpoint } from '../../../src/model/checkpoint.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { buildCvae } from '../../../src/model/cvae.js';
import { gridPng, imagePng } from '../../../src/model/image-grid.js';
import { getPreset } from '../../../src/model/presets.js';
import { CheckpointRegistry } from '../../../src/model/registry.js';
import { Sampler } from '../../../src/model/sampler.js';

const TINY_CLIP_DIR = path.resolve('tests/fixtures/tiny-clip');

const SECRET = 'e2e-signing-secret';
const CHANNEL = 'C0GENERAL';
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);


/** The real sampler provider, with calls that can be held (to make the queue test deterministic). */
class HoldableSamplers implements SamplerProvider {
  gate: Promise<void> | null = null;
  calls: { model: string; seeds: number[] }[] = [];
  constructor(private readonly inner: SamplerProvider) {}
  async get(name?: string): Promise<LoadedSampler> {
    const s = await this.inner.get(name);
    return {
      ...s,
      sample: async (embeddings, seeds) => {
        this.calls.push({ model: s.name, seeds });
        if (this.gate) await this.gate;
        return s.sample(embeddings, seeds);
      },
    };
  }
}

describe('slack adapter end to end', () => {
  let dir: string;
  let fake: FakeSlack;
  let store: BotStore;
  let samplers: HoldableSamplers;
  let provider: CheckpointSamplerProvider;
  let core: BotCoreHandle;
  let slack: SlackHandle;
  let url: string;
  let clip: ClipEmbedder;
  let training: TrainingRunner;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slack-e2e-'));
    fake = await startFakeSlack({ sharesVisibleAfter: 2, notInChannels: ['C0NOTIN'] });
    store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    await initBackend();
    clip = await ClipEmbedder.load({ model: TINY_CLIP_DIR, quantized: false });
    // A tiny-preset checkpoint (untrained weights: the code path is what is tested), registered and active as m1.
    const preset = getPreset('tiny');
    const cvae = buildCvae(preset, { seed: 1 });
    const catalog = new CheckpointRegistry(path.join(dir, 'checkpoints'));
    await saveCheckpoint(path.join(catalog.root, 'm1'), cvae, {
      name: 'm1', preset: preset.name, resolution: preset.resolution, conditioning: preset.conditioning, clipModel: clip.modelId,
      datasetFingerprint: 'test', epoch: 0, step: 0, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
    });
    cvae.dispose();
    await catalog.register('m1', path.join(catalog.root, 'm1'));
    await catalog.activate('m1');
    provider = new CheckpointSamplerProvider({ registry: catalog, load: (d) => Sampler.fromCheckpoint(d), clipModel: clip.modelId });
    samplers = new HoldableSamplers(provider);
    core = createBotCore({
      store,
      embedder: clip,
      samplers,
      catalog,
      renderer: { grid: (images, size) => gridPng(images, size, { scale: 4 }), image: (image, size) => imagePng(image, size, 4) },
      admins: new AdminPolicy(['slack:U456']),
      training: training = new TrainingRunner({
        runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'training.lock'),
        checkPreset: (name) => { getPreset(name); },
        // The real `train` CLI as a child process, on small synthetic data so an epoch takes seconds.
        extraArgs: ['--synthetic', '48', '--batch-size', '8'],
        env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'warn' },
        minUpdateIntervalMs: 0,
      }),
      queue: { batchWindowMs: 5, perUserWaiting: 0 },
    });
    slack = await startSlack(core, {
      botToken: fake.token, signingSecret: SECRET, port: 0, host: '127.0.0.1', apiUrl: fake.apiUrl, apiRetries: 0,
      shareLookup: { delaysMs: [0, 20, 50, 100, 200] },
    });
    url = slack.url!;
  });

  after(async () => {
    await slack?.stop();
    await training?.stop(); // a failed test may leave a run going: the trainer saves and exits on SIGTERM
    await training?.idle();
    await core?.close();
    provider?.clear();
    await clip?.dispose();
    store?.close();
    await fake?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The file share message and the buttons message posted after `since` calls. */
  async function waitForGeneration(channel: string, fromMessage: number): Promise<{ share: FakeSlackMessage; buttons: FakeSlackMessage }> {
    return fake.waitFor(() => {
      const mine = fake.messages.slice(fromMessage).filter((m) => m.channel === channel && !m.threadTs);
      const share = mine.find((m) => m.files?.length);
      const buttons = mine.find((m) => m.blocks?.some((b) => (b as { type: string }).type === 'actions'));
      return share && buttons ? { share, buttons } : undefined;
    }, 20_000, 'a generation to be posted');
  }

  it('checked the token with auth.test at start, and reports itself listening', () => {
    assert.deepEqual(slack.status(), { ok: true, mode: 'http' });
    assert.ok(fake.callsOf('auth.test').length >= 1);
    assert.equal(fake.callsOf('auth.test')[0].authorization, `Bearer ${fake.token}`);
  });

  it('answers 401 to a bad or stale signature and does nothing', async () => {
    const before = fake.calls.length;
    const bad = await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'cows', responseUrl: fake.responseUrl() }, { signWith: 'not-the-secret' });
    assert.equal(bad.status, 401);
    const stale = await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'cows', responseUrl: fake.responseUrl() }, { timestampSec: Math.floor(Date.now() / 1000) - 6 * 60 });
    assert.equal(stale.status, 401);
    const unsigned = await signedPost(url, 'command=%2Fimagine&text=cows', 'application/x-www-form-urlencoded', SECRET, { signWith: '' });
    assert.equal(unsigned.status, 401);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fake.calls.length, before, 'no Web API call for unsigned requests');
    assert.equal(samplers.calls.length, 0);
  });

  let first: { generationId: string; share: FakeSlackMessage };

  it('/imagine acks at once, uploads the PNG grid with prompt/seed/model, attaches the share, posts the buttons', async () => {
    const responseUrl = fake.responseUrl();
    const fromMessage = fake.messages.length;
    const ack = await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'sheep on a green hill --count 2 --seed 7', userId: 'U123', responseUrl });
    assert.equal(ack.status, 200);
    assert.equal(ack.json?.response_type, 'ephemeral');
    assert.match(String(ack.json?.text), /Drawing “sheep on a green hill”/);

    const { share, buttons } = await waitForGeneration(CHANNEL, fromMessage);
    const file = fake.files.get(share.files![0])!;
    assert.ok(file.bytes, 'the bytes were uploaded');
    assert.deepEqual(file.bytes.subarray(0, 8), PNG_MAGIC, 'the upload is a PNG');
    const image = await sharp(file.bytes).metadata();
    assert.ok(image.width! >= 2 * 64 && image.height! >= 64, `two 16 px images upscaled 4x side by side (got ${image.width}x${image.height})`);
    assert.equal(file.length, file.bytes.length, 'getUploadURLExternal got the real length');
    assert.match(file.filename, /\.png$/);
    assert.match(share.text!, /sheep on a green hill/);
    assert.match(share.text!, /seeds 7–8/);
    assert.match(share.text!, /model m1/);
    assert.match(share.text!, /asked by <@U123>$/, 'who asked');
    assert.ok(fake.callsOf('files.info').length >= 2, 'polled files.info until Slack reported the share');

    const actions = buttons.blocks!.find((b) => (b as { type: string }).type === 'actions') as { block_id: string; elements: { action_id: string; value: string }[] };
    assert.deepEqual(actions.elements.map((e) => e.action_id), ['imagine_reroll', 'imagine_variations', 'imagine_image_0', 'imagine_image_1']);
    const generationId = actions.elements[0].value;
    const row = (await store.generations.get(generationId))!;
    assert.equal(row.platform, 'slack');
    assert.equal(row.userId, 'U123');
    assert.equal(row.workspaceId, fake.teamId);
    assert.equal(row.channelId, CHANNEL);
    assert.deepEqual(row.seeds, [7, 8]);
    assert.equal(row.messageRef, `${CHANNEL}:${share.ts}`, 'reactions attach to the file share message');
    assert.equal(fake.responses.filter((r) => r.id === responseUrl.split('/').pop()).length, 0, 'no error response');
    first = { generationId, share };
  });

  it('records reactions added and removed on the grid message; the same reaction twice counts once', async () => {
    const { share, generationId } = first;
    const send = (type: 'reaction_added' | 'reaction_removed', reaction: string, userId = 'U777', ts = share.ts) =>
      sendReactionEvent(url, SECRET, { type, userId, reaction, channelId: CHANNEL, ts });
    assert.equal((await send('reaction_added', '+1')).status, 200);
    await fake.waitFor(async () => (await store.feedback.list()).length === 1, 5000, 'the first reaction');
    assert.equal((await send('reaction_added', '+1')).status, 200);
    assert.equal((await send('reaction_added', 'star', 'U778')).status, 200);
    await fake.waitFor(async () => (await store.feedback.list()).length === 2, 5000, 'the star');
    assert.equal((await send('reaction_removed', '+1')).status, 200);
    await fake.waitFor(async () => (await store.feedback.list()).length === 3, 5000, 'the removal');
    assert.equal((await send('reaction_added', 'tada', 'U777', '1.000001')).status, 200, 'a reaction on another message');
    await new Promise((r) => setTimeout(r, 100));
    const events = (await store.feedback.list()).map((f) => ({ g: f.generationId, user: f.userId, reaction: f.reaction, kind: f.kind, added: f.added, platform: f.platform }));
    assert.deepEqual(events, [
      { g: generationId, user: 'U777', reaction: '+1', kind: 'up', added: true, platform: 'slack' },
      { g: generationId, user: 'U778', reaction: 'star', kind: 'favourite', added: true, platform: 'slack' },
      { g: generationId, user: 'U777', reaction: '+1', kind: 'up', added: false, platform: 'slack' },
    ]);
  });

  it('Reroll posts a new grid with new seeds for the same prompt', async () => {
    const fromMessage = fake.messages.length;
    const uploadsBefore = fake.files.size;
    const res = await sendBlockAction(url, SECRET, { actionId: 'imagine_reroll', value: first.generationId, userId: 'U321', responseUrl: fake.responseUrl() });
    assert.equal(res.status, 200);
    const { share, buttons } = await waitForGeneration(CHANNEL, fromMessage);
    assert.equal(fake.files.size, uploadsBefore + 1, 'a new upload');
    assert.deepEqual(fake.files.get(share.files![0])!.bytes!.subarray(0, 8), PNG_MAGIC);
    assert.match(share.text!, /sheep on a green hill/);
    const actions = buttons.blocks!.find((b) => (b as { type: string }).type === 'actions') as { elements: { value: string }[] };
    const reroll = (await store.generations.get(actions.elements[0].value))!;
    assert.notEqual(reroll.id, first.generationId);
    assert.equal(reroll.kind, 'reroll');
    assert.equal(reroll.parentId, first.generationId);
    assert.equal(reroll.userId, 'U321');
    assert.equal(reroll.seeds.length, 2);
    assert.notDeepEqual(reroll.seeds, [7, 8]);
    assert.equal(reroll.messageRef, `${CHANNEL}:${share.ts}`);
  });

  it('a per-image button posts that image in the thread; reactions on it count for that image', async () => {
    const buttons = fake.messages.find((m) => m.blocks?.some((b) => (b as { elements?: { value?: string }[] }).elements?.some((e) => e.value === first.generationId)))!;
    const filesBefore = fake.files.size;
    const res = await sendBlockAction(url, SECRET, {
      actionId: 'imagine_image_1', value: `${first.generationId}:1`,
      messageTs: buttons.ts, userId: 'U123', responseUrl: fake.responseUrl(),
    });
    assert.equal(res.status, 200);
    const single = await fake.waitFor(() => fake.messages.find((m) => m.threadTs === buttons.ts && m.files?.length), 10_000, 'the single image');
    assert.equal(fake.files.size, filesBefore + 1);
    const file = fake.files.get(single.files![0])!;
    assert.deepEqual(file.bytes!.subarray(0, 8), PNG_MAGIC);
    assert.match(single.text!, /seed 8/);
    // Wait until the adapter has attached the single image's share message, then react on it.
    await fake.waitFor(async () => await store.generations.byMessage('slack', `${CHANNEL}:${single.ts}`), 5000, 'the single image attached');
    assert.deepEqual((await store.generations.byMessage('slack', `${CHANNEL}:${single.ts}`))!.imageIndex, 1);
    const before = (await store.feedback.list()).length;
    await sendReactionEvent(url, SECRET, { type: 'reaction_added', userId: 'U900', reaction: '-1', channelId: CHANNEL, ts: single.ts });
    const fb = await fake.waitFor(async () => (await store.feedback.list()).slice(before)[0], 5000, 'the reaction on the single image');
    assert.equal(fb.generationId, first.generationId);
    assert.equal(fb.imageIndex, 1);
    assert.equal(fb.kind, 'down');
  });

  it('shows the queue position, and refuses politely over the per-user limit', async () => {
    let release!: () => void;
    samplers.gate = new Promise<void>((r) => { release = r; });
    const callsBefore = samplers.calls.length;
    const fromMessage = fake.messages.length;
    const busyUrl = fake.responseUrl();
    await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'a cow', userId: 'U500', responseUrl: busyUrl });
    await fake.waitFor(() => samplers.calls.length > callsBefore, 5000, 'the first job to run');
    // Another user waits with a position; the same user again is over the limit (1 running, 0 waiting here).
    const waitUrl = fake.responseUrl();
    await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'a goat', userId: 'U501', responseUrl: waitUrl });
    const overUrl = fake.responseUrl();
    const over = await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'another cow', userId: 'U500', responseUrl: overUrl });
    assert.equal(over.status, 200, 'still acked in time');
    const byUrl = (u: string) => fake.responses.filter((r) => r.id === u.split('/').pop());
    const refusal = await fake.waitFor(() => byUrl(overUrl)[0], 5000, 'the refusal');
    assert.equal(refusal.body.response_type, 'ephemeral');
    assert.match(String(refusal.body.text), /You already have 1 images on the way/);
    const queued = await fake.waitFor(() => byUrl(waitUrl)[0], 5000, 'the queue position');
    assert.match(String(queued.body.text), /number 1 in the queue/);
    release();
    samplers.gate = null;
    await fake.waitFor(() => fake.messages.slice(fromMessage).filter((m) => m.files?.length).length === 2, 20_000, 'both grids');
    assert.equal(byUrl(busyUrl).length, 0);
  });

  it('answers a bad prompt with ephemeral help and generates nothing', async () => {
    const callsBefore = samplers.calls.length;
    const empty = await sendSlashCommand(url, SECRET, { command: '/imagine', text: '--count 2', responseUrl: fake.responseUrl() });
    assert.equal(empty.status, 200);
    assert.equal(empty.json?.response_type, 'ephemeral');
    assert.match(String(empty.json?.text), /Usage: `\/imagine &lt;prompt&gt;/);
    const badFlag = await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'cows --count lots', responseUrl: fake.responseUrl() });
    assert.match(String(badFlag.json?.text), /`count` must be a whole number/);
    const mentionsUrl = fake.responseUrl();
    await sendSlashCommand(url, SECRET, { command: '/imagine', text: '<@U123> <@U456>', responseUrl: mentionsUrl });
    const answer = await fake.waitFor(() => fake.responses.find((r) => r.id === mentionsUrl.split('/').pop()), 5000, 'the prompt refusal');
    assert.equal(answer.body.response_type, 'ephemeral');
    assert.match(String(answer.body.text), /only mentions or emoji/);
    const modelUrl = fake.responseUrl();
    await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'cows --model ../etc', responseUrl: modelUrl });
    const modelAnswer = await fake.waitFor(() => fake.responses.find((r) => r.id === modelUrl.split('/').pop()), 5000, 'the model refusal');
    assert.match(String(modelAnswer.body.text), /Try `\/cvae-model list`/, 'core command names are spelled as this app\'s commands');
    assert.equal(samplers.calls.length, callsBefore);
  });

  it('tells the user to invite the bot when it is not in the channel', async () => {
    const responseUrl = fake.responseUrl();
    await sendSlashCommand(url, SECRET, { command: '/imagine', text: 'a barn', channelId: 'C0NOTIN', userId: 'U600', responseUrl });
    const answer = await fake.waitFor(() => fake.responses.find((r) => r.id === responseUrl.split('/').pop()), 10_000, 'the error');
    assert.match(String(answer.body.text), /\/invite/);
  });

  it('refuses admin commands to non-admins', async () => {
    for (const [command, text] of [['/cvae-train', 'start preset:tiny'], ['/cvae-train', 'stop'], ['/cvae-model', 'use m1']]) {
      const responseUrl = fake.responseUrl();
      const ack = await sendSlashCommand(url, SECRET, { command, text, userId: 'U999', responseUrl });
      assert.equal(ack.status, 200);
      const answer = await fake.waitFor(() => fake.responses.find((r) => r.id === responseUrl.split('/').pop()), 5000, `${command} refusal`);
      assert.equal(answer.body.response_type, 'ephemeral');
      assert.match(String(answer.body.text), /admin/i);
    }
    assert.equal((await store.runs.recent(5)).length, 0, 'no run started');
  });

  it('lets an admin start a tiny training run (real trainer) with progress in the channel, stop it, and serve the result', async () => {
    const ask = async (command: string, text: string) => {
      const responseUrl = fake.responseUrl();
      const ack = await sendSlashCommand(url, SECRET, { command, text, userId: 'U456', channelId: 'C0TRAIN', responseUrl });
      assert.equal(ack.status, 200);
      return (await fake.waitFor(() => fake.responses.find((r) => r.id === responseUrl.split('/').pop()), 10_000, `${command} ${text}`)).body;
    };
    assert.match(String((await ask('/cvae-model', 'list')).text), /m1/);
    assert.match(String((await ask('/cvae-train', 'start preset:nope')).text), /tiny/, 'an unknown preset is refused with the names');
    const started = await ask('/cvae-train', 'start preset:tiny epochs:30');
    const runId = /Started training run `([^`]+)`/.exec(String(started.text))?.[1] ?? '';
    assert.ok(runId.startsWith('tiny-'), String(started.text));
    const status = await fake.waitFor(() => fake.messages.find((m) => m.channel === 'C0TRAIN' && !m.threadTs && m.text?.includes(runId)), 30_000, 'the status message');
    // The first epoch's sample grid and loss curve arrive as PNGs in the status message's thread.
    const images = await fake.waitFor(() => {
      const inThread = fake.messages.filter((m) => m.channel === 'C0TRAIN' && m.threadTs === status.ts && m.files?.length);
      return inThread.length >= 2 ? inThread : undefined;
    }, 60_000, 'the epoch images');
    for (const m of images) assert.deepEqual(fake.files.get(m.files![0])!.bytes!.subarray(0, 8), PNG_MAGIC);
    assert.match(images.map((m) => m.text).join('\n'), /Epoch 1\/30/);
    assert.match(String((await ask('/cvae-train', 'status')).text), new RegExp(runId));
    assert.match(String((await ask('/cvae-train', 'start preset:tiny')).text), /already going/, 'one run at a time');
    assert.match(String((await ask('/cvae-train', 'stop')).text), /Stopping training run/);
    await fake.waitFor(() => /was stopped/.test(status.text ?? ''), 60_000, 'the final status edit');
    assert.ok(status.edits.length >= 2, 'the status message was edited, not reposted');
    const run = (await store.runs.recent(1))[0];
    assert.equal(run.id, runId);
    assert.equal(run.status, 'stopped');
    assert.equal(run.userId, 'U456');
    assert.match(String((await ask('/cvae-train', 'status')).text), /No training run is going/);
    // The stopped run's checkpoint was registered and is listed; trained on synthetic embeddings (not this CLIP),
    // it is refused for serving with a message the admin can act on, and m1 stays served.
    assert.match(String((await ask('/cvae-model', 'list')).text), new RegExp(runId));
    const refused = String((await ask('/cvae-model', `use ${runId}`)).text);
    assert.match(refused, /trained with CLIP/);
    assert.match(refused, /\/cvae-model list/);
    assert.match(String((await ask('/cvae-model', 'use m1')).text), /Now serving `m1`/);
  });

  it('`feedback export` shows the reactions the Slack users left, with their generations', async () => {
    const previous = process.env.DATA_DIR;
    process.env.DATA_DIR = dir;
    let text = '';
    try {
      await runFeedbackExport({ format: 'jsonl' }, { write: (t) => { text += t; } });
    } finally {
      if (previous === undefined) delete process.env.DATA_DIR;
      else process.env.DATA_DIR = previous;
    }
    const rows = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const pick = (r: Record<string, unknown>) => [r.platform, r.reactionUser, r.reaction, r.action, r.imageIndex, r.prompt, r.channel, r.messageRef];
    assert.deepEqual(rows.map(pick), [
      ['slack', 'U777', '+1', 'added', null, 'sheep on a green hill', CHANNEL, `${CHANNEL}:${first.share.ts}`],
      ['slack', 'U778', 'star', 'added', null, 'sheep on a green hill', CHANNEL, `${CHANNEL}:${first.share.ts}`],
      ['slack', 'U777', '+1', 'removed', null, 'sheep on a green hill', CHANNEL, `${CHANNEL}:${first.share.ts}`],
      ['slack', 'U900', '-1', 'added', 1, 'sheep on a green hill', CHANNEL, `${CHANNEL}:${first.share.ts}`],
    ]);
  });
});
