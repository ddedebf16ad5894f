/**
 * Image input of the CLIP embedder: decoding (a file path or encoded bytes: PNG, JPEG, WebP, GIF,
 * TIFF, AVIF...) into 8-bit RGB with sharp, which applies the EXIF orientation, converts grayscale
 * and CMYK to sRGB and drops alpha (as PIL's `convert('RGB')`); then the reference CLIP resize and
 * center crop (./pil-resize.ts).
 */
import fs from 'node:fs/promises';
import { RawImage } from '@xenova/transformers';
import sharp from 'sharp';
import { UserError } from '../../errors.js';
import { centerCrop, resizeBicubicPil, shortestEdgeSize } from './pil-resize.js';

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

/** The fields of a `preprocessor_config.json` that decide resizing and cropping. */
export interface ResizeCropConfig {
  do_resize?: boolean;
  size?: number | { shortest_edge?: number; height?: number; width?: number };
  resample?: number;
  do_center_crop?: boolean;
  crop_size?: number | { height: number; width: number };
}

/**
 * Resizes (Pillow bicubic, short side to `size.shortest_edge`) and center-crops an image exactly as
 * Hugging Face's CLIPImageProcessor does, so the transformers.js processor that follows only
 * rescales and normalises (its resize and crop are then identities). Returns the image unchanged
 * for configs this does not cover (another filter, fixed sizes, padding crops); transformers.js
 * handles those itself.
 */
export function resizeAndCropLikeClip(image: RawImage, cfg: ResizeCropConfig): RawImage {
  const shortest = typeof cfg.size === 'object' ? cfg.size.shortest_edge : undefined;
  const crop = typeof cfg.crop_size === 'number' ? { height: cfg.crop_size, width: cfg.crop_size } : cfg.crop_size;
  if (!cfg.do_resize || !shortest || cfg.resample !== 3 || !cfg.do_center_crop || !crop || image.channels !== 3) return image;
  const size = shortestEdgeSize(image.width, image.height, shortest);
  if (crop.width > size.width || crop.height > size.height) return image;
  const resized = resizeBicubicPil(image.data as Uint8ClampedArray, image.width, image.height, 3, size.width, size.height);
  const cropped = centerCrop(resized, size.width, size.height, 3, crop.width, crop.height);
  return new RawImage(new Uint8ClampedArray(cropped.buffer, cropped.byteOffset, cropped.byteLength), crop.width, crop.height, 3);
}
