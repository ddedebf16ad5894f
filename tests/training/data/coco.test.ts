import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compileKeywords, keywordForms, matchCaption, parseKeywordList, DEFAULT_BUCOLIC_KEYWORDS } from '../../../src/training/data/keywords.js';
import { parseCocoCaptions, readCocoCaptions, selectByKeywords, writeCocoCaptions, type CocoCaptions } from '../../../src/training/data/coco.js';
import { UserError } from '../../../src/errors.js';

test('keyword forms: plurals, invariant and irregular words', () => {
  assert.deepEqual(keywordForms('Cow'), ['cow', 'cows']);
  assert.deepEqual(keywordForms('sheep'), ['sheep']);
  assert.deepEqual(keywordForms('grass'), ['grass', 'grasses']);
  assert.deepEqual(keywordForms('pony'), ['pony', 'ponies']);
  assert.deepEqual(keywordForms('calf'), ['calf', 'calves']);
  assert.deepEqual(keywordForms('dirt road'), ['dirt road', 'dirt roads']);
});

test('matching is whole-word, plural-aware and case-insensitive', () => {
  const m = compileKeywords(DEFAULT_BUCOLIC_KEYWORDS);
  assert.deepEqual(matchCaption('Two COWS grazing in a Field.', m), ['cow', 'field']);
  assert.deepEqual(matchCaption('A lamb and its sheep on the hills', m), ['sheep', 'lamb', 'hill']);
  assert.deepEqual(matchCaption('horses on snow-capped mountains', m), ['horse', 'mountain', 'snow']);
  assert.deepEqual(matchCaption("the farm's meadows and pastures", m), ['pasture', 'meadow', 'farm']);
  // Not whole words:
  assert.deepEqual(matchCaption('a cowboy on a snowboard near the farmhouse, seahorse, hillside, grassy', m), []);
  assert.deepEqual(matchCaption('A man holding a cell phone', m), []);
  assert.deepEqual(matchCaption('a view of the countryside', m), ['countryside']);
  const custom = compileKeywords(parseKeywordList(' goat, ,Barn '));
  assert.deepEqual(custom.map((k) => k.keyword), ['goat', 'barn']);
  assert.deepEqual(matchCaption('Goats near a red barn', custom), ['goat', 'barn']);
});

const sample: CocoCaptions = {
  info: { description: 'test' },
  images: [
    { id: 1, file_name: 'a.jpg', coco_url: 'http://x/a.jpg', width: 640, height: 480 },
    { id: 2, file_name: 'b.jpg', coco_url: 'http://x/b.jpg', width: 640, height: 480 },
    { id: 3, file_name: 'c.jpg', coco_url: 'http://x/c.jpg', width: 640, height: 480 },
    { id: 4, file_name: 'd.jpg', coco_url: 'http://x/d.jpg', width: 640, height: 480 },
  ],
  annotations: [
    { id: 10, image_id: 1, caption: 'Cows in a field' },
    { id: 11, image_id: 1, caption: 'some animals standing around' },
    { id: 12, image_id: 2, caption: 'A pizza on a table' },
    { id: 13, image_id: 3, caption: 'A cow on a hill' },
    { id: 14, image_id: 3, caption: 'cattle on the hills' },
    { id: 15, image_id: 4, caption: 'a kitchen' },
  ],
};

test('selection keeps matched images with all their captions and counts per keyword', () => {
  const sel = selectByKeywords(sample, ['cow', 'hill', 'field', 'sheep']);
  assert.deepEqual(sel.subset.images.map((i) => i.id), [1, 3]);
  assert.deepEqual(sel.subset.annotations.map((a) => a.id), [10, 11, 13, 14]);
  assert.deepEqual(sel.subset.info, { description: 'test' });
  assert.deepEqual(sel.keywords, [
    { keyword: 'cow', images: 2, captions: 2 },
    { keyword: 'hill', images: 1, captions: 2 },
    { keyword: 'field', images: 1, captions: 1 },
    { keyword: 'sheep', images: 0, captions: 0 },
  ]);
  assert.deepEqual(sel.totals, { imagesScanned: 4, captionsScanned: 6, captionsMatched: 3, imagesSelected: 2, captionsSelected: 4 });
  assert.equal(sample.images.length, 4, 'input untouched');
  assert.throws(() => selectByKeywords(sample, [' ']), UserError);
});

test('reading: valid file round trips, a wrong shape is a UserError', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coco-test-'));
  try {
    const file = path.join(dir, 'annotations', 'captions.json');
    await writeCocoCaptions(file, sample);
    assert.deepEqual(await readCocoCaptions(file), sample);
    await fs.writeFile(path.join(dir, 'bad.json'), '{"images": 3}');
    await assert.rejects(readCocoCaptions(path.join(dir, 'bad.json')), (e: Error) => e instanceof UserError && /not a COCO captions file/.test(e.message));
    await fs.writeFile(path.join(dir, 'broken.json'), '{"images": [');
    await assert.rejects(readCocoCaptions(path.join(dir, 'broken.json')), /not valid JSON/);
    await assert.rejects(readCocoCaptions(path.join(dir, 'nope.json')), /Cannot read/);
    assert.throws(() => parseCocoCaptions({ images: [{ id: 1 }], annotations: [] }), UserError);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
