/**
 * Decodes an image (a file path or encoded bytes: PNG, JPEG, WebP, GIF, TIFF, AVIF...) into the
 * 8-bit RGB `RawImage` the CLIP processor takes. sharp does the decoding: it applies the EXIF
 * orientation, converts grayscale and CMYK to sRGB, and drops alpha (as PIL's `convert('RGB')`).
 */
import fs from 'node:fs/promises';
import { RawImage } from '@xenova/transformers';
import sharp from 'sharp';
import { UserError } from '../../errors.js';

/** An image given to the embedder: a path to an image file, or the encoded file bytes. */
export type ImageInput = string | Buffer | Uint8Array;

function describe(input: ImageInput): string {
  return typeof input === 'string' ? `"${input}"` : `image bytes (${input.byteLength} bytes)`;
}

/** Reads and decodes one image into RGB; throws `UserError` for a missing file or undecodable data. */
export async function decodeImageRgb(input: ImageInput): Promise<RawImage> {
  let bytes: Buffer;
  if (typeof input === 'string') {
    try {
      bytes = await fs.readFile(input);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UserError(`Image file "${input}" does not exist. Check the path.`);
      if (code === 'EISDIR') throw new UserError(`"${input}" is a folder, not an image file.`);
      throw new UserError(`Cannot read image file "${input}": ${(err as Error).message}`, { cause: err });
    }
  } else {
    bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error' })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return new RawImage(new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, 3);
  } catch (err) {
    throw new UserError(
      `Cannot decode ${describe(input)} as an image (${(err as Error).message}). Use a PNG, JPEG or WebP file.`,
      { cause: err },
    );
  }
}
