/**
 * Socket Mode (SLACK_APP_TOKEN): the real Bolt app connects to the fake's WebSocket through
 * apps.connections.open; slash commands, button clicks and events arrive as envelopes and are acked on the socket.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import { createBotCore, type BotCoreHandle } from '../../../src/bot/core/core.js';
import { openSqliteStore, type BotStore } from '../../../src/bot/core/store/index.js';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { startSlack, type SlackHandle } from '../../../src/bot/slack/index.js';
import { blockActionPayload, reactionEventPayload, slashCommandPayload, startFakeSlack, type FakeSlack } from '../../fakes/slack-server.js';
import { FakeCatalog, FakeSamplers, HashEmbedder, sharpRenderer } from '../core/helpers.js';

describe('slack adapter in Socket Mode', () => {
  let dir: string;
  let fake: FakeSlack;
  let store: BotStore;
  let core: BotCoreHandle;
  let slack: SlackHandle;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slack-socket-'));
    fake = await startFakeSlack({ sharesVisibleAfter: 1 });
    store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    const samplers = new FakeSamplers({ m1: 'test-clip' }, 'm1', 8);
    const catalog = new FakeCatalog(samplers);
    core = createBotCore({
      store, embedder: new HashEmbedder(), samplers, catalog, renderer: sharpRenderer, admins: new AdminPolicy([]),
      training: new TrainingRunner({ runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), lockFile: path.join(dir, 'lock') }),
      queue: { batchWindowMs: 5 },
    });
    slack = await startSlack(core, {
      botToken: fake.token, signingSecret: 'unused-in-socket-mode', appToken: fake.appToken, apiUrl: fake.apiUrl, apiRetries: 0,
      shareLookup: { delaysMs: [0, 20, 50] },
    });
    await fake.socketConnected();
  });

  after(async () => {
    await slack?.stop();
    await core?.close();
    store?.close();
    await fake?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens the connection with the app token and listens on no port', () => {
    assert.equal(slack.port, undefined);
    assert.deepEqual(slack.status(), { ok: true, mode: 'socket' });
    assert.equal(fake.callsOf('apps.connections.open')[0].authorization, `Bearer ${fake.appToken}`);
  });

  it('/imagine is acked on the socket, then the grid and buttons are posted; reactions and buttons work', async () => {
    const ack = await fake.socketSend('slash_commands', slashCommandPayload({ command: '/imagine', text: 'a sheep --seed 3', userId: 'U42', responseUrl: fake.responseUrl() }));
    assert.equal(ack.payload?.response_type, 'ephemeral');
    assert.match(String(ack.payload?.text), /Drawing “a sheep”/);
    const share = await fake.waitFor(() => fake.messages.find((m) => m.files?.length), 20_000, 'the grid');
    const buttons = await fake.waitFor(() => fake.messages.find((m) => m.blocks?.length), 20_000, 'the buttons');
    assert.match(share.text!, /seed 3/);
    const generationId = (buttons.blocks!.find((b) => (b as { type: string }).type === 'actions') as { elements: { value: string }[] }).elements[0].value;
    assert.equal((await store.generations.get(generationId))!.messageRef, `C0GENERAL:${share.ts}`);

    await fake.socketSend('events_api', reactionEventPayload({ type: 'reaction_added', userId: 'U43', reaction: 'star', channelId: 'C0GENERAL', ts: share.ts }));
    const fb = await fake.waitFor(async () => (await store.feedback.list())[0], 5000, 'the reaction');
    assert.equal(fb.generationId, generationId);
    assert.equal(fb.kind, 'favourite');

    const buttonsBefore = fake.messages.filter((m) => m.blocks?.length).length;
    await fake.socketSend('interactive', blockActionPayload({ actionId: 'imagine_variations', value: generationId, userId: 'U43', messageTs: buttons.ts, responseUrl: fake.responseUrl() }));
    const next = await fake.waitFor(() => fake.messages.filter((m) => m.blocks?.length)[buttonsBefore], 20_000, 'the variations grid');
    const variationId = (next.blocks!.find((b) => (b as { type: string }).type === 'actions') as { elements: { value: string }[] }).elements[0].value;
    const variation = (await store.generations.get(variationId))!;
    assert.equal(variation.kind, 'variations');
    assert.equal(variation.parentId, generationId);
    assert.deepEqual(variation.seeds, [3]);
  });
});
