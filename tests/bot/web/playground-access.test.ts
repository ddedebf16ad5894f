/**
 * The playground on a network bind (HOST=0.0.0.0, as the Docker images set): admin only on a loopback bind or
 * with PLAYGROUND_ADMIN_TOKEN, a Host allow-list in every mode (DNS rebinding), a same-origin Origin on every
 * state-changing request, a warning when reachable from the network, and `/model use` under the same rule.
 * The playground runs over a core that uses the real AdminPolicy (admins: web:local), served on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { HttpServer } from '../../../src/http/server.js';
import { AdminPolicy } from '../../../src/bot/core/admin.js';
import type { Actor, BotCore } from '../../../src/bot/core/types.js';
import { Playground } from '../../../src/bot/web/playground.js';
import { PlaygroundAccess, playgroundAccessFrom } from '../../../src/bot/web/playground-access.js';
import { UserError } from '../../../src/errors.js';

const TOKEN = 'c0ffee-playground-admin-token-0123456789';

/** A core whose admin commands go through the real AdminPolicy and are recorded. */
function fakeCore(calls: { what: string; actor: string }[]): BotCore {
  const admins = new AdminPolicy(['web:local']);
  const admin = async (actor: Actor, what: string, answer: string) => {
    admins.require(actor, what);
    calls.push({ what, actor: `${actor.platform}:${actor.userId}` });
    return answer;
  };
  const never = () => { throw new UserError('not in this test'); };
  return {
    imagine: never, reroll: never, variations: never, singleImage: never, attachMessage: async () => undefined, recordReaction: async () => false,
    trainStart: (actor) => admin(actor, '/train start', 'Started training run `x`.'),
    trainStatus: async (actor) => { admins.require(actor, '/train status'); return 'No training run is going.'; },
    trainStop: (actor) => admin(actor, '/train stop', 'No training run is going.'),
    modelList: (actor) => admin(actor, '/model list', 'Models: none'),
    modelUse: (actor, name) => admin(actor, '/model use', `Now serving \`${name}\`.`),
  };
}

/** A raw request with any Host and Origin (fetch cannot set Host). */
function raw(port: number, method: string, p: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: { ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let json: any = null;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, json });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function serve(bindHost: string, env: Record<string, string>, calls: { what: string; actor: string }[]) {
  const server = new HttpServer({ routes: [] });
  const core = fakeCore(calls);
  const access = new PlaygroundAccess(playgroundAccessFrom(env, bindHost));
  const playground = new Playground({
    core: () => core, unavailableReason: () => 'loading', status: async () => ({ ready: true, reason: null, model: null }),
    trainingBusy: () => false, noModelHelp: async () => null, presets: ['tiny'], trackStream: (res) => server.trackStream(res),
    loopbackOnly: access.loopbackOnly, access,
  });
  server.addRoute(playground.route());
  const addr = await server.listen('127.0.0.1', 0);
  return { server, playground, port: addr.port, access };
}

