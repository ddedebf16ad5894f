import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { generateSyntheticDataset } from '../../../src/training/data/synth/write.js';
import { buildDatasetCache } from '../../../src/training/data/cache-build.js';
import { openDatasetCache } from '../../../src/training/data/cache-loader.js';
import { CACHE_FILES } from '../../../src/training/data/cache-format.js';
import { prepareImage } from '../../../src/training/data/images.js';
import { TINY_CLIP } from './helpers/source.js';

let embedder: ClipEmbedder;
let tmp: string;
before(async () => {
  embedder = await ClipEmbedder.load({ model: TINY_CLIP, quantized: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'roundtrip-test-'));
});
after(async () => {
  await embedder.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('synth → build → load: pixels, image embeddings and caption embeddings arrive intact', async () => {
  const src = path.join(tmp, 'synth');
  await generateSyntheticDataset({ count: 12, resolution: 32, seed: 5, outDir: src });
  const ann = JSON.parse(await fs.readFile(path.join(src, 'annotations', 'captions_synth.json'), 'utf8'));
  const out = path.join(tmp, 'cache');
  const report = await buildDatasetCache({ source: src, outDir: out, resolution: 16, embedder, batchSize: 5, valFraction: 0.25 });
  assert.equal(report.counts.imagesKept, 12);
  assert.deepEqual(report.issues, []);
  assert.equal(report.counts.captionsKept, ann.annotations.length);

  // Expected per image id: pixels (sharp center-crop + resize of the source) and CLIP embedding of the CLIP input.
  const expected = new Map<string, { id: number; pixels: Buffer; emb: Float32Array; captions: string[] }>();
  for (const img of ann.images) {
    const file = path.join(src, 'images', img.file_name);
    const raw = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const pixels = await sharp(raw.data, { raw: { width: raw.info.width, height: raw.info.height, channels: 3 } })
      .resize(16, 16, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
    const prepared = await prepareImage(file, { resolution: 16 });
    assert.ok(prepared.ok);
    assert.deepEqual(prepared.image.pixels, pixels);
    const [emb] = await embedder.embedImages([prepared.image.clipPng]);
    const captions = ann.annotations.filter((a: { image_id: number }) => a.image_id === img.id).map((a: { caption: string }) => a.caption);
    expected.set(pixels.toString('base64'), { id: img.id, pixels, emb, captions });
  }
  assert.equal(expected.size, 12, 'the synthetic images differ from one another');

  const captionList: string[] = JSON.parse(await fs.readFile(path.join(out, CACHE_FILES.captions), 'utf8'));
  const captionEmb = await embedder.embedTexts(captionList);

  for (const conditioning of ['image', 'text'] as const) {
    const cache = await openDatasetCache(out, { conditioning });
    assert.equal(cache.fingerprint, report.fingerprint);
    assert.equal(cache.clipModel, embedder.modelId);
    assert.equal(cache.size('train') + cache.size('val'), 12);
    assert.ok(cache.size('val') > 0 && cache.size('train') > 0);
    const seen = new Set<number>();
    for (const split of ['train', 'val'] as const) {
      for await (const b of cache.batches(split, 4, { seed: 1, epoch: 2 })) {
        for (let i = 0; i < b.size; i++) {
          const px = Buffer.from(b.images.subarray(i * 768, (i + 1) * 768));
          const want = expected.get(px.toString('base64'));
          assert.ok(want, 'cached pixels equal the resized source image');
          seen.add(want.id);
          const row = b.embeddings.subarray(i * 512, (i + 1) * 512);
          if (conditioning === 'image') {
            assert.ok(maxAbsDiff(row, want.emb) < 1e-5, 'image embedding equals ClipEmbedder on that image');
          } else {
            const c = captionEmb.findIndex((e) => maxAbsDiff(e, row) < 1e-5);
            assert.ok(c >= 0, 'text embedding is the embedding of a caption');
            assert.ok(want.captions.includes(captionList[c]), 'and that caption belongs to the image');
          }
        }
      }
    }
    assert.equal(seen.size, 12);
  }
});
