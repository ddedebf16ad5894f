/**
 * `npm start` with DISCORD_PUBLIC_KEY: the app serves POST /discord/interactions on its HTTP port, and
 * DISCORD_GATEWAY decides whether the process also logs into the gateway (reactions need one process that does).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FakeDiscord } from '../../fakes/discord-server.js';
import { discordGatewayEnabled } from '../../../src/bot/discord/index.js';
import { addTinyModel, PNG_MAGIC, request, startTestApp, tempDataDir } from '../../app/helpers.js';
import { discordKeyPair } from './http-keys.js';

describe('discordGatewayEnabled', () => {
  it('on by default; off only with DISCORD_GATEWAY=0 where commands can come over HTTP', () => {
    const key = 'ab'.repeat(32);
    assert.equal(discordGatewayEnabled({ discord: true }), true);
    assert.equal(discordGatewayEnabled({ discord: true, DISCORD_PUBLIC_KEY: key }), true, 'reactions still need it');
    assert.equal(discordGatewayEnabled({ discord: true, DISCORD_PUBLIC_KEY: key, DISCORD_GATEWAY: false }), false);
    assert.equal(discordGatewayEnabled({ discord: true, DISCORD_GATEWAY: false }), true, 'no other way in for commands');
    assert.equal(discordGatewayEnabled({ discord: true, DISCORD_PUBLIC_KEY: key, DISCORD_GATEWAY: true }), true);
    assert.equal(discordGatewayEnabled({ discord: false, DISCORD_GATEWAY: true }), false, 'Discord not configured');
  });
});

describe('app with DISCORD_PUBLIC_KEY', () => {
  let fake: FakeDiscord;
  let dataDir: string;
  const keys = discordKeyPair();
  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    dataDir = tempDataDir('discord-http-app-');
    await addTinyModel(dataDir, 'tiny-http');
  });
  after(async () => {
    await fake?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) => ({
    DISCORD_TOKEN: 'fake-bot-token', DISCORD_APPLICATION_ID: fake.applicationId, DISCORD_API_URL: fake.apiUrl,
    DISCORD_PUBLIC_KEY: keys.publicKeyHex, ...extra,
  });
  const signed = (json: unknown) => {
    const body = JSON.stringify(json);
    const ts = String(Math.floor(Date.now() / 1000));
    return { 'x-signature-ed25519': keys.sign(ts, body), 'x-signature-timestamp': ts, body };
  };

  it('DISCORD_GATEWAY=0: no gateway login; /imagine over HTTP is deferred and answered with the grid through the webhook', async () => {
    const from = fake.requests.length;
    const app = await startTestApp(dataDir, env({ DISCORD_GATEWAY: '0' }));
    try {
      assert.ok(!fake.requests.slice(from).some((r) => r.path === '/gateway/bot'), 'never asked for the gateway');
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.json.checks.discord, undefined);
      const json = fake.slashCommandJson({ id: '100000000000000001', username: 'alice' }, 'imagine', [{ name: 'prompt', type: 3, value: 'cows in snow' }]);
      const { body, ...headers } = signed(json);
      const res = await request(app, 'POST', '/discord/interactions', body, headers);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { type: 5 });
      const patch = await fake.waitForRequest((r) => r.method === 'PATCH' && r.path === `/webhooks/${fake.applicationId}/${json.token}/messages/%40original` && r.files.length > 0);
      assert.deepEqual(patch.files[0].data.subarray(0, 8), PNG_MAGIC);
      assert.match(patch.body.content, /cows in snow/);
      const unsigned = await request(app, 'POST', '/discord/interactions', body, { 'x-signature-ed25519': 'ab'.repeat(64), 'x-signature-timestamp': headers['x-signature-timestamp'] });
      assert.equal(unsigned.status, 401);
    } finally {
      await app.stop();
    }
  });

  it('by default the same process also holds the gateway (for reactions) and answers PINGs over HTTP', async () => {
    const app = await startTestApp(dataDir, env());
    try {
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.json.checks.discord.ok, true, JSON.stringify(health.json));
      const { body, ...headers } = signed({ type: 1, id: '1', application_id: fake.applicationId, token: 'x', version: 1 });
      assert.deepEqual((await request(app, 'POST', '/discord/interactions', body, headers)).json, { type: 1 });
    } finally {
      await app.stop();
    }
  });
});
