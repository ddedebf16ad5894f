/**
 * Discord interactions over HTTP end to end: signed requests (a key pair made here) to POST /discord/interactions
 * on the real HTTP server, the real bot core (tiny CLIP and checkpoint), and the answers through the interaction
 * webhook of the fake Discord. Scaled mode is driven with a recording JobSubmitter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from 'discord.js';
import { FakeDiscord, type FakeUser, type RecordedRequest } from '../../fakes/discord-server.js';
import { HttpServer } from '../../../src/http/server.js';
import { createDiscordInteractions, DISCORD_INTERACTIONS_PATH, type DiscordInteractions } from '../../../src/bot/discord/interactions-http.js';
import { createDiscordReplyDelivery, createDiscordRestClient } from '../../../src/bot/discord/webhook-delivery.js';
import { channelProgressSink } from '../../../src/bot/discord/progress-sink.js';
import { decodeCancelCustomId, decodeCustomId } from '../../../src/bot/discord/components.js';
import { UserError } from '../../../src/errors.js';
import type { GenerationAsk, JobReceipt, JobSubmitter, ReplyTarget } from '../../../src/bot/core/jobs-types.js';
import type { Actor, BotCore } from '../../../src/bot/core/types.js';
import { createE2eCore, type E2eCore } from '../helpers.js';
import { discordKeyPair } from './http-keys.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const EPHEMERAL = 64;
const alice: FakeUser = { id: '100000000000000001', username: 'alice' };
const bob: FakeUser = { id: '100000000000000002', username: 'bob' };
const boss: FakeUser = { id: '100000000000000009', username: 'boss' };

/** A JobSubmitter that records what it is asked (scaled mode without PostgreSQL). */
class RecordingJobs implements JobSubmitter {
  submitted: { actor: Actor; ask: GenerationAsk; target: ReplyTarget; requestKey: string }[] = [];
  cancelled: { actor: Actor; requestId: string }[] = [];
  receipt: Omit<JobReceipt, 'requestId'> = { position: 2, predictedWaitS: 4.6, duplicate: false };
  refuse: string | null = null;
  async submit(actor: Actor, ask: GenerationAsk, target: ReplyTarget, requestKey: string): Promise<JobReceipt> {
    if (this.refuse) throw new UserError(this.refuse);
    this.submitted.push({ actor, ask, target, requestKey });
    return { requestId: `req_${this.submitted.length}`, ...this.receipt };
  }
  async cancel(actor: Actor, requestId: string): Promise<string> {
    if (actor.userId !== alice.id) throw new UserError('Only who asked can cancel it.');
    this.cancelled.push({ actor, requestId });
    return 'Cancelled: your request will not be drawn.';
  }
}

