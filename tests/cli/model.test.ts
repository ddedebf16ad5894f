import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { register as registerModel } from '../../src/cli/commands/model.js';
import { register as registerSample } from '../../src/cli/commands/sample.js';
import { currentBackend, initBackend } from '../../src/model/backend.js';
import { buildCvae } from '../../src/model/cvae.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { parseEmbeddings } from '../../src/model/embedding-file.js';
import { getPreset } from '../../src/model/presets.js';
import { repoRoot } from '../../src/paths.js';
import { UserError } from '../../src/errors.js';

await initBackend();

let root: string;
const preset = getPreset('tiny');

/** Runs a CLI command in-process and returns what it printed. `shippedCheckpoint`: the demo `sample` falls back to (default none). */
async function run(args: string[], shippedCheckpoint: string | null = null): Promise<string> {
  let out = '';
  const program = new Command().exitOverride();
  const io = { write: (t: string) => void (out += t) };
  registerModel(program, io);
  registerSample(program, io, { shippedCheckpoint });
  await program.parseAsync(args, { from: 'user' });
  return out;
}

function unitEmbedding(seed: number): number[] {
  return tf.tidy(() => {
    const e = tf.randomNormal([512], 0, 1, 'float32', seed);
    return Array.from(tf.div(e, tf.norm(e)).dataSync());
  });
}

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'model-cli-'));
  const cvae = buildCvae(preset, { seed: 1 });
  await saveCheckpoint(path.join(root, 'checkpoints', 'tinyrun', 'best'), cvae, {
    name: 'tinyrun', preset: 'tiny', resolution: 16, conditioning: 'image', clipModel: 'tiny-clip',
    datasetFingerprint: 'fp', epoch: 2, step: 20, losses: {}, bestValLoss: 123.4,
    createdAt: new Date().toISOString(), presetConfig: preset,
  });
  cvae.dispose();
});
after(() => rmSync(root, { recursive: true, force: true }));

test('model info --json prints the trainable parameter count and the backend', async () => {
  const info = JSON.parse(await run(['model', 'info', '--preset', 'tiny', '--json']));
  assert.equal(info.preset, 'tiny');
  assert.equal(info.backend, currentBackend()?.backend, 'the backend initBackend chose');
  assert.equal(info.backend, tf.getBackend());
  assert.equal(info.gpu, false);
  const cvae = buildCvae(preset);
  assert.equal(info.trainableParams, cvae.trainableParams());
  cvae.dispose();
  await assert.rejects(run(['model', 'info', '--preset', 'huge']), (e: unknown) => e instanceof UserError);
});

test('model list and model use work on the registry', async () => {
  const ck = path.join(root, 'checkpoints');
  assert.match(await run(['model', 'list', '--checkpoints', ck]), /^ {2}tinyrun +tiny +epoch +2 +val 123\.4/m);
  assert.match(await run(['model', 'use', 'tinyrun', '--checkpoints', ck]), /active model: tinyrun/);
  const list = JSON.parse(await run(['model', 'list', '--checkpoints', ck, '--json']));
  assert.deepEqual(list.map((e: { name: string; active: boolean }) => [e.name, e.active]), [['tinyrun', true]]);
  await assert.rejects(run(['model', 'use', 'other', '--checkpoints', ck]), /Known models: tinyrun/);
});

test('sample writes a grid PNG that depends only on seed and embedding', async () => {
  const ck = path.join(root, 'checkpoints');
  const embFile = path.join(root, 'emb.json');
  await fsp.writeFile(embFile, JSON.stringify(unitEmbedding(1)));
  const out1 = path.join(root, 'grid1.png');
  const out2 = path.join(root, 'grid2.png');
  const images = path.join(root, 'images');
  const summary = JSON.parse(
    await run(['sample', '--checkpoint', path.join(ck, 'tinyrun', 'best'), '--embedding-file', embFile, '--count', '4', '--seed', '7',
      '--out', out1, '--scale', '2', '--images-dir', images, '--json']),
  );
  assert.deepEqual(summary.seeds, [7, 8, 9, 10]);
  assert.equal(summary.images.length, 4);
  const meta = await sharp(out1).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 2 * 32 + 4, 2 * 32 + 4], '2x2 grid of 32 px tiles with a 4 px gap');
  assert.equal((await sharp(summary.images[0]).metadata()).width, 32);
  // The active model (from `model use`) is the default; same seeds and embedding give the same PNG.
  await run(['sample', '--checkpoints', ck, '--embedding-file', embFile, '--count', '4', '--seed', '7', '--out', out2, '--scale', '2']);
  assert.deepEqual(await fsp.readFile(out2), await fsp.readFile(out1));
  await run(['sample', '--checkpoints', ck, '--embedding-file', embFile, '--count', '4', '--seed', '8', '--out', out2, '--scale', '2']);
  assert.notDeepEqual(await fsp.readFile(out2), await fsp.readFile(out1));
  await assert.rejects(run(['sample', '--checkpoints', ck, '--out', out2]), /--embedding-file/);
});

