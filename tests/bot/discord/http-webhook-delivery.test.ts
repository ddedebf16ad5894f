/**
 * The Discord ReplyDelivery (interaction webhook, channel post once the token is gone) against the fake Discord:
 * what a worker uses to answer a deferred interaction without the gateway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Client } from 'discord.js';
import { FakeDiscord, type RecordedRequest } from '../../fakes/discord-server.js';
import {
  createDiscordReplyDelivery, createDiscordRestClient, INTERACTION_TOKEN_USABLE_MS, type DiscordTarget,
} from '../../../src/bot/discord/webhook-delivery.js';
import { decodeCustomId } from '../../../src/bot/discord/components.js';
import { channelProgressSink } from '../../../src/bot/discord/progress-sink.js';
import type { ImagineReply } from '../../../src/bot/core/types.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const EPHEMERAL = 64;

describe('Discord webhook delivery', () => {
  let fake: FakeDiscord;
  let client: Client;
  let reply: ImagineReply;
  let clock = Date.now();
  let n = 0;

  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    client = createDiscordRestClient({ DISCORD_TOKEN: 'fake-bot-token', DISCORD_API_URL: fake.apiUrl });
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#3a7' } }).png().toBuffer();
    reply = {
      generationId: 'gen1', prompt: 'sheep on a green hill', seeds: [7, 8], model: 'demo', userId: '100000000000000001',
      grid: png, images: [png, png], text: '"sheep on a green hill" · seeds 7–8 · model demo',
    };
  });

  after(async () => {
    await client?.destroy();
    await fake?.close();
  });

  const delivery = () => createDiscordReplyDelivery({ client, now: () => clock });
  const target = (ageMs: number): DiscordTarget => {
    const token = `tok-delivery-${++n}`;
    return { platform: 'discord', applicationId: fake.applicationId, interactionToken: token, channelId: fake.channelId, receivedAt: clock - ageMs };
  };
  const webhookPath = (t: DiscordTarget) => `/webhooks/${t.applicationId}/${t.interactionToken}`;
  const channelPost = (from: number) => fake.waitForRequest((r) => r.method === 'POST' && r.path === `/channels/${fake.channelId}/messages`, { from });
  const requestsSince = (from: number) => fake.requests.slice(from).map((r: RecordedRequest) => `${r.method} ${r.path}`);

  it('within the token\'s life: edits @original with the grid, the text and the buttons, without the bot token', async () => {
    const t = target(60_000);
    const from = fake.requests.length;
    const delivered = await delivery().deliver(t, reply);
    const patch = fake.requests.slice(from).find((r) => r.method === 'PATCH' && r.path === `${webhookPath(t)}/messages/%40original`)!;
    assert.ok(patch, requestsSince(from).join('\n'));
    assert.equal(patch.authorization, undefined, 'interaction webhooks need no bot token');
    assert.deepEqual(patch.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.equal(patch.files[0].name, 'cvae-gen1.png');
    assert.match(patch.body.content, /sheep on a green hill.*asked by <@100000000000000001>$/);
    assert.deepEqual(patch.body.allowed_mentions, { parse: [] });
    const ids = patch.body.components.flatMap((row: any) => row.components.map((c: any) => decodeCustomId(c.custom_id)?.action));
    assert.deepEqual(ids, ['reroll', 'vary', 'image', 'image']);
    assert.deepEqual(delivered, [{ messageRef: fake.messages.get(`original:${t.interactionToken}`)!.id }]);
    assert.deepEqual(requestsSince(from), [`PATCH ${webhookPath(t)}/messages/%40original`], 'nothing else');
  });

  it('past ~14 minutes: posts the same message in the channel with the bot token instead', async () => {
    const t = target(INTERACTION_TOKEN_USABLE_MS + 1_000);
    const from = fake.requests.length;
    const delivered = await delivery().deliver(t, reply);
    const post = await channelPost(from);
    assert.equal(post.authorization, 'Bot fake-bot-token');
    assert.deepEqual(post.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.match(post.body.content, /sheep on a green hill/);
    assert.equal(post.body.components.length, 2, 'the buttons too');
    assert.deepEqual(post.body.allowed_mentions, { parse: [] });
    assert.ok(!fake.requests.slice(from).some((r) => r.path.startsWith('/webhooks/')), 'the expired token is not used');
    const posted = [...fake.messages.values()].find((m) => m.attachments?.[0]?.filename === 'cvae-gen1.png' && !m.webhook_id);
    assert.deepEqual(delivered, [{ messageRef: posted.id }]);
  });

  it('a token Discord refuses early (Invalid Webhook Token) also falls back to the channel', async () => {
    const t = target(1_000);
    fake.expiredTokens.add(t.interactionToken);
    const from = fake.requests.length;
    const delivered = await delivery().deliver(t, reply);
    assert.ok(fake.requests.slice(from).some((r) => r.method === 'PATCH' && r.path.startsWith(webhookPath(t))), 'tried the webhook first');
    const post = await channelPost(from);
    assert.deepEqual(post.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.equal(delivered.length, 1);
  });

  it('apologise: within the token\'s life the placeholder goes and who asked is told privately', async () => {
    const t = target(1_000);
    const from = fake.requests.length;
    await delivery().apologise(t, 'Sorry, the worker failed twice. Please try again.');
    assert.deepEqual(requestsSince(from), [`DELETE ${webhookPath(t)}/messages/%40original`, `POST ${webhookPath(t)}`]);
    const follow = fake.requests.at(-1)!;
    assert.equal(follow.body.flags & EPHEMERAL, EPHEMERAL);
    assert.equal(follow.body.content, 'Sorry, the worker failed twice. Please try again.');
  });

  it('apologise: past the token\'s life, in the channel', async () => {
    const t = target(20 * 60_000);
    const from = fake.requests.length;
    await delivery().apologise(t, 'Sorry, it took too long.');
    const post = await channelPost(from);
    assert.equal(post.body.content, 'Sorry, it took too long.');
    assert.ok(!fake.requests.slice(from).some((r) => r.path.startsWith('/webhooks/')));
  });

  it('when the channel cannot be posted in either, the error reaches the caller (the job is retried)', async () => {
    const t = { ...target(1_000), channelId: '123' };
    fake.expiredTokens.add(t.interactionToken);
    await assert.rejects(delivery().deliver(t, reply), /Unknown Channel/);
  });

  it('training progress posts and then edits one status message with the REST-only client (no guild cached)', async () => {
    const sink = channelProgressSink(client, fake.channelId);
    const from = fake.requests.length;
    const ref = { runId: 'tiny-1', preset: 'tiny', epochs: 3, fraction: null };
    await sink.update({ ...ref, state: 'starting', resolution: null, trainSize: null });
    await sink.update({ ...ref, state: 'starting', resolution: 32, trainSize: 64 });
    const calls = fake.requests.slice(from).filter((r) => r.path.startsWith(`/channels/${fake.channelId}/messages`));
    assert.deepEqual(calls.map((r) => r.method), ['POST', 'PATCH']);
    assert.match(calls[0].body.content, /Training run `tiny-1` is starting/);
    assert.equal(calls[1].authorization, 'Bot fake-bot-token');
  });
});
