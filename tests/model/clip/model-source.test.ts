import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { DEFAULT_CLIP_MODEL, resolveClipModelSource } from '../../../src/model/clip/model-source.js';
import { copyTinyClip, TINY_CLIP_DIR } from './helpers.js';

const ENV_KEYS = ['CLIP_MODEL', 'CLIP_QUANTIZED', 'CLIP_CACHE_DIR', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'DATA_DIR'] as const;

/** Asserts a rejection is a UserError whose message matches every pattern. */
function userError(...patterns: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  };
}

describe('resolveClipModelSource', () => {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  before(() => {
    for (const k of ENV_KEYS) delete process.env[k];
  });

  it('defaults to the ViT-B/32 hub id, fp32, cached under <DATA_DIR>/models, from huggingface.co', () => {
    process.env.DATA_DIR = '/srv/bot-data';
    const src = resolveClipModelSource();
    assert.equal(src.kind, 'hub');
    assert.equal(src.kind === 'hub' && src.id, DEFAULT_CLIP_MODEL);
    assert.equal(src.kind === 'hub' && src.cacheDir, '/srv/bot-data/models');
    assert.equal(src.kind === 'hub' && src.remoteHost, 'https://huggingface.co/');
    assert.equal(src.quantized, false);
  });

  it('reads CLIP_MODEL, CLIP_QUANTIZED, CLIP_CACHE_DIR, HF_ENDPOINT and HF_HUB_OFFLINE', () => {
    process.env.CLIP_MODEL = 'acme/clip-mirror';
    process.env.CLIP_QUANTIZED = 'true';
    process.env.CLIP_CACHE_DIR = '/tmp/clip-cache';
    process.env.HF_ENDPOINT = 'http://mirror.internal:8080';
    process.env.HF_HUB_OFFLINE = '1';
    const src = resolveClipModelSource();
    assert.deepEqual(src, {
      kind: 'hub',
      id: 'acme/clip-mirror',
      loadId: 'acme/clip-mirror',
      cacheDir: '/tmp/clip-cache',
      remoteHost: 'http://mirror.internal:8080/',
      offline: true,
      quantized: true,
    });
  });

  it('lets options win over the environment', () => {
    process.env.CLIP_MODEL = 'acme/clip-mirror';
    process.env.CLIP_QUANTIZED = '1';
    const src = resolveClipModelSource({ model: TINY_CLIP_DIR, quantized: false });
    assert.equal(src.kind, 'local');
    assert.equal(src.quantized, false);
  });

  it('takes an existing folder as a local model: parent as localModelPath, name as id', () => {
    const src = resolveClipModelSource({ model: path.relative(process.cwd(), TINY_CLIP_DIR) });
    assert.equal(src.kind, 'local');
    if (src.kind !== 'local') return;
    assert.equal(src.dir, TINY_CLIP_DIR);
    assert.equal(src.loadId, 'tiny-clip');
    assert.equal(src.localModelPath, path.dirname(TINY_CLIP_DIR) + path.sep);
  });

  it('rejects a path that does not exist or is a file, naming it and the fix', () => {
    assert.throws(() => resolveClipModelSource({ model: '/no/such/clip-folder' }), userError(/"\/no\/such\/clip-folder" does not exist/, /CLIP_MODEL/, /onnx\/text_model\.onnx/, /tokenizer\.json/));
    assert.throws(() => resolveClipModelSource({ model: './models/clip' }), userError(/does not exist/));
    assert.throws(() => resolveClipModelSource({ model: path.join(TINY_CLIP_DIR, 'config.json') }), userError(/is a file, not a folder/));
  });
});

describe('ClipEmbedder load errors', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-src-'));
  });
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a missing folder gives one UserError naming it', async () => {
    const missing = path.join(tmp, 'nope');
    await assert.rejects(ClipEmbedder.load({ model: missing }), userError(new RegExp(`"${missing}" does not exist`), /config\.json, tokenizer\.json/));
  });

  it('a folder without the tokenizer lists what is missing', async () => {
    const dir = copyTinyClip(path.join(tmp, 'no-tokenizer'), ['tokenizer.json']);
    await assert.rejects(ClipEmbedder.load({ model: dir }), userError(new RegExp(`"${dir}" is missing tokenizer\\.json`)));
  });

  it('a corrupt tokenizer.json is reported as a broken model folder', async () => {
    const dir = copyTinyClip(path.join(tmp, 'bad-tokenizer'), ['tokenizer.json']);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": ');
    await assert.rejects(ClipEmbedder.load({ model: dir }), userError(new RegExp(`"${dir}" is broken`), /tokenizer/));
  });

  it('a corrupt onnx file gives a UserError naming the folder and the file, on every try', async () => {
    const dir = copyTinyClip(path.join(tmp, 'bad-onnx'), ['onnx/text_model.onnx']);
    const good = fs.readFileSync(path.join(TINY_CLIP_DIR, 'onnx', 'text_model.onnx'));
    fs.writeFileSync(path.join(dir, 'onnx', 'text_model.onnx'), good.subarray(0, 5000));
    const clip = await ClipEmbedder.load({ model: dir });
    try {
      const expected = userError(new RegExp(`"${dir}" is broken`), /onnx\/text_model\.onnx/, /Replace the folder/);
      await assert.rejects(clip.embedTexts(['cows']), expected);
      await assert.rejects(clip.embedTexts(['cows']), expected);
      assert.equal(clip.stats().textModelRuns, 0);
    } finally {
      await clip.dispose();
    }
  });

  it('a missing quantized model is named when quantized is asked for', async () => {
    const dir = copyTinyClip(path.join(tmp, 'fp32-only'), ['onnx/text_model_quantized.onnx']);
    const clip = await ClipEmbedder.load({ model: dir, quantized: true });
    try {
      await assert.rejects(clip.embedTexts(['cows']), userError(/is missing onnx\/text_model_quantized\.onnx/));
    } finally {
      await clip.dispose();
    }
  });

  it('a text-only folder embeds texts: the vision tower is loaded only for images', async () => {
    const dir = copyTinyClip(path.join(tmp, 'text-only'), ['onnx/vision_model.onnx', 'preprocessor_config.json']);
    const clip = await ClipEmbedder.load({ model: dir });
    try {
      const [e] = await clip.embedTexts(['cows in snow']);
      assert.equal(e.length, 512);
      await assert.rejects(
        clip.embedImages([path.join(TINY_CLIP_DIR, 'images', 'sheep_scene.png')]),
        userError(/is missing preprocessor_config\.json, onnx\/vision_model\.onnx/, /vision tower/),
      );
    } finally {
      await clip.dispose();
    }
  });

  it('an unreachable hub gives a UserError naming the id, the host and the fix', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r())); // nothing listens there now
    await assert.rejects(
      ClipEmbedder.load({ model: 'test-org/tiny-clip', cacheDir: path.join(tmp, 'cache'), remoteHost: `http://127.0.0.1:${port}` }),
      userError(/Could not download CLIP model "test-org\/tiny-clip" from http:\/\/127\.0\.0\.1:\d+\//, /ECONNREFUSED/, /CLIP_MODEL/),
    );
  });

  it('an offline hub model that is not cached says so', async () => {
    await assert.rejects(
      ClipEmbedder.load({ model: 'test-org/tiny-clip', cacheDir: path.join(tmp, 'empty-cache'), offline: true }),
      userError(/not in the cache/, /HF_HUB_OFFLINE/),
    );
  });
});
