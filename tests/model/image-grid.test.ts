import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { defaultColumns, defaultScale, gridPng, imagePng } from '../../src/model/image-grid.js';

function solid(size: number, r: number, g: number, b: number): Uint8Array {
  const img = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) img.set([r, g, b], i * 3);
  return img;
}

async function decode(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  return { info, at };
}

test('default grid layout: one row up to 3, 2x2 for 4, square-ish beyond', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 9, 10].map(defaultColumns), [1, 2, 3, 2, 3, 3, 4]);
  assert.equal(defaultScale(64), 4);
  assert.equal(defaultScale(128), 2);
  assert.equal(defaultScale(512), 1);
});

test('gridPng places each image in its cell, upscaled, with gaps of the background colour', async () => {
  const colours: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]];
  const png = await gridPng(colours.map((c) => solid(8, ...c)), 8, { scale: 3, gap: 2, kernel: 'nearest', background: { r: 1, g: 2, b: 3 } });
  const { info, at } = await decode(png);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  // 5 images -> 3 columns, 2 rows of 24 px tiles with 2 px gaps.
  assert.equal(info.width, 3 * 24 + 2 * 2);
  assert.equal(info.height, 2 * 24 + 2);
  colours.forEach((c, i) => {
    const x = (i % 3) * 26;
    const y = Math.floor(i / 3) * 26;
    assert.deepEqual(at(x + 12, y + 12), c, `cell ${i}`);
    assert.deepEqual(at(x + 23, y + 23), c, `cell ${i} corner`);
  });
  assert.deepEqual(at(24, 5), [1, 2, 3], 'gap');
  assert.deepEqual(at(3 * 24 + 2 * 2 - 5, 26 + 5), [1, 2, 3], 'empty last cell');
});

test('gridPng honours columns and rejects images of the wrong size', async () => {
  const imgs = [solid(4, 10, 20, 30), solid(4, 40, 50, 60), solid(4, 70, 80, 90), solid(4, 1, 1, 1)];
  const { info } = await decode(await gridPng(imgs, 4, { columns: 4, scale: 1, gap: 0 }));
  assert.deepEqual([info.width, info.height], [16, 4]);
  await assert.rejects(gridPng([new Uint8Array(10)], 4), /bytes/);
  await assert.rejects(gridPng([], 4), /at least one/);
});

test('imagePng keeps the pixels with nearest upscaling', async () => {
  const img = solid(2, 0, 0, 0);
  img.set([200, 100, 50], 3); // pixel (1, 0)
  const { info, at } = await decode(await imagePng(img, 2, 4, 'nearest'));
  assert.deepEqual([info.width, info.height], [8, 8]);
  assert.deepEqual(at(0, 0), [0, 0, 0]);
  assert.deepEqual(at(7, 3), [200, 100, 50]);
  assert.deepEqual(at(4, 0), [200, 100, 50]);
  const smooth = await decode(await imagePng(img, 2, 4));
  assert.deepEqual([smooth.info.width, smooth.info.height], [8, 8]);
});
