/**
 * End to end: the real discord.js client and the real bot core against a fake Discord (REST + JSON gateway) on
 * 127.0.0.1. Slash commands, buttons and reactions arrive as gateway dispatches; the deferred reply and the PATCH of
 * `@original` carrying the PNG are asserted on the fake's recorded requests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeDiscord, type RecordedRequest } from '../../fakes/discord-server.js';
import { startDiscord, type RunningDiscord } from '../../../src/bot/discord/index.js';
import { decodeCustomId } from '../../../src/bot/discord/components.js';
import { createE2eCore, type E2eCore } from '../helpers.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const EPHEMERAL = 64;
const alice = { id: '100000000000000001', username: 'alice' };
const bob = { id: '100000000000000002', username: 'bob' };
const carol = { id: '100000000000000003', username: 'carol' };
const boss = { id: '100000000000000009', username: 'boss' };

describe('discord adapter end to end', () => {
  let fake: FakeDiscord;
  let env: E2eCore;
  let bot: RunningDiscord;

  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    env = await createE2eCore({ admins: [`discord:${boss.id}`], adminGuilds: [fake.guildId], queue: { perUserWaiting: 0 } });
    bot = await startDiscord(env.core, { DISCORD_TOKEN: 'fake-bot-token', DISCORD_API_URL: fake.apiUrl });
  });

  after(async () => {
    await bot?.stop();
    await env?.close();
    await fake?.close();
  });

  const isOriginal = (token: string, method = 'PATCH') => (r: RecordedRequest) => r.method === method && r.path === `/webhooks/${fake.applicationId}/${token}/messages/%40original`;
  const isFollowUp = (token: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === `/webhooks/${fake.applicationId}/${token}`;
  const isCallback = (id: string, token: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === `/interactions/${id}/${token}/callback`;
  const option = (name: string, value: string | number) => ({ name, type: typeof value === 'number' ? 4 : 3, value });
  /** The final PATCH of @original that carries a file. */
  const imageReply = (token: string) => fake.waitForRequest((r) => isOriginal(token)(r) && r.files.length > 0);
  const messageIdOf = (token: string) => fake.messages.get(`original:${token}`)!.id as string;

  it('connects through /gateway/bot, HELLO, IDENTIFY, READY and GUILD_CREATE', () => {
    assert.ok(fake.requests.some((r) => r.method === 'GET' && r.path === '/gateway/bot' && r.authorization === 'Bot fake-bot-token'));
    assert.equal(bot.client.user.id, fake.applicationId);
    assert.ok(bot.client.guilds.cache.has(fake.guildId));
  });

  let firstGeneration = '';
  let firstMessage = '';

  it('/imagine defers at once, then edits @original with the grid PNG, the prompt, seed and model, and buttons', async () => {
    const { id, token } = fake.slashCommand(alice, 'imagine', [option('prompt', 'sheep on a green hill'), option('count', 2), option('seed', 7)]);
    const callback = await fake.waitForRequest(isCallback(id, token));
    assert.equal(callback.body.type, 5, 'deferred channel message');
    assert.equal(callback.body.data.flags ?? 0, 0, 'visible to the channel');
    const patch = await imageReply(token);
    assert.deepEqual(patch.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.match(patch.body.content, /sheep on a green hill/);
    assert.match(patch.body.content, /seeds 7–8/);
    assert.match(patch.body.content, new RegExp(`model ${env.modelName}`));
    assert.match(patch.body.content, new RegExp(`asked by <@${alice.id}>$`), 'who asked');
    assert.deepEqual(patch.body.allowed_mentions, { parse: [] }, 'the mention pings nobody');
    const customIds = patch.body.components.flatMap((row: any) => row.components.map((c: any) => c.custom_id));
    assert.equal(customIds.length, 4, 'Reroll, Variations, Image 1, Image 2');
    const decoded = customIds.map(decodeCustomId);
    assert.deepEqual(decoded.map((d: any) => d.action), ['reroll', 'vary', 'image', 'image']);
    firstGeneration = decoded[0].generationId;
    firstMessage = messageIdOf(token);
    await until(async () => (await env.store.generations.get(firstGeneration))?.messageRef === firstMessage);
    const row = (await env.store.generations.get(firstGeneration))!;
    assert.deepEqual(row.seeds, [7, 8]);
    assert.equal(row.userId, alice.id);
    assert.equal(row.workspaceId, fake.guildId);
  });

  it('buttons: Reroll gives new seeds, Variations keeps them, Image 2 posts one image', async () => {
    const reroll = fake.button(bob, `gen:reroll:${firstGeneration}`, firstMessage);
    const rr = await imageReply(reroll.token);
    assert.match(rr.body.content, /sheep on a green hill/);
    assert.doesNotMatch(rr.body.content, /seeds 7–8/);
    const vary = fake.button(bob, `gen:vary:${firstGeneration}`, firstMessage);
    const v = await imageReply(vary.token);
    assert.match(v.body.content, /seeds 7–8 · variation/);
    const single = fake.button(carol, `gen:image:${firstGeneration}:1`, firstMessage);
    const s = await imageReply(single.token);
    assert.match(s.body.content, /seed 8 /);
    assert.deepEqual(s.files[0].data.subarray(0, 8), PNG_MAGIC);
    // Reactions on the single-image message count for image 2.
    fake.reaction(carol, messageIdOf(single.token), { name: '⭐' }, true);
    await until(async () => (await env.store.feedback.list()).some((f) => f.userId === carol.id && f.imageIndex === 1));
  });

  it('records reactions added and removed (uncached message via partials); the same reaction twice counts once', async () => {
    const before = (await env.store.feedback.list()).length;
    fake.reaction(bob, firstMessage, { name: '👍' }, true);
    fake.reaction(bob, firstMessage, { name: '👍' }, true);
    fake.reaction(alice, firstMessage, { name: '👎' }, true);
    fake.reaction(alice, firstMessage, { name: '👎' }, false);
    fake.reaction(carol, firstMessage, { name: 'cow', id: '200000000000000001' }, true);
    fake.reaction(carol, fake.snowflake(), { name: '👍' }, true); // not a generation message: ignored
    await until(async () => (await env.store.feedback.list()).length >= before + 4);
    await new Promise((r) => setTimeout(r, 100));
    const events = (await env.store.feedback.list()).slice(before);
    assert.deepEqual(events.map((e) => [e.userId, e.reaction, e.kind, e.added, e.generationId]), [
      [bob.id, '👍', 'up', true, firstGeneration],
      [alice.id, '👎', 'down', true, firstGeneration],
      [alice.id, '👎', 'down', false, firstGeneration],
      [carol.id, 'cow:200000000000000001', 'other', true, firstGeneration],
    ]);
  });

  it('bad prompts get a private, helpful message', async () => {
    const { token } = fake.slashCommand(alice, 'imagine', [option('prompt', '<@100000000000000002> 🐄🐑')]);
    const follow = await fake.waitForRequest(isFollowUp(token));
    assert.equal(follow.body.flags & EPHEMERAL, EPHEMERAL);
    assert.match(follow.body.content, /only mentions or emoji/);
    assert.ok(fake.requests.some(isOriginal(token, 'DELETE')), 'the public placeholder is removed');
    const long = fake.slashCommand(alice, 'imagine', [option('prompt', 'x'.repeat(600))]);
    assert.match((await fake.waitForRequest(isFollowUp(long.token))).body.content, /500 or fewer/);
  });

  it('queue limits: a second request while one is pending is refused politely; others see their position', async () => {
    const release = env.holdSampler();
    const first = fake.slashCommand(alice, 'imagine', [option('prompt', 'a cow'), option('seed', 1)]);
    await env.waitUntilSampling();
    const second = fake.slashCommand(alice, 'imagine', [option('prompt', 'another cow')]);
    const refusal = await fake.waitForRequest(isFollowUp(second.token));
    assert.equal(refusal.body.flags & EPHEMERAL, EPHEMERAL);
    assert.match(refusal.body.content, /limit is 1 running and 0 waiting/);
    const other = fake.slashCommand(bob, 'imagine', [option('prompt', 'a goat'), option('seed', 2)]);
    const queued = await fake.waitForRequest((r) => isOriginal(other.token)(r) && /Queued, position 1/.test(r.body?.content ?? ''));
    assert.ok(queued);
    release();
    await imageReply(first.token);
    await imageReply(other.token);
  });

  it('admin commands: non-admins are refused privately; admins list models', async () => {
    const start = fake.slashCommand(alice, 'train', [{ name: 'start', type: 1, options: [option('preset', 'tiny')] }]);
    const cb = await fake.waitForRequest(isCallback(start.id, start.token));
    assert.equal(cb.body.data.flags & EPHEMERAL, EPHEMERAL);
    assert.match((await fake.waitForRequest(isOriginal(start.token))).body.content, /only bot admins can use `\/train start`/);
    const list = fake.slashCommand(bob, 'model', [{ name: 'list', type: 1 }]);
    assert.match((await fake.waitForRequest(isOriginal(list.token))).body.content, /only bot admins/);
    const adminList = fake.slashCommand(carol, 'model', [{ name: 'list', type: 1 }], { manageGuild: true });
    assert.match((await fake.waitForRequest(isOriginal(adminList.token))).body.content, new RegExp(`▶ \`${env.modelName}\``));
  });

  it('an admin starts a tiny training run and stops it; progress goes to the channel and the checkpoint is registered', async () => {
    const from = fake.requests.length;
    const start = fake.slashCommand(boss, 'train', [{ name: 'start', type: 1, options: [option('preset', 'tiny'), option('epochs', 1000)] }]);
    const started = await fake.waitForRequest(isOriginal(start.token));
    assert.match(started.body.content, /Started training run `tiny-/);
    const again = fake.slashCommand(boss, 'train', [{ name: 'start', type: 1, options: [option('preset', 'tiny')] }]);
    assert.match((await fake.waitForRequest(isOriginal(again.token))).body.content, /already going/);
    // The status message in the channel (bot token, not the interaction token).
    await fake.waitForRequest((r) => r.method === 'POST' && r.path === `/channels/${fake.channelId}/messages` && /Training run/.test(r.body?.content ?? ''), { from, timeoutMs: 120_000 });
    await env.waitForTrainingStep();
    // Each epoch posts its sample grid and loss curve to the channel.
    const samples = await fake.waitForRequest((r) => r.method === 'POST' && r.path === `/channels/${fake.channelId}/messages`
      && r.files.some((f) => f.name === 'samples-epoch-1.png'), { from, timeoutMs: 120_000 });
    assert.deepEqual(samples.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.match(samples.body.content, /Epoch 1\/1000: val loss \d/);
    const curve = await fake.waitForRequest((r) => r.method === 'POST' && r.files.some((f) => f.name === 'loss-epoch-1.png'), { from, timeoutMs: 60_000 });
    assert.deepEqual(curve.files[0].data.subarray(0, 8), PNG_MAGIC);
    const stop = fake.slashCommand(boss, 'train', [{ name: 'stop', type: 1 }]);
    assert.match((await fake.waitForRequest(isOriginal(stop.token))).body.content, /Stopping training run/);
    const final = await fake.waitForRequest((r) => (r.method === 'PATCH' || r.method === 'POST') && r.path.startsWith(`/channels/${fake.channelId}/messages`)
      && /was stopped|finished/.test(r.body?.content ?? ''), { from, timeoutMs: 120_000 });
    const runId = /`(tiny-[^`]+)`/.exec(final.body.content)![1];
    const run = (await env.store.runs.get(runId))!;
    assert.equal(run.status, 'stopped');
    assert.match(final.body.content, /was stopped after \d+ epoch/);
    assert.ok(run.checkpointDir && fs.existsSync(run.checkpointDir));
    assert.ok((await env.catalog.list()).some((m) => m.name === runId), 'checkpoint registered');
    const status = fake.slashCommand(boss, 'train', [{ name: 'status', type: 1 }]);
    assert.match((await fake.waitForRequest(isOriginal(status.token))).body.content, new RegExp(`Last run \`${runId}\`: stopped`));
  });

  it('the store holds what happened: the 👍 once, the 👎 added then removed, per-model stats', async () => {
    const rows = await env.store.feedback.list();
    const up = rows.filter((r) => r.reaction === '👍' && r.userId === bob.id);
    assert.deepEqual(up.map((r) => r.added), [true], 'duplicate add counted once');
    assert.equal((await env.store.generations.get(up[0].generationId))?.prompt, 'sheep on a green hill');
    assert.deepEqual(rows.filter((r) => r.reaction === '👎').map((r) => r.added), [true, false]);
    const mine = (await env.store.feedback.stats()).find((st) => st.model === env.modelName)!;
    assert.ok(mine.generations >= 5);
    assert.deepEqual([mine.up, mine.down, mine.upRatio], [1, 0, 1]);
  });

});

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
