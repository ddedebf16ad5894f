import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatasetCache } from '../../../src/training/data/cache-loader.js';
import { CACHE_FILES } from '../../../src/training/data/cache-format.js';
import { UserError } from '../../../src/errors.js';
import type { Batch, BatchSource, Split } from '../../../src/training/dataset.js';
import { writeHandmadeCache } from './helpers/handmade-cache.js';

const RES = 4;
const ROW = RES * RES * 3;
const DIM = 8;
const N = 53;
let tmp: string;
let dir: string;

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'cache-loader-test-'));
  dir = path.join(tmp, 'cache');
  await writeHandmadeCache(dir, { images: N, resolution: RES, dim: DIM, maxCaptions: 3, valRows: (r) => r % 5 === 0 });
});
after(() => fsp.rm(tmp, { recursive: true, force: true }));

/** Rows (image row numbers decoded from the bytes) and embedding keys of an epoch. */
async function epoch(src: BatchSource, split: Split, batchSize: number, seed: number, ep: number, shuffle?: boolean) {
  const rows: number[] = [];
  const emb: number[] = [];
  const sizes: number[] = [];
  for await (const b of src.batches(split, batchSize, { seed, epoch: ep, shuffle })) {
    sizes.push(b.size);
    checkBatch(b);
    for (let i = 0; i < b.size; i++) {
      rows.push(b.images[i * ROW] | (b.images[i * ROW + 1] << 8));
      emb.push(b.embeddings[i * DIM]);
    }
  }
  return { rows, emb, sizes };
}

function checkBatch(b: Batch) {
  assert.equal(b.images.length, b.size * ROW);
  assert.equal(b.embeddings.length, b.size * DIM);
  for (let i = 0; i < b.size; i++) {
    const r = b.images[i * ROW] | (b.images[i * ROW + 1] << 8);
    for (let k = 2; k < ROW; k++) assert.equal(b.images[i * ROW + k], r % 251, 'row bytes belong to one image');
  }
}

const trainRows = Array.from({ length: N }, (_, r) => r).filter((r) => r % 5 !== 0);
const valRows = Array.from({ length: N }, (_, r) => r).filter((r) => r % 5 === 0);

