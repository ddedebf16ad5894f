/**
 * `npm run demo:train` end to end at a toy size: every stage runs (scenes, scene CLIP, cache, training,
 * packaging with the ONNX decoder, sample grid, quality check with the shipped judge), and what it writes is a
 * model the bot can serve with the CLIP it was trained with.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../src/paths.js';

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'train-demo-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('demo:train runs every stage and packages a servable model with its CLIP and quality report', () => {
  const out = path.join(root, 'demo');
  const clipOut = path.join(root, 'scene-clip');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'scripts', 'train-demo.ts'), '--count', '48', '--clip-steps', '2', '--epochs', '1', '--out', out,
      '--clip-out', clipOut, '--work', path.join(root, 'work'), '--judge', path.join(repoRoot, 'models', 'scene-judge'), '--reuse-judge'],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn' }, timeout: 600_000 },
  );
  assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
  for (const stage of ['1/6 synthetic scenes', '2/6 scene CLIP', '3/6 dataset cache', '4/6 training the demo', '5/6 packaging', '6/6 quality check']) {
    assert.ok(r.stderr.includes(stage), `stage "${stage}" ran`);
  }
  for (const f of ['meta.json', 'recipe.json', 'decoder.onnx', 'samples.png', 'quality.json']) assert.ok(existsSync(path.join(out, f)), f);
  assert.ok(existsSync(path.join(clipOut, 'onnx', 'text_model.onnx')));
  const meta = JSON.parse(readFileSync(path.join(out, 'meta.json'), 'utf8')) as { clipModel: string; conditioning: string };
  assert.equal(path.resolve(repoRoot, meta.clipModel), clipOut, 'the demo records the scene CLIP it was trained with');
  assert.equal(meta.conditioning, 'image');
  const quality = JSON.parse(readFileSync(path.join(out, 'quality.json'), 'utf8')) as { images: number };
  assert.equal(quality.images, 64 * 4);
});
