/**
 * The Slack HTTP receiver refuses a request body over its limit (413) while reading it, before the signature
 * check, so a 50 MB unsigned body is never held in memory; bodies under the limit reach Bolt intact (signature
 * checked, url_verification answered).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { HTTPReceiver } from '@slack/bolt';
import { buildSlackApp } from '../../../src/bot/slack/app.js';
import { SLACK_EVENTS_PATH } from '../../../src/bot/slack/config.js';
import { SLACK_MAX_BODY_BYTES } from '../../../src/bot/slack/request-limit.js';
import type { BotCore } from '../../../src/bot/core/types.js';

const SECRET = 'test-signing-secret';
const FIFTY_MB = 50 * 1024 * 1024;

/** Streams `total` bytes (64 KiB chunks, never held whole) until the server answers; resolves with its status. */
function sendLarge(port: number, total: number, opts: { chunked: boolean }): Promise<{ status: number; sent: number }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    let answered = false;
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: SLACK_EVENTS_PATH,
      headers: { 'content-type': 'application/json', ...(opts.chunked ? {} : { 'content-length': String(total) }) },
    }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, sent }));
    });
    req.on('error', (err) => { if (!answered) reject(err); }); // the server may close while we still write
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      if (sent >= total) req.end();
    };
    pump();
  });
}

function signed(body: string, secret = SECRET): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = `v0=${crypto.createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
  return { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig };
}

describe('Slack HTTP receiver body limit', () => {
  let server: http.Server;
  let receiver: HTTPReceiver;
  let port: number;

  before(async () => {
    const built = buildSlackApp({} as BotCore, { botToken: 'xoxb-test', signingSecret: SECRET, port: 0, host: '127.0.0.1', apiRetries: 0 });
    receiver = built.receiver as HTTPReceiver;
    server = await receiver.start({ port: 0, host: '127.0.0.1' });
    port = (server.address() as AddressInfo).port;
  });
  after(async () => { server.closeAllConnections(); await receiver.stop(); });

  for (const chunked of [false, true]) {
    it(`answers 413 to a 50 MB body (${chunked ? 'chunked' : 'with Content-Length'}) without holding it in memory`, async () => {
      const base = process.memoryUsage();
      let peakBuffers = base.arrayBuffers;
      let peakRss = base.rss;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
        peakRss = Math.max(peakRss, m.rss);
      }, 2);
      const t0 = Date.now();
      const r = await sendLarge(port, FIFTY_MB, { chunked });
      clearInterval(sampler);
      const grewMiB = (peakBuffers - base.arrayBuffers) / 2 ** 20;
      const rssMiB = (peakRss - base.rss) / 2 ** 20;
      console.log(`50 MB ${chunked ? 'chunked' : 'content-length'} body: HTTP ${r.status} after ${Date.now() - t0} ms, client wrote ${(r.sent / 2 ** 20).toFixed(1)} MiB; `
        + `peak growth: buffers ${grewMiB.toFixed(1)} MiB, RSS ${rssMiB.toFixed(1)} MiB`);
      assert.equal(r.status, 413);
      assert.ok(grewMiB < 8, `buffers grew ${grewMiB.toFixed(1)} MiB`);
      assert.ok(r.sent < FIFTY_MB, 'refused before the whole body was sent');
    });
  }

  it('still checks the signature of bodies under the limit, and passes them to Bolt intact', async () => {
    const body = JSON.stringify({ type: 'url_verification', challenge: 'abc123', padding: 'x'.repeat(SLACK_MAX_BODY_BYTES - 200) });
    assert.ok(Buffer.byteLength(body) <= SLACK_MAX_BODY_BYTES);
    const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}${SLACK_EVENTS_PATH}`, { method: 'POST', headers, body });
    assert.equal((await post({ 'content-type': 'application/json' })).status, 401, 'unsigned');
    assert.equal((await post(signed(body, 'another-secret'))).status, 401, 'wrong secret');
    const ok = await post(signed(body));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { challenge: 'abc123' });
    const over = JSON.stringify({ type: 'url_verification', challenge: 'abc123', padding: 'x'.repeat(SLACK_MAX_BODY_BYTES) });
    assert.equal((await fetch(`http://127.0.0.1:${port}${SLACK_EVENTS_PATH}`, { method: 'POST', headers: signed(over), body: over })).status, 413,
      'over the limit even when signed');
  });
});
