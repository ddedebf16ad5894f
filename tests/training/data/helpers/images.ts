/** Test images made with sharp: noise patterns (so resizes are not trivial) and the bad-input kinds a build must survive. */
import sharp from 'sharp';

/** Deterministic RGB noise with some structure. */
export function noiseRaw(width: number, height: number, seed: number): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 5 + seed * 40) & 255;
      raw[i + 1] = (y * 7 + seed * 13) & 255;
      raw[i + 2] = ((x * y + seed * 101) * 2654435761) >>> 24;
    }
  }
  return raw;
}

export async function rgbJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(noiseRaw(width, height, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

export async function rgbPng(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(noiseRaw(width, height, seed), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A single-channel grayscale PNG. */
export async function grayPng(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(noiseRaw(width, height, seed), { raw: { width, height, channels: 3 } }).toColourspace('b-w').png().toBuffer();
}

/** A CMYK JPEG. */
export async function cmykJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(noiseRaw(width, height, seed), { raw: { width, height, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
}

/** An RGBA PNG, half transparent red. */
export async function rgbaPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
}

/** A JPEG cut at 60% of its bytes. */
export async function truncatedJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const full = await rgbJpeg(width, height, seed);
  return full.subarray(0, Math.floor(full.length * 0.6));
}

/** Bytes that are no image at all. */
export function garbage(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 17 + 7) & 255;
  return b;
}
