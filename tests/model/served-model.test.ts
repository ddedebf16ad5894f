/**
 * Which model `npm start` serves and which CLIP it loads: the registry's active checkpoint, else the shipped
 * demo (registered as `demo` and activated); CLIP_MODEL, else the CLIP the served checkpoint records
 * (a repository-relative tiny-clip folder resolves against the repository root), else the default hub model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointRegistry } from '../../src/model/registry.js';
import { repoRoot } from '../../src/paths.js';
import { DEMO_CHECKPOINT_DIR, defaultCheckpoint, ensureServedModel, pickClipModel } from '../../src/model/served-model.js';
import { TINY_CLIP_DIR, addTinyModel, request, saveTinyCheckpoint, startTestApp, tempDataDir } from '../app/helpers.js';

describe('served model and CLIP choice', () => {
  const dirs: string[] = [];
  const temp = (p: string) => {
    const d = tempDataDir(p);
    dirs.push(d);
    return d;
  };
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  it('defaultCheckpoint: models/demo of the repository when it holds a checkpoint', async () => {
    assert.equal(DEMO_CHECKPOINT_DIR, path.join(repoRoot, 'models', 'demo'));
    const d = temp('served-demo-');
    assert.equal(defaultCheckpoint(d), null, 'no meta.json: no checkpoint');
    await saveTinyCheckpoint(d, 'demo');
    assert.equal(defaultCheckpoint(d), d);
  });

  it('pickClipModel: CLIP_MODEL, else what the served checkpoint records, else the default hub model', () => {
    assert.equal(pickClipModel('/some/clip', { clipModel: 'Xenova/other' }), '/some/clip');
    assert.equal(pickClipModel('  ', { clipModel: 'Xenova/other' }), 'Xenova/other', 'an empty CLIP_MODEL counts as unset');
    assert.equal(pickClipModel(undefined, { clipModel: 'tests/fixtures/tiny-clip' }), TINY_CLIP_DIR, 'repo-relative folder → this clone\'s fixture');
    assert.equal(pickClipModel(undefined, { clipModel: TINY_CLIP_DIR }), TINY_CLIP_DIR);
    assert.equal(pickClipModel(undefined, null), 'Xenova/clip-vit-base-patch32');
  });

  it('ensureServedModel: keeps an active model, else registers and activates the shipped demo', async () => {
    const shipped = temp('served-shipped-');
    await saveTinyCheckpoint(shipped, 'demo', 'tests/fixtures/tiny-clip');

    const empty = new CheckpointRegistry(path.join(temp('served-reg-'), 'checkpoints'));
    assert.equal(await ensureServedModel(empty, null), null, 'nothing active and nothing shipped');
    const served = await ensureServedModel(empty, shipped);
    assert.deepEqual([served?.name, served?.dir, served?.shipped, served?.meta.clipModel], ['demo', shipped, true, 'tests/fixtures/tiny-clip']);
    assert.equal((await empty.active())?.name, 'demo');
    const again = await ensureServedModel(empty, shipped);
    assert.deepEqual([again?.name, again?.shipped], ['demo', false], 'the next start finds it active');

    const dataDir = temp('served-active-');
    await addTinyModel(dataDir, 'mine');
    const withActive = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
    assert.equal((await ensureServedModel(withActive, shipped))?.name, 'mine', 'an active model wins over the demo');

    const taken = temp('served-taken-');
    await addTinyModel(taken, 'demo', { activate: false });
    const reg = new CheckpointRegistry(path.join(taken, 'checkpoints'));
    assert.equal((await ensureServedModel(reg, shipped))?.name, 'shipped-demo', '"demo" names another folder');
    assert.equal((await reg.active())?.dir, shipped);
  });

  it('npm start with no CLIP_MODEL and no active model serves the shipped demo with the CLIP it records', async () => {
    const shipped = temp('served-app-demo-');
    await saveTinyCheckpoint(shipped, 'demo', 'tests/fixtures/tiny-clip');
    const dataDir = temp('served-app-');
    const app = await startTestApp(dataDir, { CLIP_MODEL: '' }, undefined, { shippedCheckpoint: shipped });
    try {
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.status, 200, JSON.stringify(health.json));
      assert.equal(health.json.checks.clip.detail, TINY_CLIP_DIR);
      assert.match(health.json.checks.model.detail, /^demo \(tiny/);
      const cmd = await request(app, 'POST', '/api/command', { text: '/imagine cows in snow' });
      assert.equal(cmd.status, 202);
    } finally {
      await app.stop();
    }
  });
});
