import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { SLASH_COMMANDS } from '../../../src/bot/slack/listeners/commands/index.js';
import { slackAppManifest } from '../../../src/bot/slack/manifest.js';
import { slackManifestText } from '../../../src/cli/commands/slack-manifest.js';

interface Manifest {
  features: { bot_user: { display_name: string }; slash_commands: { command: string; url?: string; should_escape: boolean }[] };
  oauth_config: { scopes: { bot: string[] } };
  settings: { event_subscriptions: { request_url?: string; bot_events: string[] }; interactivity: { is_enabled: boolean; request_url?: string }; socket_mode_enabled: boolean };
}

describe('slack app manifest', () => {
  it('declares the commands, scopes, events and request URLs the adapter serves (HTTP mode)', () => {
    const m = slackAppManifest({ baseUrl: 'https://bot.example.com/' }) as unknown as Manifest;
    assert.deepEqual(m.features.slash_commands.map((c) => c.command), Object.values(SLASH_COMMANDS));
    for (const c of m.features.slash_commands) assert.equal(c.url, 'https://bot.example.com/slack/events');
    assert.equal(m.features.slash_commands[0].should_escape, true, 'mentions in prompts arrive as <@U…> for the core to strip');
    for (const scope of ['commands', 'chat:write', 'files:write', 'files:read', 'reactions:read']) assert.ok(m.oauth_config.scopes.bot.includes(scope), scope);
    assert.deepEqual(m.settings.event_subscriptions, { request_url: 'https://bot.example.com/slack/events', bot_events: ['reaction_added', 'reaction_removed'] });
    assert.deepEqual(m.settings.interactivity, { is_enabled: true, request_url: 'https://bot.example.com/slack/events' });
    assert.equal(m.settings.socket_mode_enabled, false);
    assert.match(m.features.bot_user.display_name, /^[a-z0-9._-]+$/);
  });

  it('enables Socket Mode and leaves out URLs without a base URL', () => {
    const m = slackAppManifest() as unknown as Manifest;
    assert.equal(m.settings.socket_mode_enabled, true);
    assert.ok(m.features.slash_commands.every((c) => c.url === undefined));
    assert.equal(m.settings.event_subscriptions.request_url, undefined);
    assert.equal(m.settings.interactivity.request_url, undefined);
  });

  it('the CLI prints it as JSON and refuses a URL that is not one', () => {
    assert.deepEqual(JSON.parse(slackManifestText({ url: 'http://127.0.0.1:3000' })), slackAppManifest({ baseUrl: 'http://127.0.0.1:3000' }));
    assert.throws(() => slackManifestText({ url: 'bot.example.com' }), UserError);
  });
});