describe('Discord interactions over HTTP', () => {
  let fake: FakeDiscord;
  let env: E2eCore;
  let rest: Client;
  let server: HttpServer;
  let endpoint: string;
  let interactions: DiscordInteractions;
  let core: BotCore | null = null;
  let jobs: RecordingJobs | null = null;
  const keys = discordKeyPair();

  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    env = await createE2eCore({ admins: [`discord:${boss.id}`], adminGuilds: [fake.guildId], queue: { perUserWaiting: 0 } });
    core = env.core;
    rest = createDiscordRestClient({ DISCORD_TOKEN: 'fake-bot-token', DISCORD_API_URL: fake.apiUrl });
    interactions = createDiscordInteractions({
      publicKey: keys.publicKeyHex, core: () => core, jobs: () => jobs,
      delivery: createDiscordReplyDelivery({ client: rest }),
      progressSink: (channelId) => channelProgressSink(rest, channelId),
    });
    server = new HttpServer({ routes: [interactions.route()] });
    const addr = await server.listen('127.0.0.1', 0);
    endpoint = `http://127.0.0.1:${addr.port}${DISCORD_INTERACTIONS_PATH}`;
  });

  after(async () => {
    await interactions?.idle();
    await server?.close();
    await rest?.destroy();
    await env?.close();
    await fake?.close();
  });

  /** POSTs an interaction as Discord does: signed with the application's key, timestamp in seconds. */
  async function post(json: unknown, opts: { signature?: string | null; timestamp?: string | null; body?: string } = {}) {
    const body = opts.body ?? JSON.stringify(json);
    const timestamp = opts.timestamp === undefined ? String(Math.floor(Date.now() / 1000)) : opts.timestamp;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (timestamp !== null) headers['x-signature-timestamp'] = timestamp;
    const signature = opts.signature === undefined ? keys.sign(timestamp ?? '', body) : opts.signature;
    if (signature !== null) headers['x-signature-ed25519'] = signature;
    const t0 = performance.now();
    const res = await fetch(endpoint, { method: 'POST', headers, body });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null, ms: performance.now() - t0 };
  }

  const option = (name: string, value: string | number) => ({ name, type: typeof value === 'number' ? 4 : 3, value });
  const webhook = (token: string) => `/webhooks/${fake.applicationId}/${token}`;
  const isOriginal = (token: string, method = 'PATCH') => (r: RecordedRequest) => r.method === method && r.path === `${webhook(token)}/messages/%40original`;
  const isFollowUp = (token: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === webhook(token);
  const imageReply = (token: string) => fake.waitForRequest((r) => isOriginal(token)(r) && r.files.length > 0);

  it('answers a PING with a PONG', async () => {
    const res = await post({ type: 1, id: '1', application_id: fake.applicationId, token: 'x', version: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { type: 1 });
  });

  it('refuses with 401: a bad signature, a signature of another body, missing headers, a stale timestamp', async () => {
    const ping = { type: 1, id: '1', application_id: fake.applicationId, token: 'x', version: 1 };
    const other = discordKeyPair();
    const ts = String(Math.floor(Date.now() / 1000));
    assert.equal((await post(ping, { signature: other.sign(ts, JSON.stringify(ping)), timestamp: ts })).status, 401, 'another key');
    assert.equal((await post(ping, { signature: keys.sign(ts, '{"type":1}'), timestamp: ts })).status, 401, 'another body');
    assert.equal((await post(ping, { signature: 'ab'.repeat(64) })).status, 401, 'garbage');
    assert.equal((await post(ping, { signature: null })).status, 401, 'no signature');
    assert.equal((await post(ping, { timestamp: null })).status, 401, 'no timestamp');
    const stale = String(Math.floor(Date.now() / 1000) - 6 * 60);
    const res = await post(ping, { timestamp: stale });
    assert.equal(res.status, 401, 'signed correctly, but 6 minutes old');
    assert.deepEqual(res.json, { error: 'invalid request signature' });
  });

  it('refuses oversized bodies (413), bad JSON and malformed interactions (400), other methods (405)', async () => {
    assert.equal((await post(null, { body: `{"type":1,"pad":"${'x'.repeat(300 * 1024)}"}` })).status, 413);
    assert.equal((await post(null, { body: '{"type":' })).status, 400);
    const res = await post({ type: 2, id: '1', application_id: fake.applicationId, token: 'x' });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json, { error: 'Malformed interaction.' });
    assert.equal((await fetch(endpoint)).status, 405);
  });

  let generationId = '';
  let messageId = '';

  it('/imagine: deferred within 3 s, then the grid PNG and buttons arrive through the webhook', async (t) => {
    const json = fake.slashCommandJson(alice, 'imagine', [option('prompt', 'sheep on a green hill'), option('count', 2), option('seed', 7)]);
    const res = await post(json);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { type: 5 }, 'deferred, visible to the channel');
    assert.ok(res.ms < 3000, `deferred in ${res.ms.toFixed(0)} ms`);
    const t0 = performance.now();
    const patch = await imageReply(json.token);
    t.diagnostic(`deferred response in ${res.ms.toFixed(0)} ms; the webhook edit with the grid ${(performance.now() - t0).toFixed(0)} ms later`);
    assert.equal(patch.authorization, undefined, 'through the interaction webhook');
    assert.deepEqual(patch.files[0].data.subarray(0, 8), PNG_MAGIC);
    assert.match(patch.body.content, /sheep on a green hill.*seeds 7–8.*asked by <@100000000000000001>$/);
    const decoded = patch.body.components.flatMap((row: any) => row.components.map((c: any) => decodeCustomId(c.custom_id)));
    assert.deepEqual(decoded.map((d: any) => d.action), ['reroll', 'vary', 'image', 'image']);
    generationId = decoded[0].generationId;
    messageId = fake.messages.get(`original:${json.token}`)!.id;
    await interactions.idle();
    const row = await env.store.generations.get(generationId);
    assert.equal(row?.messageRef, messageId, 'the message is recorded for reactions');
    assert.equal(row?.userId, alice.id);
    assert.equal(row?.workspaceId, fake.guildId);
  });

  it('buttons: Reroll answers with a new grid; Image 2 with one image, recorded for that image', async () => {
    const reroll = fake.buttonJson(bob, `gen:reroll:${generationId}`, messageId);
    const res = await post(reroll);
    assert.deepEqual(res.json, { type: 5 });
    assert.ok(res.ms < 3000);
    const rr = await imageReply(reroll.token);
    assert.match(rr.body.content, /sheep on a green hill/);
    assert.doesNotMatch(rr.body.content, /seeds 7–8/);
    assert.match(rr.body.content, /asked by <@100000000000000002>$/);
    const single = fake.buttonJson(bob, `gen:image:${generationId}:1`, messageId);
    assert.deepEqual((await post(single)).json, { type: 5 });
    const s = await imageReply(single.token);
    assert.match(s.body.content, /seed 8 /);
    assert.equal(s.files[0].name, `cvae-${generationId}-2.png`);
    await interactions.idle();
    const singleMessage = fake.messages.get(`original:${single.token}`)!.id;
    const found = await env.store.generations.byMessage('discord', singleMessage);
    assert.equal(found?.imageIndex, 1);
  });

  it('a bad prompt: the public placeholder goes and the reason is shown privately', async () => {
    const json = fake.slashCommandJson(alice, 'imagine', [option('prompt', '<@100000000000000002> 🐄')]);
    assert.deepEqual((await post(json)).json, { type: 5 });
    const follow = await fake.waitForRequest(isFollowUp(json.token));
    assert.equal(follow.body.flags & EPHEMERAL, EPHEMERAL);
    assert.match(follow.body.content, /only mentions or emoji/);
    assert.ok(fake.requests.some(isOriginal(json.token, 'DELETE')));
  });

  it('/train from a non-admin is refused privately; Manage Server in an admin guild counts, as over the gateway', async () => {
    const start = fake.slashCommandJson(alice, 'train', [{ name: 'start', type: 1, options: [option('preset', 'tiny')] }], { manageGuild: false });
    const res = await post(start);
    assert.deepEqual(res.json, { type: 5, data: { flags: EPHEMERAL } }, 'deferred privately');
    const edit = await fake.waitForRequest(isOriginal(start.token));
    assert.match(edit.body.content, /only bot admins can use `\/train start`/);
    assert.equal(env.training.busy, false);
    // Manage Server in an admin guild makes an admin (as over the gateway): /model list answers.
    const list = fake.slashCommandJson(bob, 'model', [{ name: 'list', type: 1 }], { manageGuild: true });
    await post(list);
    assert.match((await fake.waitForRequest(isOriginal(list.token))).body.content, new RegExp(`▶ \`${env.modelName}\``));
    const denied = fake.slashCommandJson(bob, 'model', [{ name: 'list', type: 1 }]);
    await post(denied);
    assert.match((await fake.waitForRequest(isOriginal(denied.token))).body.content, /only bot admins/);
  });

  it('unknown commands and buttons, and commands while the core is loading, get a private note at once', async () => {
    const unknown = await post(fake.slashCommandJson(alice, 'paint', []));
    assert.equal(unknown.json.type, 4);
    assert.equal(unknown.json.data.flags, EPHEMERAL);
    assert.match(unknown.json.data.content, /register-commands/);
    const button = await post(fake.buttonJson(alice, 'something:else', messageId));
    assert.match(button.json.data.content, /does not work any more/);
    const loaded = core;
    core = null;
    try {
      const starting = await post(fake.slashCommandJson(alice, 'imagine', [option('prompt', 'a cow')]));
      assert.equal(starting.json.type, 4);
      assert.match(starting.json.data.content, /still starting/);
      assert.deepEqual((await post({ type: 1, id: '1', application_id: fake.applicationId, token: 'x' })).json, { type: 1 }, 'PING still works');
    } finally {
      core = loaded;
    }
  });

  describe('scaled mode (a JobSubmitter)', () => {
    before(() => { jobs = new RecordingJobs(); });
    after(() => { jobs = null; });

    let queuedToken = '';
    let requestId = '';

    it('/imagine is submitted as a job keyed by the interaction id; the deferred reply shows the queue and a Cancel button', async () => {
      const json = fake.slashCommandJson(alice, 'imagine', [option('prompt', 'a goat'), option('seed', 3)]);
      const res = await post(json);
      assert.deepEqual(res.json, { type: 5 });
      assert.ok(res.ms < 3000);
      const edit = await fake.waitForRequest(isOriginal(json.token));
      assert.equal(edit.body.content, 'Queued, number 2 in line (about 5 s). Your images will be posted here.');
      const [button] = edit.body.components[0].components;
      assert.equal(button.label, 'Cancel');
      requestId = decodeCancelCustomId(button.custom_id)!;
      assert.equal(requestId, 'req_1');
      const sub = jobs!.submitted[0];
      assert.equal(sub.requestKey, `discord:${json.id}`);
      assert.deepEqual(sub.ask, { kind: 'imagine', options: { prompt: 'a goat', seed: 3 } });
      assert.deepEqual(sub.actor, { platform: 'discord', workspaceId: fake.guildId, channelId: fake.channelId, userId: alice.id, platformAdmin: false });
      assert.equal(sub.target.platform, 'discord');
      if (sub.target.platform === 'discord') {
        assert.deepEqual({ ...sub.target, receivedAt: 0 }, { platform: 'discord', applicationId: fake.applicationId, interactionToken: json.token, channelId: fake.channelId, receivedAt: 0 });
        assert.ok(Math.abs(sub.target.receivedAt - Date.now()) < 10_000);
      }
      queuedToken = json.token;
    });

    it('Cancel by someone else is refused privately; by who asked, the notice becomes the outcome', async () => {
      const queuedMessage = fake.messages.get(`original:${queuedToken}`)!.id;
      const other = fake.buttonJson(bob, `job:cancel:${requestId}`, queuedMessage);
      assert.deepEqual((await post(other)).json, { type: 6 }, 'deferred update of the notice');
      const refusal = await fake.waitForRequest(isFollowUp(other.token));
      assert.equal(refusal.body.flags & EPHEMERAL, EPHEMERAL);
      assert.equal(refusal.body.content, 'Only who asked can cancel it.');
      const mine = fake.buttonJson(alice, `job:cancel:${requestId}`, queuedMessage);
      const res = await post(mine);
      assert.deepEqual(res.json, { type: 6 });
      assert.ok(res.ms < 3000);
      const edit = await fake.waitForRequest(isOriginal(mine.token));
      assert.equal(edit.body.content, 'Cancelled: your request will not be drawn.');
      assert.deepEqual(edit.body.components, [], 'the Cancel button goes');
      assert.deepEqual(jobs!.cancelled.map((c) => [c.actor.userId, c.requestId]), [[alice.id, 'req_1']]);
    });

    it('Reroll and Variations are jobs too; a short predicted wait or a duplicate shows no notice', async () => {
      jobs!.receipt = { position: 1, predictedWaitS: 0.4, duplicate: false };
      const reroll = fake.buttonJson(bob, `gen:reroll:${generationId}`, messageId);
      assert.deepEqual((await post(reroll)).json, { type: 5 });
      const vary = fake.buttonJson(bob, `gen:vary:${generationId}`, messageId);
      jobs!.receipt = { position: 4, predictedWaitS: 30, duplicate: true };
      await post(vary);
      await interactions.idle();
      assert.deepEqual(jobs!.submitted.slice(1).map((s) => [s.ask, s.requestKey]), [
        [{ kind: 'reroll', generationId }, `discord:${reroll.id}`],
        [{ kind: 'variations', generationId }, `discord:${vary.id}`],
      ]);
      assert.ok(!fake.requests.some((r) => r.path.startsWith(webhook(reroll.token)) || r.path.startsWith(webhook(vary.token))),
        'the worker edits the deferred reply; the ingress leaves it alone');
    });

    it('a refusal at admission (limit, wait too long, no worker) is shown privately', async () => {
      jobs!.refuse = 'Sorry, no worker is running right now. Try again in a moment.';
      try {
        const json = fake.slashCommandJson(alice, 'imagine', [option('prompt', 'a sheep')]);
        assert.deepEqual((await post(json)).json, { type: 5 });
        const follow = await fake.waitForRequest(isFollowUp(json.token));
        assert.equal(follow.body.content, 'Sorry, no worker is running right now. Try again in a moment.');
        assert.equal(follow.body.flags & EPHEMERAL, EPHEMERAL);
        assert.ok(fake.requests.some(isOriginal(json.token, 'DELETE')));
      } finally {
        jobs!.refuse = null;
      }
    });
  });

  it('Cancel without a job queue says so privately', async () => {
    const json = fake.buttonJson(alice, 'job:cancel:req_9', messageId);
    assert.deepEqual((await post(json)).json, { type: 6 });
    assert.match((await fake.waitForRequest(isFollowUp(json.token))).body.content, /nothing to cancel/);
  });
});
