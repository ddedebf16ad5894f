import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import type { ClipLoadProgress } from '../../../src/model/clip/model-source.js';
import { reference, TINY_CLIP_DIR } from './helpers.js';

const HUB_ID = 'test-org/tiny-clip';
const IMAGE = path.join(TINY_CLIP_DIR, 'images', 'sheep_scene.png');

/** A stand-in for the Hugging Face hub: serves the tiny CLIP at /{model}/resolve/{revision}/{file}. */
function startHub(): Promise<{ server: http.Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    requests.push(url);
    const prefix = `/${HUB_ID}/resolve/main/`;
    const file = url.startsWith(prefix) ? path.normalize(url.slice(prefix.length)) : '';
    const full = path.join(TINY_CLIP_DIR, file);
    if (!file || file.startsWith('..') || !fs.existsSync(full) || !fs.statSync(full).isFile()) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const body = fs.readFileSync(full);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests })),
  );
}

describe('ClipEmbedder with a hub id (local HTTP server as the hub)', () => {
  let tmp: string;
  let cacheDir: string;
  let hub: Awaited<ReturnType<typeof startHub>>;
  let localTexts: Float32Array[];
  let localImage: Float32Array;
  const savedEndpoint = process.env.HF_ENDPOINT;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-hub-'));
    cacheDir = path.join(tmp, 'models');
    hub = await startHub();
    const local = await ClipEmbedder.load({ model: TINY_CLIP_DIR });
    localTexts = await local.embedTexts(reference.texts);
    [localImage] = await local.embedImages([IMAGE]);
    await local.dispose();
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.HF_ENDPOINT;
    else process.env.HF_ENDPOINT = savedEndpoint;
    await new Promise<void>((r) => hub.server.close(() => r()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('downloads into the cache on first use (host from HF_ENDPOINT) and embeds like the local folder', async () => {
    process.env.HF_ENDPOINT = hub.url; // how a mirror is configured in production
    const progress: ClipLoadProgress[] = [];
    const clip = await ClipEmbedder.load({ model: HUB_ID, cacheDir, onProgress: (p) => progress.push(p) });
    try {
      assert.equal(clip.modelId, HUB_ID);
      const texts = await clip.embedTexts(reference.texts);
      texts.forEach((e, i) => assert.deepEqual(e, localTexts[i]));
      const [image] = await clip.embedImages([IMAGE]);
      assert.deepEqual(image, localImage);
    } finally {
      await clip.dispose();
    }
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'onnx/text_model.onnx', 'onnx/vision_model.onnx']) {
      assert.ok(hub.requests.includes(`/${HUB_ID}/resolve/main/${f}`), `requested ${f}`);
      const cached = path.join(cacheDir, HUB_ID, f);
      assert.ok(fs.existsSync(cached), `cached ${f}`);
      assert.ok(fs.readFileSync(cached).equals(fs.readFileSync(path.join(TINY_CLIP_DIR, f))), `cached ${f} intact`);
    }
    assert.ok(!fs.existsSync(path.join(cacheDir, HUB_ID, 'onnx/text_model_quantized.onnx')), 'only the fp32 towers are fetched');
    assert.ok(progress.some((p) => p.status === 'done' && p.file === 'onnx/text_model.onnx'));
  });

  it('loads from the cache with the hub down', async () => {
    const before = hub.requests.length;
    await new Promise<void>((r) => hub.server.close(() => r()));
    const clip = await ClipEmbedder.load({ model: HUB_ID, cacheDir, remoteHost: hub.url });
    try {
      const texts = await clip.embedTexts(reference.texts);
      texts.forEach((e, i) => assert.deepEqual(e, localTexts[i]));
      const [image] = await clip.embedImages([IMAGE]);
      assert.deepEqual(image, localImage);
    } finally {
      await clip.dispose();
    }
    assert.equal(hub.requests.length, before);
    // Offline mode reads the same cache.
    const offline = await ClipEmbedder.load({ model: HUB_ID, cacheDir, offline: true });
    assert.deepEqual((await offline.embedTexts([reference.texts[0]]))[0], localTexts[0]);
    await offline.dispose();
    hub = await startHub(); // for the next test and after()
  });

  it('loads a hub model and a local folder at the same time without mixing their settings', async () => {
    const freshCache = path.join(tmp, 'models-2');
    const [remote, local] = await Promise.all([
      ClipEmbedder.load({ model: HUB_ID, cacheDir: freshCache, remoteHost: hub.url }),
      ClipEmbedder.load({ model: TINY_CLIP_DIR }),
    ]);
    try {
      const [[r], [l]] = await Promise.all([remote.embedTexts([reference.texts[2]]), local.embedTexts([reference.texts[2]])]);
      assert.deepEqual(r, localTexts[2]);
      assert.deepEqual(l, localTexts[2]);
      assert.ok(fs.existsSync(path.join(freshCache, HUB_ID, 'onnx/text_model.onnx')));
      assert.ok(!fs.existsSync(path.join(freshCache, 'tiny-clip')), 'the local folder is never copied into the cache');
    } finally {
      await Promise.all([remote.dispose(), local.dispose()]);
    }
  });

  it('an unknown hub id gives a UserError naming it', async () => {
    await assert.rejects(ClipEmbedder.load({ model: 'test-org/no-such-model', cacheDir, remoteHost: hub.url }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /"test-org\/no-such-model"/);
      assert.match(e.message, /Could not locate file/);
      return true;
    });
    assert.ok(!fs.existsSync(path.join(cacheDir, 'test-org/no-such-model/config.json')));
  });
});
