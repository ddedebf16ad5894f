import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/env.js';
import { UserError } from '../../src/errors.js';

const discord = { DISCORD_TOKEN: 'secret-token-value', DISCORD_APPLICATION_ID: '123456789012345678' };

function problems(env: Record<string, string>, opts?: Parameters<typeof loadConfig>[1]): string {
  try {
    loadConfig(env, opts);
  } catch (err) {
    assert.ok(err instanceof UserError);
    return err.message;
  }
  assert.fail('expected a configuration error');
}

describe('loadConfig', () => {
  it('accepts a Discord-only configuration with defaults', () => {
    const c = loadConfig({ ...discord, ADMIN_USER_IDS: 'discord:123456789012345678, slack:U456ABC' });
    assert.equal(c.discord, true);
    assert.equal(c.slack, false);
    assert.deepEqual(c.ADMIN_USER_IDS, ['discord:123456789012345678', 'slack:U456ABC']);
    assert.equal(c.SLACK_PORT, 3000);
    assert.equal(c.LOG_LEVEL, 'info');
    assert.equal(c.CLIP_MODEL, 'Xenova/clip-vit-base-patch32');
  });

  it('accepts both platforms and API URLs', () => {
    const c = loadConfig({ ...discord, SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_PORT: '8080',
      DISCORD_API_URL: 'http://127.0.0.1:5000/api', SLACK_API_URL: 'http://127.0.0.1:5001/api/' });
    assert.equal(c.slack, true);
    assert.equal(c.SLACK_PORT, 8080);
    assert.equal(c.DISCORD_API_URL, 'http://127.0.0.1:5000/api');
  });

  it('gives one line per bad value, without echoing secrets', () => {
    const msg = problems({ ...discord, DISCORD_GUILD_ID: 'abc', SLACK_BOT_TOKEN: 'nope-secret', SLACK_SIGNING_SECRET: 'x',
      SLACK_PORT: '99999', ADMIN_USER_IDS: 'discord:1234567,bob', LOG_LEVEL: 'loud', DISCORD_API_URL: 'not a url' });
    const lines = msg.split('\n').slice(1);
    assert.equal(lines.length, 6, msg);
    assert.match(msg, /DISCORD_GUILD_ID: must be a Discord id/);
    assert.match(msg, /SLACK_BOT_TOKEN: must be a bot token starting with xoxb-/);
    assert.match(msg, /SLACK_PORT: must be 1 to 65535/);
    assert.match(msg, /ADMIN_USER_IDS: "bob" is not a platform-prefixed user id/);
    assert.match(msg, /LOG_LEVEL: must be one of/);
    assert.match(msg, /DISCORD_API_URL: must be a URL/);
    assert.doesNotMatch(msg, /nope-secret|secret-token-value/);
  });

  it('explains a half-configured platform and a missing one', () => {
    assert.match(problems({ DISCORD_TOKEN: 't' }), /DISCORD_APPLICATION_ID: is missing/);
    assert.match(problems({ SLACK_SIGNING_SECRET: 's' }), /SLACK_BOT_TOKEN: is missing/);
    assert.match(problems({}), /no platform configured/);
    assert.match(problems({ ...discord }, { require: ['slack'] }), /SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: are needed/);
    assert.equal(loadConfig({ DISCORD_TOKEN: '  ', ...{ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' } }).discord, false, 'blank counts as unset');
  });
});
