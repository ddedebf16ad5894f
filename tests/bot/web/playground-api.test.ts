/**
 * The playground's HTTP API over the real app (startApp: SQLite store, queue, tiny CLIP, a tiny checkpoint,
 * Sampler, sharp PNGs) on 127.0.0.1:0: health before and after a model is served, /imagine with the shared
 * flag parser, buttons, reactions in the feedback store, metrics, request checks and the SSE stream.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { RunningApp } from '../../../src/app.js';
import type { ChatMessage } from '../../../src/bot/web/chat-log.js';
import { PNG_MAGIC, addTinyModel, request, settled, startTestApp, tempDataDir, waitFor } from '../../app/helpers.js';

/** The value of one sample line of the metrics text (labels in any order), or null. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return null;
}

describe('playground API', () => {
  let dataDir: string;
  let app: RunningApp;

  before(async () => {
    dataDir = tempDataDir('web-api-');
    app = await startTestApp(dataDir);
  });

  after(async () => {
    await app?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is not ready while no model is served, and says how to get one', async () => {
    const health = await request(app, 'GET', '/healthz');
    assert.equal(health.status, 503);
    assert.equal(health.json.ready, false);
    assert.equal(health.json.checks.clip.ok, true, 'CLIP is loaded');
    assert.equal(health.json.checks.model.ok, false);
    assert.match(health.json.reason, /model: No model is being served/);

    const cmd = await request(app, 'POST', '/api/command', { text: '/imagine cows in snow' });
    assert.equal(cmd.status, 202);
    const reply = await settled(app, cmd.json.messageId);
    assert.equal(reply.state, 'failed');
    assert.match(reply.text, /No model is being served/);
    assert.match(reply.text, /npm run cli -- train --preset demo/);
    assert.match(reply.text, /model use NAME/);

    const state = await request(app, 'GET', '/api/state');
    assert.equal(state.json.ready, false);
    assert.equal(state.json.admin, true);
    assert.equal(state.json.user, 'web:local');
    assert.ok(state.json.presets.includes('tiny'));
  });

  it('turns ready once a model is active (no restart), and serves /imagine with the bots\' flags', async () => {
    await addTinyModel(dataDir, 'tiny-web');
    const health = await waitFor(async () => {
      const r = await request(app, 'GET', '/healthz');
      return r.status === 200 ? r : null;
    }, 'healthz 200');
    assert.equal(health.json.status, 'ok');
    assert.match(health.json.checks.model.detail, /^tiny-web \(tiny/);

    const cmd = await request(app, 'POST', '/api/command', { text: '/imagine cows in snow --count 2 --seed 7' });
    assert.equal(cmd.status, 202);
    const reply = await settled(app, cmd.json.messageId);
    assert.equal(reply.state, 'done', reply.text);
    assert.equal(reply.kind, 'generation');
    assert.deepEqual(reply.generation?.seeds, [7, 8]);
    assert.equal(reply.generation?.prompt, 'cows in snow');
    assert.equal(reply.generation?.model, 'tiny-web');
    assert.match(reply.text, /cows in snow.*seeds 7–8.*model tiny-web/);
    assert.equal(reply.images?.length, 3, 'the grid and one image each');

    const grid = await request(app, 'GET', reply.images![0].url);
    assert.equal(grid.status, 200);
    assert.equal(grid.headers.get('content-type'), 'image/png');
    assert.deepEqual(grid.body.subarray(0, 8), PNG_MAGIC);
    const meta = await sharp(grid.body).metadata();
    assert.ok(meta.width! > meta.height!, `two images side by side (${meta.width}x${meta.height})`);

    // The generation is recorded with the web message as its reference.
    const rec = await app.runtime()!.store.generations.byMessage('web', reply.id);
    assert.equal(rec?.generation.id, reply.generation?.generationId);
    assert.equal(rec?.generation.platform, 'web');
    assert.equal(rec?.generation.userId, 'local');

    // Plain text is a prompt too; the same seed gives the same pixels.
    const again = await settled(app, (await request(app, 'POST', '/api/command', { text: 'cows in snow --seed 7 --count 2' })).json.messageId);
    assert.equal(again.state, 'done');
    const grid2 = await request(app, 'GET', again.images![0].url);
    assert.deepEqual(grid2.body, grid.body);
  });

  it('refuses bad commands with the usage or the core\'s message', async () => {
    const empty = await request(app, 'POST', '/api/command', { text: '/imagine --seed 3' });
    assert.equal(empty.status, 400);
    assert.match(empty.json.error, /Tell me what to draw/);
    assert.match(empty.json.error, /--count 1-4/);

    const unknown = await request(app, 'POST', '/api/command', { text: '/imagine cows --size 9' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error, /Unknown option `--size`/);

    const tooMany = await settled(app, (await request(app, 'POST', '/api/command', { text: '/imagine cows --count 9' })).json.messageId);
    assert.equal(tooMany.state, 'failed');
    assert.match(tooMany.text, /1 to 4|1–4|between 1 and 4/);

    const verb = await request(app, 'POST', '/api/command', { text: '/dance now' });
    assert.equal(verb.status, 400);
    assert.match(verb.json.error, /I do not know `\/dance`/);

    const help = await settled(app, (await request(app, 'POST', '/api/command', { text: '/help' })).json.messageId);
    assert.match(help.text, /\/train start/);
  });

  it('records reactions in the feedback store (added, removed, same twice once) and refuses other messages', async () => {
    const reply = await settled(app, (await request(app, 'POST', '/api/command', { text: '/imagine sheep on a hill --seed 3' })).json.messageId);
    assert.equal(reply.state, 'done');
    const feedback = app.runtime()!.store.feedback;
    const before = (await feedback.list()).length;

    const up = await request(app, 'POST', '/api/reactions', { messageId: reply.id, reaction: '👍', added: true });
    assert.equal(up.status, 200);
    assert.deepEqual(up.json, { recorded: true });
    await request(app, 'POST', '/api/reactions', { messageId: reply.id, reaction: '👍', added: true });
    await request(app, 'POST', '/api/reactions', { messageId: reply.id, reaction: '⭐', added: true });
    await request(app, 'POST', '/api/reactions', { messageId: reply.id, reaction: '👍', added: false });

    const events = (await feedback.list()).slice(before);
    assert.deepEqual(events.map((e) => [e.reaction, e.kind, e.added, e.platform, e.userId, e.generationId]), [
      ['👍', 'up', true, 'web', 'local', reply.generation!.generationId],
      ['⭐', 'favourite', true, 'web', 'local', reply.generation!.generationId],
      ['👍', 'up', false, 'web', 'local', reply.generation!.generationId],
    ]);
    const shown = (await request(app, 'GET', `/api/messages/${reply.id}`)).json as ChatMessage;
    assert.deepEqual(shown.reactions, { '👍': false, '⭐': true });

    const notGeneration = await request(app, 'POST', '/api/reactions', { messageId: 'web-nothing-here', reaction: '👍', added: true });
    assert.equal(notGeneration.status, 404);
    const bad = await request(app, 'POST', '/api/reactions', { messageId: reply.id, reaction: '<script>', added: true });
    assert.equal(bad.status, 400);
  });

  it('rerolls, makes variations and posts one image alone; a reaction there counts for that image', async () => {
    const first = await settled(app, (await request(app, 'POST', '/api/command', { text: '/imagine a red barn --count 2 --seed 11' })).json.messageId);
    const gid = first.generation!.generationId;

    const reroll = await settled(app, (await request(app, 'POST', `/api/generations/${gid}/reroll`, {})).json.messageId);
    assert.equal(reroll.state, 'done');
    assert.equal(reroll.generation?.prompt, 'a red barn');
    assert.notEqual(reroll.generation?.generationId, gid);
    assert.notDeepEqual(reroll.generation?.seeds, [11, 12]);

    const variations = await settled(app, (await request(app, 'POST', `/api/generations/${gid}/variations`, {})).json.messageId);
    assert.equal(variations.state, 'done');
    assert.deepEqual(variations.generation?.seeds, [11, 12], 'variations keep the seeds');
    assert.match(variations.text, /variation/);

    const single = await settled(app, (await request(app, 'POST', `/api/generations/${gid}/images/1`, {})).json.messageId);
    assert.equal(single.state, 'done', single.text);
    assert.equal(single.kind, 'image');
    assert.equal(single.generation?.imageIndex, 1);
    assert.match(single.text, /seed 12/);
    const png = await request(app, 'GET', single.images![0].url);
    assert.deepEqual(png.body.subarray(0, 8), PNG_MAGIC);

    const n = (await app.runtime()!.store.feedback.list()).length;
    assert.equal((await request(app, 'POST', '/api/reactions', { messageId: single.id, reaction: '👎', added: true })).status, 200);
    const fb = (await app.runtime()!.store.feedback.list()).slice(n);
    assert.deepEqual(fb.map((e) => [e.kind, e.imageIndex, e.generationId]), [['down', 1, gid]]);

    const missing = await settled(app, (await request(app, 'POST', '/api/generations/nope/images/0', {})).json.messageId);
    assert.equal(missing.state, 'failed');
    assert.match(missing.text, /cannot find that generation/);
  });

  it('exposes Prometheus metrics: generations, latency, queue, feedback, training state, readiness', async () => {
    const res = await request(app, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const head = await request(app, 'HEAD', '/metrics');
    assert.deepEqual([head.status, head.body.length], [200, 0], 'HEAD: headers only');
    assert.equal((await request(app, 'POST', '/metrics')).status, 405);
    const text = res.body.toString('utf8');
    assert.match(text, /# TYPE cvae_generations_total counter/);
    assert.match(text, /# TYPE cvae_generation_latency_seconds histogram/);
    const imagines = metric(text, 'cvae_generations_total', { platform: 'web', kind: 'imagine', model: 'tiny-web' });
    assert.equal(imagines, 4, 'the four /imagine generations that finished (a refused one does not count)');
    assert.equal(metric(text, 'cvae_generations_total', { platform: 'web', kind: 'reroll', model: 'tiny-web' }), 1);
    assert.equal(metric(text, 'cvae_generations_total', { platform: 'web', kind: 'variations', model: 'tiny-web' }), 1);
    assert.equal(metric(text, 'cvae_generation_latency_seconds_count', { platform: 'web', kind: 'imagine' }), imagines);
    assert.equal(metric(text, 'cvae_generation_latency_seconds_bucket', { platform: 'web', kind: 'imagine', le: '+Inf' }), imagines);
    assert.equal(metric(text, 'cvae_feedback_total', { kind: 'up', action: 'added' }), 1);
    assert.equal(metric(text, 'cvae_feedback_total', { kind: 'up', action: 'removed' }), 1);
    assert.equal(metric(text, 'cvae_feedback_total', { kind: 'favourite', action: 'added' }), 1);
    assert.equal(metric(text, 'cvae_feedback_total', { kind: 'down', action: 'added' }), 1);
    assert.equal(metric(text, 'cvae_queue_waiting'), 0);
    assert.equal(metric(text, 'cvae_queue_running'), 0);
    assert.equal(metric(text, 'cvae_training_active'), 0);
    assert.equal(metric(text, 'cvae_training_runs', { status: 'running' }), 0);
    assert.equal(metric(text, 'cvae_ready'), 1);
    assert.equal(metric(text, 'cvae_served_model_info', { model: 'tiny-web' }), 1);
    const batches = metric(text, 'cvae_sampler_batch_seconds_count');
    assert.ok(batches !== null && batches >= 1);
    assert.ok(metric(text, 'cvae_process_resident_memory_bytes') !== null || metric(text, 'cvae_nodejs_heap_size_used_bytes') !== null, 'process metrics');
  });

  it('answers only same-origin JSON requests for a loopback host', async () => {
    const plain = await request(app, 'POST', '/api/command', undefined, { 'content-type': 'text/plain' });
    assert.equal(plain.status, 415);
    const cross = await request(app, 'POST', '/api/command', { text: 'cows' }, { origin: 'http://evil.example' });
    assert.equal(cross.status, 403);
    const port = new URL(app.url).port;
    const rebound = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/api/state', headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    assert.equal(rebound, 403);
    const page = await request(app, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(page.body.toString(), /<script src="\/static\/app\.js" defer><\/script>/);
    assert.equal((await request(app, 'GET', '/static/app.js')).status, 200);
    assert.equal((await request(app, 'GET', '/static/../package.json')).status, 404);
    assert.equal((await request(app, 'GET', '/media/web-x/grid.png')).status, 404);
  });

  it('streams new and changed messages over SSE', { timeout: 30_000 }, async () => {
    const controller = new AbortController();
    const res = await fetch(`${app.url}/api/events`, { signal: controller.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let buffer = '';
    const events: { event: string; data: any }[] = [];
    /** Reads events until one matches. */
    const next = async (match: (e: { event: string; data: any }) => boolean) => {
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += Buffer.from(value).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    };
    const hello = await next((e) => e.event === 'hello');
    assert.ok(Array.isArray(hello.data.messages) && hello.data.messages.length > 0, 'the recent messages come first');
    const cmd = await request(app, 'POST', '/api/command', { text: '/imagine a windmill --seed 1' });
    const queued = await next((e) => e.event === 'message' && e.data.id === cmd.json.messageId);
    assert.equal(queued.data.state, 'queued');
    const done = await next((e) => e.event === 'message' && e.data.id === cmd.json.messageId && e.data.state === 'done');
    assert.equal(done.data.generation.prompt, 'a windmill');
    assert.ok(events.some((e) => e.event === 'message' && e.data.from === 'you' && e.data.text === '/imagine a windmill --seed 1'), 'the typed command is echoed');
    controller.abort();
  });
});
