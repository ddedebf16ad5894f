/**
 * No secret reaches a log line, whatever its shape: an axios-style error with `config.headers.Authorization`,
 * a request with `headers.authorization`, tokens nested deep in objects and arrays, tokens inside message
 * strings and error messages, and what Bolt logs through our adapter (its objects stay objects). The process's
 * real logger (src/log.ts) runs in a child process and its stderr is searched for every secret.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { trainingChildEnv } from '../src/bot/core/training-env.js';

const SECRETS = {
  slackBot: 'xoxb-1111111111-2222222222-AbCdEfGhIjKlMnOpQrStUvWx',
  slackApp: 'xapp-1-A0123-4567-abcdefabcdef0123456789',
  discord: 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB',
  signing: 'signing-secret-0123456789abcdef',
  playground: 'playground-admin-token-0123456789abcdef',
  responseUrl: 'https://hooks.slack.com/commands/T0123/456789/AbCdEfGhIjKlMnOp',
  bare: 'plain-opaque-value-9f8e7d6c5b4a',
  dbPassword: 'db-password-5e4d3c2b1a09',
};

const SCRIPT = `
import { childLogger } from './src/log.ts';
import { boltLogger } from './src/bot/slack/bolt-logger.ts';
const S = JSON.parse(process.env.TEST_SECRETS);
const log = childLogger('redaction-test');
// 1. an axios error as @slack/web-api or discord.js REST would throw it
const axiosErr = Object.assign(new Error('Request failed with status code 401'), {
  config: { url: 'https://slack.com/api/chat.postMessage', headers: { Authorization: 'Bearer ' + S.slackBot, 'User-Agent': 'x' }, data: 'token=' + S.slackBot },
  request: { _header: 'POST /api HTTP/1.1\\r\\nAuthorization: Bearer ' + S.slackBot },
  response: { status: 401, config: { headers: { Authorization: 'Bearer ' + S.slackBot } }, data: { ok: false, error: 'invalid_auth' } },
});
log.error({ err: axiosErr }, 'slack call failed');
log.error(axiosErr);
// 2. an incoming request
log.warn({ req: { method: 'POST', url: '/slack/events', headers: { authorization: 'Bot ' + S.discord, 'x-slack-signature': 'v0=' + S.signing, cookie: 'sid=' + S.bare } } }, 'request');
// 3. tokens nested in objects and arrays, under many key spellings
log.info({ a: { b: { c: { d: { e: { token: S.bare, botToken: S.slackBot, bot_token: S.slackBot, appToken: S.slackApp } } } } },
  list: [{ credentials: { password: S.bare } }, { signingSecret: S.signing }], options: { clientOptions: { headers: { Authorization: S.bare } } },
  config: { DISCORD_TOKEN: S.discord, SLACK_SIGNING_SECRET: S.signing, PLAYGROUND_ADMIN_TOKEN: S.playground }, response_url: S.responseUrl,
  maxTokens: 77, prompt: 'cows in snow' }, 'nested');
// 4. secrets inside strings
log.info('posting with ' + S.slackBot + ' and ' + S.discord + ' to ' + S.responseUrl);
log.warn({ reason: 'auth failed for Bearer ' + S.bare }, 'in a field');
log.error({ err: new Error('An API error occurred: invalid_auth (token ' + S.slackApp + ')') }, 'message');
// 5. Bolt, through our adapter: strings and objects as Bolt passes them
const bolt = boltLogger();
bolt.error('bolt error', { headers: { Authorization: 'Bearer ' + S.slackBot }, token: S.slackBot });
bolt.warn('http request', { url: S.responseUrl, body: { token: S.bare } }, 'tail');
bolt.info(axiosErr);
// 6. a database URL, as a config value and inside a driver's error message
log.info({ config: { DATABASE_URL: 'postgres://cvae:' + S.dbPassword + '@db:5432/cvae' }, connectionString: 'postgresql://cvae:' + S.dbPassword + '@db/cvae' }, 'database');
log.error({ err: new Error('connect failed for postgres://cvae:' + S.dbPassword + '@10.0.0.5:5432/cvae') }, 'database down');
`;

describe('log redaction', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    env: { ...process.env, LOG_LEVEL: 'debug', TEST_SECRETS: JSON.stringify(SECRETS), NODE_TEST_CONTEXT: '' },
    encoding: 'utf8',
  });
  const lines = run.stderr.split('\n').filter((l) => l.startsWith('{'));

  it('logs every shape, as JSON', () => {
    assert.equal(run.status, 0, run.stderr);
    assert.equal(lines.length, 12, run.stderr);
    for (const l of lines) JSON.parse(l);
  });

  it('finds no secret in any line', () => {
    for (const [name, secret] of Object.entries(SECRETS)) {
      const hit = lines.find((l) => l.includes(secret) || l.includes(secret.slice(-16)));
      assert.equal(hit, undefined, `${name} leaked: ${hit}`);
    }
  });

  it('keeps what is not secret, and Bolt\'s objects as objects', () => {
    const nested = JSON.parse(lines.find((l) => l.includes('"nested"'))!);
    assert.equal(nested.maxTokens, 77);
    assert.equal(nested.prompt, 'cows in snow');
    assert.equal(nested.a.b.c.d.e.token, '[redacted]');
    const first = JSON.parse(lines[0]);
    assert.equal(first.err.message, 'Request failed with status code 401');
    assert.equal(first.err.response.status, 401);
    const bolt = JSON.parse(lines.find((l) => l.includes('"bolt error"'))!);
    assert.equal(bolt.module, 'slack-bolt');
    assert.equal(typeof bolt.detail, 'object', 'the object Bolt passed is logged as an object');
    assert.equal(bolt.detail.headers.Authorization, '[redacted]');
    const boltErr = JSON.parse(lines.find((l) => l.includes('"slack-bolt"') && l.includes('status code 401'))!);
    assert.equal(boltErr.err.type, 'Error');
  });
});

describe('training child environment', () => {
  it('passes what training needs and none of the chat or playground secrets', () => {
    const env = trainingChildEnv({
      PATH: '/usr/bin', HOME: '/root', DATA_DIR: '/data', CLIP_MODEL: 'x', CLIP_CACHE_DIR: '/c', HF_ENDPOINT: 'h', HF_HUB_OFFLINE: '1',
      TFJS_BACKEND: 'wasm', TF_FORCE_GPU_ALLOW_GROWTH: 'true', CUDA_CACHE_PATH: '/c', LD_LIBRARY_PATH: '/l', NODE_OPTIONS: '--max-old-space-size=4096',
      LOG_LEVEL: 'info', HTTPS_PROXY: 'http://proxy:3128',
      DISCORD_TOKEN: SECRETS.discord, DISCORD_APPLICATION_ID: '1', SLACK_BOT_TOKEN: SECRETS.slackBot, SLACK_SIGNING_SECRET: SECRETS.signing,
      SLACK_APP_TOKEN: SECRETS.slackApp, PLAYGROUND_ADMIN_TOKEN: SECRETS.playground, AWS_SECRET_ACCESS_KEY: SECRETS.bare, ADMIN_USER_IDS: 'discord:1',
    });
    for (const k of ['PATH', 'HOME', 'DATA_DIR', 'CLIP_MODEL', 'CLIP_CACHE_DIR', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'TFJS_BACKEND', 'TF_FORCE_GPU_ALLOW_GROWTH',
      'CUDA_CACHE_PATH', 'LD_LIBRARY_PATH', 'NODE_OPTIONS', 'LOG_LEVEL', 'HTTPS_PROXY']) assert.ok(k in env, `${k} is passed`);
    for (const k of ['DISCORD_TOKEN', 'DISCORD_APPLICATION_ID', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'PLAYGROUND_ADMIN_TOKEN',
      'AWS_SECRET_ACCESS_KEY', 'ADMIN_USER_IDS']) assert.ok(!(k in env), `${k} is not passed`);
  });
});
