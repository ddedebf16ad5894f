/**
 * The pieces under /healthz and the HTTP settings: readiness by phase and checks (a failing, throwing or
 * hanging check makes it 503 with the reason), and HOST/PORT/PLAYGROUND parsing with one line per bad value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Health } from '../../src/http/health.js';
import { HttpServer } from '../../src/http/server.js';
import { httpSettingsFrom, isLoopbackHost } from '../../src/config/http.js';
import { UserError } from '../../src/errors.js';

describe('Health', () => {
  it('is ready only while running with every check passing, and says why not', async () => {
    const health = new Health(200);
    let modelOk = false;
    health.setCheck('clip', () => ({ ok: true, detail: 'tiny' }));
    health.setCheck('model', async () => ({ ok: modelOk, detail: modelOk ? 'm1' : 'no model' }));

    let r = await health.report();
    assert.deepEqual([r.status, r.ready], ['starting', false]);
    assert.equal(r.reason, 'starting up; model: no model');

    health.setPhase('running');
    r = await health.report();
    assert.deepEqual([r.status, r.ready, r.reason], ['not ready', false, 'model: no model']);

    modelOk = true;
    r = await health.report();
    assert.deepEqual([r.status, r.ready, r.reason], ['ok', true, null]);
    assert.deepEqual(r.checks, { clip: { ok: true, detail: 'tiny' }, model: { ok: true, detail: 'm1' } });

    health.setCheck('slack', () => { throw new Error('socket closed'); });
    health.setCheck('discord', () => new Promise(() => undefined)); // never answers
    r = await health.report();
    assert.equal(r.ready, false);
    assert.deepEqual(r.checks.slack, { ok: false, detail: 'socket closed' });
    assert.deepEqual(r.checks.discord, { ok: false, detail: 'no answer within 200 ms' });

    health.setCheck('slack', () => ({ ok: true, detail: 'ok' }));
    health.setCheck('discord', () => ({ ok: true, detail: 'ok' }));
    health.setPhase('stopping');
    r = await health.report();
    assert.deepEqual([r.status, r.ready, r.reason], ['stopping', false, 'shutting down']);
  });

  it('answers /healthz with 200 or 503 and the report as JSON', async () => {
    const health = new Health();
    let ok = false;
    health.setCheck('model', () => ({ ok, detail: ok ? 'loaded' : 'loading' }));
    health.setPhase('running');
    const server = new HttpServer({ routes: [health.route()] });
    const addr = await server.listen('127.0.0.1', 0);
    try {
      const url = `http://127.0.0.1:${addr.port}/healthz`;
      let res = await fetch(url);
      assert.equal(res.status, 503);
      assert.equal((await res.json() as { reason: string }).reason, 'model: loading');
      ok = true;
      res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal((await res.json() as { status: string }).status, 'ok');
      assert.equal((await fetch(url, { method: 'POST' })).status, 405);
      assert.equal((await fetch(`http://127.0.0.1:${addr.port}/elsewhere`)).status, 404);
    } finally {
      await server.close();
    }
    assert.equal(server.listening, false);
  });
});

describe('HTTP settings', () => {
  it('defaults to 127.0.0.1:8787 and decides the playground from the platforms', () => {
    assert.deepEqual(httpSettingsFrom({}), { host: '127.0.0.1', port: 8787, playground: undefined });
    assert.deepEqual(httpSettingsFrom({ HOST: '0.0.0.0', PORT: '9000', PLAYGROUND: 'true' }), { host: '0.0.0.0', port: 9000, playground: true });
    assert.equal(httpSettingsFrom({ PLAYGROUND: '0' }).playground, false);
    assert.equal(httpSettingsFrom({ PLAYGROUND: ' ' }).playground, undefined);
    assert.equal(httpSettingsFrom({ PORT: '0' }).port, 0);
  });

  it('lists every bad value in one UserError', () => {
    assert.throws(() => httpSettingsFrom({ PORT: '80a', PLAYGROUND: 'maybe', HOST: 'a b' }), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /PORT: must be a port number/);
      assert.match(err.message, /PLAYGROUND: must be 1 or 0/);
      assert.match(err.message, /HOST: must be an address/);
      return true;
    });
    assert.throws(() => httpSettingsFrom({ PORT: '70000' }), /PORT/);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.com']) assert.ok(!isLoopbackHost(h), h);
  });
});
