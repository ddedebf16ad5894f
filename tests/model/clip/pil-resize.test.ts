import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RawImage } from '@xenova/transformers';
import sharp from 'sharp';
import { resizeAndCropLikeClip } from '../../../src/model/clip/image-input.js';
import { centerCrop, resizeBicubicPil, shortestEdgeSize } from '../../../src/model/clip/pil-resize.js';
import { reference, TINY_CLIP_DIR } from './helpers.js';

const CLIP_CONFIG = { do_resize: true, size: { shortest_edge: 224 }, resample: 3, do_center_crop: true, crop_size: { height: 224, width: 224 } };
const IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073];
const IMAGE_STD = [0.26862954, 0.26130258, 0.27577711];

describe('resizeBicubicPil', () => {
  it('rounds like Pillow: [0, 255] shrunk to one pixel is 128', () => {
    assert.deepEqual(Array.from(resizeBicubicPil(new Uint8Array([0, 255]), 2, 1, 1, 1, 1)), [128]);
  });

  it('is the identity at the same size and keeps a flat image flat at any size', () => {
    const src = new Uint8Array(5 * 4 * 3).map((_, i) => (i * 37) % 256);
    assert.deepEqual(resizeBicubicPil(src, 5, 4, 3, 5, 4), src);
    const flat = new Uint8Array(30 * 20 * 3).fill(93);
    for (const [w, h] of [[7, 5], [64, 41], [30, 50]]) {
      assert.ok(resizeBicubicPil(flat, 30, 20, 3, w, h).every((v) => v === 93), `${w}x${h}`);
    }
  });

  it('antialiases when shrinking: a one-pixel checkerboard halves to grey', () => {
    const w = 40;
    const src = new Uint8Array(w * w).map((_, i) => (((i % w) + Math.floor(i / w)) % 2) * 255);
    const out = resizeBicubicPil(src, w, w, 1, 20, 20);
    for (let y = 2; y < 18; y++) for (let x = 2; x < 18; x++) assert.ok(Math.abs(out[y * 20 + x] - 128) <= 2, `${x},${y}: ${out[y * 20 + x]}`);
  });
});

describe('CLIP resize and crop geometry', () => {
  it('sizes the short side to 224 and truncates the long side as transformers does', () => {
    assert.deepEqual(shortestEdgeSize(300, 200, 224), { width: 336, height: 224 });
    assert.deepEqual(shortestEdgeSize(200, 300, 224), { width: 224, height: 336 });
    assert.deepEqual(shortestEdgeSize(64, 64, 224), { width: 224, height: 224 });
    assert.deepEqual(shortestEdgeSize(640, 427, 224), { width: 335, height: 224 });
  });

  it('center-crops with the offsets rounded down', () => {
    const src = new Uint8Array(5 * 3).map((_, i) => i); // 5x3, one channel
    assert.deepEqual(Array.from(centerCrop(src, 5, 3, 1, 2, 2)), [1, 2, 6, 7]);
  });

  it('leaves configs it does not cover to transformers.js', () => {
    const img = new RawImage(new Uint8ClampedArray(10 * 10 * 3), 10, 10, 3);
    assert.equal(resizeAndCropLikeClip(img, { ...CLIP_CONFIG, resample: 2 }), img);
    assert.equal(resizeAndCropLikeClip(img, { ...CLIP_CONFIG, size: { height: 224, width: 224 } }), img);
    assert.equal(resizeAndCropLikeClip(img, { ...CLIP_CONFIG, crop_size: { height: 300, width: 300 } }), img);
  });

  it('reproduces the reference pixel_values means of the fixture images (Hugging Face, PIL)', async () => {
    for (const [i, file] of reference.images.entries()) {
      const { data, info } = await sharp(path.join(TINY_CLIP_DIR, 'images', file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const img = resizeAndCropLikeClip(new RawImage(new Uint8ClampedArray(data), info.width, info.height, 3), CLIP_CONFIG);
      assert.equal(img.width, 224);
      assert.equal(img.height, 224);
      let sum = 0;
      for (let k = 0; k < img.data.length; k++) sum += (img.data[k] / 255 - IMAGE_MEAN[k % 3]) / IMAGE_STD[k % 3];
      const mean = sum / img.data.length;
      assert.ok(Math.abs(mean - reference.pixel_values_mean[i]) < 1e-4, `${file}: ${mean} vs ${reference.pixel_values_mean[i]}`);
    }
  });
});