/** Waits for the text of a playground message once it has settled. */
async function replyText(port: number, host: string, id: string): Promise<{ state: string; text: string }> {
  for (let i = 0; i < 100; i++) {
    const r = await raw(port, 'GET', `/api/messages/${id}`, { host });
    if (r.json && r.json.state !== 'working' && r.json.state !== 'queued') return r.json;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('no reply');
}

describe('playground bound to the network (HOST=0.0.0.0)', () => {
  const calls: { what: string; actor: string }[] = [];
  let ctx: Awaited<ReturnType<typeof serve>>;
  let host: string;
  let origin: string;

  before(async () => {
    ctx = await serve('0.0.0.0', { PLAYGROUND_ADMIN_TOKEN: TOKEN, PLAYGROUND_ALLOWED_HOSTS: 'bot.example.org' }, calls);
    host = `bot.example.org:${ctx.port}`;
    origin = `http://${host}`;
  });
  after(async () => { ctx.playground.close(); await ctx.server.close(); });

  it('refuses a rebound Host name, with or without Origin, before anything runs', async () => {
    const evil = `evil.example:${ctx.port}`;
    const tries: Record<string, string>[] = [{ host: evil }, { host: evil, origin: `http://${evil}` }, { host: evil, authorization: `Bearer ${TOKEN}`, origin: `http://${evil}` }];
    for (const headers of tries) {
      const r = await raw(ctx.port, 'POST', '/api/train/start', headers, { preset: 'tiny' });
      assert.equal(r.status, 403, JSON.stringify(headers));
    }
    assert.equal((await raw(ctx.port, 'GET', '/api/state', { host: evil })).status, 403);
    assert.deepEqual(calls, [], 'no training was started');
  });

  it('needs a same-origin Origin on state-changing requests', async () => {
    const none = await raw(ctx.port, 'POST', '/api/train/start', { host, authorization: `Bearer ${TOKEN}` }, { preset: 'tiny' });
    assert.equal(none.status, 403);
    const other = await raw(ctx.port, 'POST', '/api/train/start', { host, origin: 'http://evil.example', authorization: `Bearer ${TOKEN}` }, { preset: 'tiny' });
    assert.equal(other.status, 403);
    assert.deepEqual(calls, []);
  });

  it('treats a visitor without the token as a guest: no training, no model switch', async () => {
    const state = await raw(ctx.port, 'GET', '/api/state', { host });
    assert.equal(state.status, 200);
    assert.equal(state.json.admin, false);
    assert.equal(state.json.user, 'web:guest');
    const start = await raw(ctx.port, 'POST', '/api/train/start', { host, origin }, { preset: 'tiny' });
    assert.notEqual(start.status, 200);
    assert.match(start.json.error, /only bot admins/);
    const use = await raw(ctx.port, 'POST', '/api/command', { host, origin }, { text: '/model use other' });
    assert.equal(use.status, 202);
    assert.match((await replyText(ctx.port, host, use.json.messageId)).text, /only bot admins can use `\/model use`/);
    const wrong = await raw(ctx.port, 'POST', '/api/train/start', { host, origin, authorization: `Bearer ${TOKEN.replace(/.$/, 'x')}` }, { preset: 'tiny' });
    assert.notEqual(wrong.status, 200);
    assert.deepEqual(calls, []);
  });

  it('grants admin to a request presenting PLAYGROUND_ADMIN_TOKEN', async () => {
    const auth = { host, origin, authorization: `Bearer ${TOKEN}` };
    assert.equal((await raw(ctx.port, 'GET', '/api/state', auth)).json.admin, true);
    const start = await raw(ctx.port, 'POST', '/api/train/start', auth, { preset: 'tiny' });
    assert.equal(start.status, 200, JSON.stringify(start.json));
    const use = await raw(ctx.port, 'POST', '/api/command', auth, { text: '/model use other' });
    assert.match((await replyText(ctx.port, host, use.json.messageId)).text, /Now serving `other`/);
    assert.deepEqual(calls, [{ what: '/train start', actor: 'web:local' }, { what: '/model use', actor: 'web:local' }]);
  });

  it('answers to an IP address (not rebindable) and warns at start that it is reachable from the network', async () => {
    assert.equal((await raw(ctx.port, 'GET', '/api/state', { host: `127.0.0.1:${ctx.port}` })).status, 200);
    assert.match(ctx.access.networkWarning() ?? '', /reachable from the network.*PLAYGROUND_ADMIN_TOKEN/);
    const noToken = new PlaygroundAccess(playgroundAccessFrom({}, '0.0.0.0'));
    assert.match(noToken.networkWarning() ?? '', /admin commands are off/);
  });
});

describe('playground bound to loopback', () => {
  const calls: { what: string; actor: string }[] = [];
  let ctx: Awaited<ReturnType<typeof serve>>;

  before(async () => { ctx = await serve('127.0.0.1', {}, calls); });
  after(async () => { ctx.playground.close(); await ctx.server.close(); });

  it('is the local admin, but still needs an allowed Host and a same-origin Origin', async () => {
    const host = `localhost:${ctx.port}`;
    assert.equal((await raw(ctx.port, 'GET', '/api/state', { host })).json.admin, true);
    assert.equal((await raw(ctx.port, 'POST', '/api/train/start', { host: `evil.example:${ctx.port}`, origin: `http://evil.example:${ctx.port}` }, { preset: 'tiny' })).status, 403);
    assert.equal((await raw(ctx.port, 'POST', '/api/train/start', { host }, { preset: 'tiny' })).status, 403, 'no Origin');
    const ok = await raw(ctx.port, 'POST', '/api/train/start', { host, origin: `http://${host}` }, { preset: 'tiny' });
    assert.equal(ok.status, 200);
    assert.deepEqual(calls, [{ what: '/train start', actor: 'web:local' }]);
    assert.equal(ctx.access.networkWarning(), null);
  });
});

describe('playground access settings', () => {
  it('are validated with a message naming the variable and never the token', () => {
    assert.throws(() => playgroundAccessFrom({ PLAYGROUND_ADMIN_TOKEN: 'short' }, '0.0.0.0'), (err: Error) => {
      assert.match(err.message, /PLAYGROUND_ADMIN_TOKEN: must be at least 24 characters/);
      assert.doesNotMatch(err.message, /short/);
      return true;
    });
    assert.throws(() => playgroundAccessFrom({ PLAYGROUND_ALLOWED_HOSTS: 'https://bot.example.org' }, '0.0.0.0'), /PLAYGROUND_ALLOWED_HOSTS: .* is not a host name/);
    assert.deepEqual(playgroundAccessFrom({ PLAYGROUND_ALLOWED_HOSTS: 'Bot.Example.org, other.example' }, '0.0.0.0').allowedHosts, ['bot.example.org', 'other.example']);
  });
});
