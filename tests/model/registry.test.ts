import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync as mkdtempRaw, promises as fsp, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointRegistry } from '../../src/model/registry.js';
import type { CheckpointMeta } from '../../src/model/checkpoint.js';
import { getPreset } from '../../src/model/presets.js';
import { UserError } from '../../src/errors.js';

/** Writes the metadata of a checkpoint (all the registry reads). */
async function fakeCheckpoint(dir: string, name: string, epoch = 1): Promise<void> {
  const p = getPreset('tiny');
  const meta: CheckpointMeta = {
    name, preset: p.name, resolution: p.resolution, conditioning: p.conditioning, clipModel: 'tiny-clip',
    datasetFingerprint: 'fp', epoch, step: 5, losses: {}, createdAt: new Date().toISOString(), presetConfig: p,
  };
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'meta.json'), JSON.stringify(meta));
}

const made: string[] = [];
function mkdtempSync(prefix: string): string {
  const d = mkdtempRaw(prefix);
  made.push(d);
  return d;
}
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const isUserError = (re: RegExp) => (err: unknown) => err instanceof UserError && re.test(err.message);

test('register, list, activate, resolve and active', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'registry-'));
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'elsewhere-'));
  const reg = new CheckpointRegistry(root);
  assert.deepEqual(await reg.list(), []);
  assert.equal(await reg.active(), null);

  await fakeCheckpoint(path.join(root, 'alpha'), 'alpha', 3);
  await fakeCheckpoint(path.join(elsewhere, 'ckpt'), 'beta');
  await reg.register('beta', path.join(elsewhere, 'ckpt'));

  let list = await reg.list();
  assert.deepEqual(list.map((e) => [e.name, e.active]), [['alpha', false], ['beta', false]]);
  assert.equal(list[0].meta.epoch, 3, 'discovered from the root folder');
  assert.equal(list[1].dir, path.join(elsewhere, 'ckpt'));

  await reg.activate('beta');
  list = await reg.list();
  assert.deepEqual(list.map((e) => [e.name, e.active]), [['alpha', false], ['beta', true]]);
  assert.equal((await reg.active())?.name, 'beta');
  assert.equal((await new CheckpointRegistry(root).active())?.dir, path.join(elsewhere, 'ckpt'), 'state persists on disk');

  const alpha = await reg.resolve('alpha');
  assert.equal(alpha.dir, path.join(root, 'alpha'));
  await reg.activate('alpha');
  assert.equal((await reg.active())?.name, 'alpha');
  const state = JSON.parse(await fsp.readFile(path.join(root, 'registry.json'), 'utf8'));
  assert.equal(state.checkpoints.alpha.dir, 'alpha', 'folders under the root are stored relative to it');
  assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('.')), [], 'no temp files left');
});

test('a training run folder is found through its best (else last) checkpoint', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'registry-'));
  await fakeCheckpoint(path.join(root, 'run1', 'last'), 'run1', 4);
  await fakeCheckpoint(path.join(root, 'run1', 'best'), 'run1', 2);
  await fakeCheckpoint(path.join(root, 'run2', 'last'), 'run2', 1);
  await fsp.mkdir(path.join(root, 'empty'));
  const reg = new CheckpointRegistry(root);
  const list = await reg.list();
  assert.deepEqual(list.map((e) => [e.name, e.meta.epoch]), [['run1', 2], ['run2', 1]]);
  assert.equal((await reg.resolve('run1')).dir, path.join(root, 'run1', 'best'));
});

test('unknown names, bad names, folders without checkpoints and vanished checkpoints', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'registry-'));
  const reg = new CheckpointRegistry(root);
  await assert.rejects(reg.resolve('ghost'), isUserError(/no model has been trained yet/));
  await fakeCheckpoint(path.join(root, 'real'), 'real');
  await assert.rejects(reg.activate('ghost'), isUserError(/Known models: real/));
  await assert.rejects(reg.register('../evil', path.join(root, 'real')), isUserError(/not a usable model name/));
  await assert.rejects(reg.register('nothing', path.join(root, 'missing')), isUserError(/no meta\.json/));
  await reg.activate('real');
  await fsp.rm(path.join(root, 'real'), { recursive: true });
  assert.equal(await reg.active(), null, 'an active checkpoint whose folder is gone is not served');
  assert.deepEqual(await reg.list(), []);
  await fsp.writeFile(path.join(root, 'registry.json'), '{"version": 2}');
  await assert.rejects(reg.list(), isUserError(/damaged/));
});
