import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { buildDatasetCache, collectCandidates } from '../../../src/training/data/cache-build.js';
import { CACHE_FILES, splitForId } from '../../../src/training/data/cache-format.js';
import { fingerprintFiles } from '../../../src/training/data/fingerprint.js';
import { readCacheManifest } from '../../../src/training/data/cache-loader.js';
import { UserError } from '../../../src/errors.js';
import { cmykJpeg, garbage, grayPng, rgbaPng, rgbJpeg, rgbPng, truncatedJpeg } from './helpers/images.js';
import { TINY_CLIP, writeSource } from './helpers/source.js';

let embedder: ClipEmbedder;
let tmp: string;

before(async () => {
  embedder = await ClipEmbedder.load({ model: TINY_CLIP, quantized: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cache-build-test-'));
});
after(async () => {
  await embedder.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

test('every kind of bad input is skipped or converted, counted and listed; the rest is cached', async () => {
  const src = path.join(tmp, 'bad-src');
  await writeSource(
    src,
    [
      { id: 1, file: 'good.png', bytes: await rgbPng(60, 50, 1), captions: ['two cows on grass', 'cows in a field'] },
      { id: 2, file: 'gray.png', bytes: await grayPng(48, 48, 2), captions: ['a gray sheep'] },
      { id: 3, file: 'cmyk.jpg', bytes: await cmykJpeg(48, 40, 3), captions: ['a horse on a hill'] },
      { id: 4, file: 'alpha.png', bytes: await rgbaPng(40, 40), captions: ['red meadow', '   '] },
      { id: 5, file: 'tiny.png', bytes: await rgbPng(8, 8, 5), captions: ['tiny lamb'] },
      { id: 6, file: 'cut.jpg', bytes: await truncatedJpeg(64, 64, 6), captions: ['cut farm'] },
      { id: 7, file: 'junk.jpg', bytes: garbage(700, 7), captions: ['junk'] },
      { id: 8, file: 'nocaption.jpg', bytes: await rgbJpeg(40, 40, 8), captions: [] },
      { id: 1, file: 'dup.png', bytes: await rgbPng(40, 40, 9), captions: [] },
      { id: 10, file: 'missing.jpg', bytes: null, captions: ['a missing mountain'] },
      { id: 11, file: '../annotations/captions_test.json', bytes: null, captions: ['escaping hill'] },
    ],
    {},
  );
  // A second captions file: a duplicate id across files, and a caption for an image that does not exist.
  await fs.writeFile(
    path.join(src, 'annotations', 'captions_zmore.json'),
    JSON.stringify({
      images: [{ id: 3, file_name: 'cmyk-again.jpg' }],
      annotations: [{ id: 99, image_id: 999, caption: 'orphan snow' }],
    }),
  );
  const out = path.join(tmp, 'bad-cache');
  const phases = new Set<string>();
  const report = await buildDatasetCache({
    source: src,
    outDir: out,
    resolution: 16,
    embedder,
    batchSize: 3,
    onProgress: (p) => phases.add(p.phase),
  });
  assert.deepEqual([...phases].sort(), ['captions', 'fingerprint', 'images']);

  const byKind: Record<string, (number | string)[]> = {};
  for (const i of report.issues) (byKind[i.kind] ??= []).push(i.id);
  assert.deepEqual(byKind, {
    'duplicate-id': [1, 3],
    'orphan-caption': [999],
    'empty-caption': [4],
    'no-caption': [8],
    'too-small': [5],
    corrupt: [6],
    unreadable: [7],
    'missing-file': [10, 11],
  });
  assert.deepEqual(report.counts.skipped, {
    'duplicate-id': 2, 'orphan-caption': 1, 'empty-caption': 1, 'no-caption': 1, 'too-small': 1, corrupt: 1, unreadable: 1, 'missing-file': 2,
  });
  assert.deepEqual(report.converted.map((c) => [c.id, c.conversions]), [[2, ['grayscale']], [3, ['cmyk']], [4, ['alpha']]]);
  assert.equal(report.counts.imagesListed, 12);
  assert.equal(report.counts.imagesKept, 4);
  assert.equal(report.counts.captionsKept, 5);
  assert.equal(report.counts.train + report.counts.val, 4);

  const manifest = await readCacheManifest(out);
  assert.deepEqual(manifest.counts, { images: 4, captions: 5, train: report.counts.train, val: report.counts.val });
  assert.equal(manifest.resolution, 16);
  assert.equal(manifest.embeddingDim, 512);
  assert.equal(manifest.clipModel, embedder.modelId);
  assert.equal(manifest.fingerprint, await fingerprintFiles(out));
  assert.equal(manifest.fingerprint, report.fingerprint);
  assert.equal((await fs.stat(path.join(out, CACHE_FILES.images))).size, 4 * 16 * 16 * 3);
  assert.equal((await fs.stat(path.join(out, CACHE_FILES.imageEmbeddings))).size, 4 * 512 * 4);
  assert.equal((await fs.stat(path.join(out, CACHE_FILES.textEmbeddings))).size, 5 * 512 * 4);
  const index = JSON.parse(await fs.readFile(path.join(out, CACHE_FILES.index), 'utf8'));
  assert.deepEqual(
    index.images.map((e: { id: number; captionOffset: number; captionCount: number; split: string }) => [e.id, e.captionOffset, e.captionCount, e.split]),
    [[1, 0, 2, splitForId(1)], [2, 2, 1, splitForId(2)], [3, 3, 1, splitForId(3)], [4, 4, 1, splitForId(4)]],
  );
  assert.deepEqual(JSON.parse(await fs.readFile(path.join(out, CACHE_FILES.captions), 'utf8')), [
    'two cows on grass', 'cows in a field', 'a gray sheep', 'a horse on a hill', 'red meadow',
  ]);
  const saved = JSON.parse(await fs.readFile(path.join(out, CACHE_FILES.report), 'utf8'));
  assert.deepEqual(saved.issues, report.issues);
  // Nothing left beside the cache (temp folders).
  assert.deepEqual((await fs.readdir(tmp)).filter((n) => n.includes('bad-cache')), ['bad-cache']);
});

test('rebuilding replaces an existing cache atomically; other folders and all-bad sources are refused', async () => {
  const src = path.join(tmp, 'small-src');
  await writeSource(src, [
    { id: 'a', file: 'a.jpg', bytes: await rgbJpeg(40, 40, 1), captions: ['cows'] },
    { id: 'b', file: 'b.jpg', bytes: await rgbJpeg(40, 40, 2), captions: ['sheep'] },
  ]);
  const out = path.join(tmp, 'small-cache');
  const first = await buildDatasetCache({ source: src, outDir: out, resolution: 8, embedder });
  const second = await buildDatasetCache({ source: src, outDir: out, resolution: 12, embedder, valFraction: 0 });
  assert.notEqual(first.fingerprint, second.fingerprint);
  const manifest = await readCacheManifest(out);
  assert.equal(manifest.resolution, 12);
  assert.equal(manifest.counts.val, 0);
  assert.deepEqual((await fs.readdir(tmp)).filter((n) => n.includes('small-cache')), ['small-cache']);

  const notACache = path.join(tmp, 'not-a-cache');
  await fs.mkdir(notACache);
  await fs.writeFile(path.join(notACache, 'precious.txt'), 'keep me');
  await assert.rejects(buildDatasetCache({ source: src, outDir: notACache, resolution: 8, embedder }), (e: Error) => e instanceof UserError && /not a dataset cache/.test(e.message));
  assert.equal(await fs.readFile(path.join(notACache, 'precious.txt'), 'utf8'), 'keep me');

  const badSrc = path.join(tmp, 'all-bad-src');
  await writeSource(badSrc, [{ id: 1, file: 'x.jpg', bytes: garbage(100, 1), captions: ['cow'] }]);
  await assert.rejects(buildDatasetCache({ source: badSrc, outDir: path.join(tmp, 'never'), resolution: 8, embedder }), /None of the 1 captioned images/);
  assert.deepEqual((await fs.readdir(tmp)).filter((n) => n.includes('never')), []);
  await assert.rejects(buildDatasetCache({ source: path.join(tmp, 'nope'), outDir: path.join(tmp, 'never'), resolution: 8, embedder }), UserError);
});

test('the split is a stable function of the image id, close to the requested fraction', () => {
  let val = 0;
  for (let id = 0; id < 10_000; id++) if (splitForId(id, 0.1) === 'val') val++;
  assert.ok(val > 900 && val < 1100, `val ${val} of 10000`);
  assert.equal(splitForId(123, 0.1), splitForId('123', 0.1));
  assert.equal(splitForId(5, 0), 'train');
});

test('a captions file with MS COCO\'s number of captions is read without overflowing the stack', async () => {
  // 600k captions, as captions_train2017.json has: spreading them into one push() call threw RangeError.
  const images = Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, file_name: `${i + 1}.jpg`, width: 64, height: 64 }));
  const annotations = Array.from({ length: 600_000 }, (_, k) => ({ id: k + 1, image_id: (k % 1000) + 1, caption: `cow ${k % 7}` }));
  const file = path.join(tmp, 'many-captions.json');
  await fs.writeFile(file, JSON.stringify({ images, annotations }));
  const { candidates } = await collectCandidates([file], []);
  assert.equal(candidates.length, 1000);
  assert.equal(candidates.reduce((n, c) => n + c.captions.length, 0), 600_000);
});
