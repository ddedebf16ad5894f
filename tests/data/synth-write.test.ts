import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { Command } from 'commander';
import { registerSynth } from '../../src/cli/commands/dataset-synth.js';
import { buildProgram } from '../../src/cli/index.js';
import { UserError } from '../../src/errors.js';
import {
  SYNTH_ANNOTATIONS_FILE, generateSyntheticDataset, kindsMentioned, parseScene, renderScene, type SynthCocoFile,
} from '../../src/training/data/synth/index.js';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'synth-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const sub of ['annotations', 'images']) {
    for (const f of (await fs.readdir(path.join(dir, sub))).sort()) files.set(`${sub}/${f}`, await fs.readFile(path.join(dir, sub, f)));
  }
  return files;
}

const readCoco = async (dir: string): Promise<SynthCocoFile> =>
  JSON.parse(await fs.readFile(path.join(dir, 'annotations', SYNTH_ANNOTATIONS_FILE), 'utf8')) as SynthCocoFile;

describe('generateSyntheticDataset', () => {
  it('writes byte-identical files for the same seed and different ones for another seed', async () => {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    const c = path.join(root, 'c');
    const progress: number[] = [];
    const summary = await generateSyntheticDataset({ count: 10, resolution: 32, seed: 3, outDir: a, onProgress: (d) => progress.push(d) });
    await generateSyntheticDataset({ count: 10, resolution: 32, seed: 3, outDir: b });
    await generateSyntheticDataset({ count: 10, resolution: 32, seed: 4, outDir: c });
    assert.equal(summary.images, 10);
    assert.deepEqual(progress.sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const ta = await readTree(a);
    const tb = await readTree(b);
    const tc = await readTree(c);
    assert.equal(ta.size, 11);
    assert.deepEqual([...ta.keys()], [...tb.keys()]);
    for (const [k, v] of ta) assert.ok(v.equals(tb.get(k)!), `${k} differs between runs with the same seed`);
    const key = `annotations/${SYNTH_ANNOTATIONS_FILE}`;
    assert.ok(!ta.get(key)!.equals(tc.get(key)!));
    assert.ok(!ta.get('images/synth_000001.png')!.equals(tc.get('images/synth_000001.png')!));
  });

  it('writes a valid COCO captions file whose images exist, decode to res x res RGB, and match their scenes', async () => {
    const dir = path.join(root, 'layout');
    const res = 64;
    const summary = await generateSyntheticDataset({ count: 12, resolution: res, seed: 9, outDir: dir });
    const coco = await readCoco(dir);
    assert.equal(summary.captions, coco.annotations.length);
    assert.equal(coco.info.generator.seed, 9);
    assert.ok(Array.isArray(coco.licenses));
    assert.equal(coco.images.length, 12);
    assert.equal(new Set(coco.images.map((i) => i.id)).size, 12, 'image ids unique');
    assert.equal(new Set(coco.images.map((i) => i.file_name)).size, 12, 'file names unique');
    assert.equal(new Set(coco.annotations.map((a) => a.id)).size, coco.annotations.length, 'annotation ids unique');
    const ids = new Set(coco.images.map((i) => i.id));
    for (const a of coco.annotations) {
      assert.ok(ids.has(a.image_id), `annotation ${a.id} points at a missing image`);
      assert.equal(typeof a.caption, 'string');
    }
    for (const img of coco.images) {
      const caps = coco.annotations.filter((a) => a.image_id === img.id);
      assert.ok(caps.length >= 3, `image ${img.id} has ${caps.length} captions`);
      const scene = parseScene(img.scene);
      for (const c of caps) {
        const k = kindsMentioned(c.caption);
        assert.equal(k.ground, scene.ground, c.caption);
        assert.ok(k.sky === scene.sky || k.sky === undefined, c.caption);
      }
      assert.equal(img.width, res);
      assert.equal(img.height, res);
      const { data, info } = await sharp(path.join(dir, 'images', img.file_name)).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [res, res, 3]);
      assert.ok(Buffer.from(renderScene(scene, res)).equals(data), `image ${img.id} is its scene, drawn`);
    }
  });

  it('refuses to write over an existing dataset unless asked to', async () => {
    const dir = path.join(root, 'again');
    await generateSyntheticDataset({ count: 4, resolution: 16, seed: 1, outDir: dir });
    await assert.rejects(generateSyntheticDataset({ count: 2, resolution: 16, seed: 1, outDir: dir }), (e: unknown) => e instanceof UserError && /--force/.test(e.message));
    await generateSyntheticDataset({ count: 2, resolution: 16, seed: 1, outDir: dir, overwrite: true });
    assert.deepEqual((await fs.readdir(path.join(dir, 'images'))).sort(), ['synth_000001.png', 'synth_000002.png']);
    assert.equal((await readCoco(dir)).images.length, 2);
  });

  it('rejects a bad count or resolution with a message', async () => {
    await assert.rejects(generateSyntheticDataset({ count: 0, resolution: 64, seed: 1, outDir: path.join(root, 'bad') }), UserError);
    await assert.rejects(generateSyntheticDataset({ count: 2, resolution: 3, seed: 1, outDir: path.join(root, 'bad') }), UserError);
  });
});

describe('dataset synth CLI', () => {
  /** Runs `dataset synth ...args` in-process and returns what it printed. */
  async function runSynthCli(args: string[]): Promise<string> {
    let out = '';
    const program = new Command().exitOverride();
    const dataset = program.command('dataset').exitOverride();
    registerSynth(dataset, { write: (text) => (out += text) });
    await program.parseAsync(['dataset', 'synth', ...args, '--no-progress'], { from: 'user' });
    return out;
  }

  it('writes the dataset and prints a summary line', async () => {
    const dir = path.join(root, 'cli');
    const out = await runSynthCli(['--count', '5', '--res', '32', '--seed', '2', '--out', dir]);
    assert.match(out, /^wrote 5 synthetic 32x32 images with \d+ captions and \d+ animals to .* in [\d.]+ s \(skies: blue \d+/);
    assert.equal((await readCoco(dir)).images.length, 5);
    await assert.rejects(runSynthCli(['--count', '5', '--res', '32', '--out', dir]), (e: unknown) => e instanceof UserError && /already holds a dataset.*--force/.test(e.message));
    const json = await runSynthCli(['--count', '3', '--res', '16', '--out', dir, '--force', '--json']);
    assert.equal(JSON.parse(json).images, 3);
  });

  it('rejects a bad --res', async () => {
    await assert.rejects(runSynthCli(['--res', 'big', '--out', path.join(root, 'x')]), (e: unknown) => e instanceof UserError && /--res must be an integer/.test(e.message));
  });

  it('is part of the dataset command group of the CLI', () => {
    const dataset = buildProgram().commands.find((c) => c.name() === 'dataset');
    assert.ok(dataset?.commands.some((c) => c.name() === 'synth'));
  });
});
