import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { prepareImage, checkDecodes } from '../../../src/training/data/images.js';
import { cmykJpeg, garbage, grayPng, noiseRaw, rgbaPng, rgbJpeg, rgbPng, truncatedJpeg } from './helpers/images.js';

test('an RGB image is center-cropped and resized exactly like sharp cover/centre/lanczos3', async () => {
  const png = await rgbPng(90, 60, 3);
  const r = await prepareImage(png, { resolution: 16 });
  assert.ok(r.ok);
  const expected = await sharp(noiseRaw(90, 60, 3), { raw: { width: 90, height: 60, channels: 3 } })
    .resize(16, 16, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  assert.deepEqual(r.image.pixels, expected);
  assert.equal(r.image.pixels.length, 16 * 16 * 3);
  assert.deepEqual(r.image.conversions, []);
  const clip = await sharp(r.image.clipPng).metadata();
  assert.deepEqual([clip.width, clip.height, clip.channels], [224, 224, 3]);
});

test('grayscale, CMYK and alpha images are converted to sRGB RGB', async () => {
  const gray = await prepareImage(await grayPng(40, 40, 1), { resolution: 8 });
  assert.ok(gray.ok);
  assert.deepEqual(gray.image.conversions, ['grayscale']);
  for (let i = 0; i < gray.image.pixels.length; i += 3) {
    assert.equal(gray.image.pixels[i], gray.image.pixels[i + 1]);
    assert.equal(gray.image.pixels[i + 1], gray.image.pixels[i + 2]);
  }
  const cmyk = await prepareImage(await cmykJpeg(40, 40, 2), { resolution: 8 });
  assert.ok(cmyk.ok);
  assert.deepEqual(cmyk.image.conversions, ['cmyk']);
  assert.equal(cmyk.image.pixels.length, 8 * 8 * 3);
  const rgba = await prepareImage(await rgbaPng(40, 40), { resolution: 8 });
  assert.ok(rgba.ok);
  assert.deepEqual(rgba.image.conversions, ['alpha']);
  // Half-transparent red on white: (255, ~128, ~128).
  assert.equal(rgba.image.pixels[0], 255);
  assert.ok(Math.abs(rgba.image.pixels[1] - 128) <= 2, `green ${rgba.image.pixels[1]}`);
});

test('tiny, truncated and garbage inputs are rejected with a reason, never thrown', async () => {
  const tiny = await prepareImage(await rgbPng(8, 8, 1), { resolution: 16 });
  assert.deepEqual(tiny.ok ? 'ok' : tiny.reason, 'too-small');
  const okSmall = await prepareImage(await rgbPng(8, 8, 1), { resolution: 16, minSide: 8 });
  assert.ok(okSmall.ok);
  const cut = await prepareImage(await truncatedJpeg(64, 64, 1), { resolution: 16 });
  assert.deepEqual(cut.ok ? 'ok' : cut.reason, 'corrupt');
  const junk = await prepareImage(garbage(500, 1), { resolution: 16 });
  assert.deepEqual(junk.ok ? 'ok' : junk.reason, 'unreadable');
  assert.equal(await checkDecodes(await rgbJpeg(20, 20, 1)), null);
  assert.match((await checkDecodes(await truncatedJpeg(64, 64, 1))) ?? '', /premature|truncat|end/i);
});