test('image mode: each epoch covers the split exactly once, shuffled by (seed, epoch), embeddings match images', async () => {
  const src = await openDatasetCache(dir, { conditioning: 'image' });
  assert.equal(src.resolution, RES);
  assert.equal(src.embeddingDim, DIM);
  assert.equal(src.clipModel, 'handmade-clip');
  assert.match(src.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(src.size('train'), trainRows.length);
  assert.equal(src.size('val'), valRows.length);

  const a = await epoch(src, 'train', 8, 7, 0);
  assert.deepEqual([...a.rows].sort((x, y) => x - y), trainRows);
  assert.deepEqual(a.sizes, [8, 8, 8, 8, 8, 2]);
  assert.deepEqual(a.emb, a.rows, 'image embedding row = image row');
  assert.notDeepEqual(a.rows, trainRows, 'shuffled');
  const again = await epoch(src, 'train', 8, 7, 0);
  assert.deepEqual(again.rows, a.rows, 'same seed and epoch, same order');
  const otherBatch = await epoch(src, 'train', 5, 7, 0);
  assert.deepEqual(otherBatch.rows, a.rows, 'order does not depend on the batch size');
  const nextEpoch = await epoch(src, 'train', 8, 7, 1);
  assert.notDeepEqual(nextEpoch.rows, a.rows);
  assert.deepEqual([...nextEpoch.rows].sort((x, y) => x - y), trainRows);
  const otherSeed = await epoch(src, 'train', 8, 8, 0);
  assert.notDeepEqual(otherSeed.rows, a.rows);

  const val = await epoch(src, 'val', 4, 7, 3);
  assert.deepEqual(val.rows, valRows, 'val is in row order unless asked to shuffle');
  const valShuffled = await epoch(src, 'val', 4, 7, 3, true);
  assert.notDeepEqual(valShuffled.rows, valRows);
  assert.deepEqual([...valShuffled.rows].sort((x, y) => x - y), valRows);
});

test('text mode: one caption of the image per epoch, drawn deterministically, redrawn each epoch (val stays fixed)', async () => {
  const src = await openDatasetCache(dir, { conditioning: 'text' });
  const entries = new Map(src.entries('train').concat(src.entries('val')).map((e) => [Number(e.id) - 1000, e]));
  const captionOf = (row: number, key: number) => {
    const e = entries.get(row)!;
    const c = key - 10000;
    assert.ok(c >= e.captionOffset && c < e.captionOffset + e.captionCount, `caption ${c} belongs to image ${row}`);
    return c;
  };
  const e0 = await epoch(src, 'train', 6, 1, 0);
  const picks0 = new Map(e0.rows.map((r, i) => [r, captionOf(r, e0.emb[i])]));
  const e0again = await epoch(src, 'train', 16, 1, 0);
  assert.deepEqual(new Map(e0again.rows.map((r, i) => [r, captionOf(r, e0again.emb[i])])), picks0);
  const e1 = await epoch(src, 'train', 6, 1, 1);
  const picks1 = new Map(e1.rows.map((r, i) => [r, captionOf(r, e1.emb[i])]));
  const multi = trainRows.filter((r) => entries.get(r)!.captionCount > 1);
  assert.ok(multi.some((r) => picks0.get(r) !== picks1.get(r)), 'captions are redrawn in another epoch');
  // Over many epochs every caption of a 3-caption image shows up.
  const seen = new Set<number>();
  for (let ep = 0; ep < 12; ep++) {
    const e = await epoch(src, 'train', 16, 1, ep);
    const i = e.rows.indexOf(2);
    seen.add(captionOf(2, e.emb[i]));
  }
  assert.equal(seen.size, 3);
  const v0 = await epoch(src, 'val', 4, 1, 0);
  const v5 = await epoch(src, 'val', 4, 1, 5);
  v0.rows.forEach((r, i) => captionOf(r, v0.emb[i]));
  assert.deepEqual(v5.emb, v0.emb);
});

test('memory stays bounded: reads are per batch at offsets, at most two batches in flight, files closed', async (t) => {
  const originalOpen = fsp.open;
  const reads: { file: string; length: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let opened = 0;
  let closed = 0;
  t.mock.method(fsp, 'open', async (...args: Parameters<typeof fsp.open>) => {
    const fh = await originalOpen(...args);
    const file = path.basename(String(args[0]));
    opened++;
    const read = fh.read.bind(fh) as (...a: unknown[]) => Promise<{ bytesRead: number }>;
    (fh as unknown as { read: unknown }).read = async (buf: Uint8Array, offset: number, length: number, position: number) => {
      reads.push({ file, length });
      inFlight += length;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await read(buf, offset, length, position);
      } finally {
        inFlight -= length;
      }
    };
    const close = fh.close.bind(fh);
    (fh as unknown as { close: unknown }).close = async () => {
      closed++;
      return close();
    };
    return fh;
  });
  const readFile = t.mock.method(fsp, 'readFile');
  const src = await openDatasetCache(dir, { conditioning: 'image' });
  const batchBytes = 8 * (ROW + DIM * 4);
  let batches = 0;
  for await (const b of src.batches('train', 8, { seed: 3, epoch: 0 })) {
    batches++;
    // Let the read-ahead finish while the consumer "works".
    await new Promise((r) => setTimeout(r, 2));
    assert.ok(b.size > 0);
  }
  assert.equal(batches, 6);
  assert.ok(
    readFile.mock.calls.every((c) => !/\.(u8|f32)$/.test(String(c.arguments[0]))),
    'data files are never read whole',
  );
  const imageBytes = reads.filter((r) => r.file === CACHE_FILES.images).reduce((s, r) => s + r.length, 0);
  const embBytes = reads.filter((r) => r.file === CACHE_FILES.imageEmbeddings).reduce((s, r) => s + r.length, 0);
  assert.equal(imageBytes, trainRows.length * ROW, 'each training image read exactly once');
  assert.equal(embBytes, trainRows.length * DIM * 4);
  assert.ok(reads.every((r) => r.length <= 8 * ROW), 'no read larger than a batch');
  assert.ok(maxInFlight <= 2 * batchBytes, `bytes in flight ${maxInFlight} <= two batches ${2 * batchBytes}`);
  assert.equal(opened, closed, 'every file handle closed after the epoch');

  // A consumer that stops early closes the files too.
  for await (const b of src.batches('train', 4, { seed: 3, epoch: 1 })) {
    assert.ok(b.size);
    break;
  }
  assert.equal(opened, closed);
  mock.restoreAll();
});

test('sample captions: first caption of the first val images with their text embeddings', async () => {
  const src = await openDatasetCache(dir, { conditioning: 'image' });
  const samples = await src.sampleCaptions(3);
  // val rows 0, 5, 10; caption offsets: row r has 1 + (r % 3) captions.
  const offsets = [0, 5, 10].map((r) => src.entries('val').find((e) => Number(e.id) === 1000 + r)!.captionOffset);
  assert.deepEqual(samples.map((s) => s.label), ['caption 0 of 0', 'caption 0 of 5', 'caption 0 of 10']);
  assert.deepEqual(samples.map((s) => s.embedding[0]), offsets.map((o) => 10000 + o));
  assert.equal(samples[0].embedding.length, DIM);
  assert.equal((await src.sampleCaptions(2, 'train'))[0].label, 'caption 0 of 1');
});

test('a damaged or missing cache gives a UserError that says to rebuild', async () => {
  const broken = path.join(tmp, 'broken');
  await writeHandmadeCache(broken, { images: 5, resolution: RES, dim: DIM });
  await fsp.truncate(path.join(broken, CACHE_FILES.images), ROW * 3);
  await assert.rejects(openDatasetCache(broken, { conditioning: 'image' }), (e: Error) => e instanceof UserError && /rebuild/.test(e.message));
  await assert.rejects(openDatasetCache(path.join(tmp, 'nothing'), { conditioning: 'image' }), (e: Error) => e instanceof UserError && /dataset build/.test(e.message));
  const old = path.join(tmp, 'old');
  await writeHandmadeCache(old, { images: 2, resolution: RES, dim: DIM });
  const m = JSON.parse(await fsp.readFile(path.join(old, CACHE_FILES.manifest), 'utf8'));
  await fsp.writeFile(path.join(old, CACHE_FILES.manifest), JSON.stringify({ ...m, version: 0 }));
  await assert.rejects(openDatasetCache(old, { conditioning: 'text' }), /version 0/);
  await assert.rejects(openDatasetCache(dir, { conditioning: 'audio' as 'text' }), UserError);
});