test('sample serves the shipped demo when no model is active, as the bot does, and says so', async () => {
  const empty = path.join(root, 'empty-checkpoints');
  const embFile = path.join(root, 'emb-demo.json');
  await fsp.writeFile(embFile, JSON.stringify(unitEmbedding(3)));
  const out = path.join(root, 'demo.png');
  await assert.rejects(run(['sample', '--checkpoints', empty, '--embedding-file', embFile, '--out', out]),
    (err: unknown) => err instanceof UserError && /No model is active and no demo model is shipped/.test(err.message));
  const shipped = path.join(root, 'checkpoints', 'tinyrun', 'best');
  const summary = JSON.parse(await run(['sample', '--checkpoints', empty, '--embedding-file', embFile, '--count', '2', '--seed', '3', '--out', out, '--json'], shipped));
  assert.deepEqual([summary.model, summary.shipped, summary.checkpoint, summary.seeds], ['demo', true, shipped, [3, 4]]);
  assert.equal((await sharp(out).metadata()).format, 'png');
  const text = await run(['sample', '--checkpoints', empty, '--embedding-file', embFile, '--count', '1', '--out', out], shipped);
  assert.match(text, /from demo \(the shipped demo: no model is active\)/);
  assert.deepEqual(await fsp.readdir(empty).catch(() => []), [], 'sampling registers nothing');
});

test('sample draws the same images on ONNX Runtime and TensorFlow.js, and names a bad --engine', async () => {
  const ck = path.join(root, 'checkpoints', 'tinyrun', 'best');
  const embFile = path.join(root, 'emb-engines.json');
  await fsp.writeFile(embFile, JSON.stringify(unitEmbedding(3)));
  const pixels: Record<string, Buffer> = {};
  for (const engine of ['onnx', 'tfjs']) {
    const dir = path.join(root, `engine-${engine}`);
    const summary = JSON.parse(await run(['sample', '--checkpoint', ck, '--embedding-file', embFile, '--count', '2', '--seed', '5',
      '--engine', engine, '--out', path.join(dir, 'grid.png'), '--images-dir', dir, '--scale', '1', '--json']));
    assert.equal(summary.engine, engine);
    pixels[engine] = await sharp(summary.images[1]).raw().toBuffer();
  }
  assert.equal(pixels.onnx.length, 16 * 16 * 3, "one 16 px tiny-preset image at scale 1");
  const maxDiff = pixels.onnx.reduce((m, v, i) => Math.max(m, Math.abs(v - pixels.tfjs[i])), 0);
  assert.ok(maxDiff <= 1, `ONNX and TensorFlow.js images differ by up to ${maxDiff}/255`);
  await assert.rejects(run(['sample', '--checkpoint', ck, '--embedding-file', embFile, '--engine', 'gpu']), /--engine must be one of auto, onnx, tfjs, got "gpu"/);
});

test('embedding files: JSON array, array of arrays, embed --json lines, raw float32', () => {
  const a = unitEmbedding(1);
  const b = unitEmbedding(2);
  const eq = (got: Float32Array[], want: number[][]) =>
    assert.deepEqual(got.map((e) => Array.from(e)), want.map((w) => Array.from(Float32Array.from(w))));
  eq(parseEmbeddings('e.json', Buffer.from(JSON.stringify(a)), 512), [a]);
  eq(parseEmbeddings('e.json', Buffer.from(JSON.stringify([a, b])), 512), [a, b]);
  eq(parseEmbeddings('e.json', Buffer.from(JSON.stringify({ embeddings: [b] })), 512), [b]);
  const lines = [a, b].map((e, i) => JSON.stringify({ model: 'm', text: `t${i}`, embedding: e })).join('\n') + '\n';
  eq(parseEmbeddings('e.jsonl', Buffer.from(lines), 512), [a, b]);
  eq(parseEmbeddings('e.bin', Buffer.from(Float32Array.from([...a, ...b]).buffer), 512), [a, b]);
  const isUser = (re: RegExp) => (e: unknown) => e instanceof UserError && re.test(e.message);
  assert.throws(() => parseEmbeddings('e.json', Buffer.from('[1, 2, 3]'), 512), isUser(/3 numbers; the model takes 512/));
  assert.throws(() => parseEmbeddings('e.bin', Buffer.alloc(100), 512), isUser(/not a multiple/));
  assert.throws(() => parseEmbeddings('e.json', Buffer.from('not json\n[1]'), 512), isUser(/neither JSON nor JSON lines/));
  assert.throws(() => parseEmbeddings('e.json', Buffer.from('{"x": 1}'), 512), isUser(/holds no embedding/));
});

test('TFJS_BACKEND naming a backend that is not installed is a clear error', async () => {
  const exec = promisify(execFile);
  const env: NodeJS.ProcessEnv = { ...process.env, TFJS_BACKEND: 'tfjs-node-gpu', LOG_LEVEL: 'silent' };
  delete env.NODE_TEST_CONTEXT;
  const res = await exec(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'model', 'info', '--preset', 'tiny'], { env, cwd: repoRoot }).then(
    () => null,
    (err: { code: number; stderr: string }) => err,
  );
  assert.ok(res, 'the command fails');
  assert.equal(res.code, 1);
  assert.match(res.stderr, /TFJS_BACKEND=tfjs-node-gpu asks for @tensorflow\/tfjs-node-gpu, but it could not be loaded/);
  const bad = await exec(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'model', 'info', '--preset', 'tiny'], {
    env: { ...env, TFJS_BACKEND: 'quantum' }, cwd: repoRoot,
  }).then(() => null, (err: { stderr: string }) => err);
  assert.match(bad?.stderr ?? '', /not a backend I know/);
});
