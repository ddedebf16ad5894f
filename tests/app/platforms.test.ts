/**
 * With chat tokens, `npm start` runs the configured platform (here Discord against the local fake REST API
 * and gateway) and /healthz counts it: ready once the gateway is connected. The playground is off unless
 * PLAYGROUND=1 asks for it; the health and metrics port listens either way.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FakeDiscord } from '../fakes/discord-server.js';
import { addTinyModel, request, startTestApp, tempDataDir } from './helpers.js';

describe('app with a chat platform configured', () => {
  let fake: FakeDiscord;
  let dataDir: string;
  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    dataDir = tempDataDir('web-platforms-');
    await addTinyModel(dataDir, 'tiny-platforms');
  });
  after(async () => {
    await fake?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const discordEnv = () => ({ DISCORD_TOKEN: 'fake-bot-token', DISCORD_APPLICATION_ID: '100000000000000100', DISCORD_API_URL: fake.apiUrl });

  it('runs Discord, reports it in /healthz, and serves no playground unless asked', async () => {
    const app = await startTestApp(dataDir, discordEnv());
    try {
      assert.equal(app.playground, null);
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.status, 200, JSON.stringify(health.json));
      assert.equal(health.json.checks.discord.ok, true);
      assert.match(health.json.checks.discord.detail, /^connected/);
      assert.equal(health.json.checks.playground, undefined);
      assert.equal((await request(app, 'GET', '/')).status, 404);
      assert.equal((await request(app, 'POST', '/api/command', { text: 'cows' })).status, 404);
      assert.equal((await request(app, 'GET', '/metrics')).status, 200);
    } finally {
      await app.stop();
    }
  });

  it('serves the playground beside the bot with PLAYGROUND=1', async () => {
    const app = await startTestApp(dataDir, { ...discordEnv(), PLAYGROUND: '1' });
    try {
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.status, 200, JSON.stringify(health.json));
      assert.equal(health.json.checks.discord.ok, true);
      assert.equal(health.json.checks.playground.ok, true);
      assert.equal((await request(app, 'GET', '/')).status, 200);
    } finally {
      await app.stop();
    }
  });
});
