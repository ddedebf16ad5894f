/**
 * PNG rendering of sampled images with sharp: one image, or a grid of several, upscaled for display.
 */
import sharp from 'sharp';

/** Upscaling filter: `nearest` keeps the model's pixels visible, `lanczos3` smooths them. */
export type UpscaleKernel = 'nearest' | 'lanczos3';

/** Options of `gridPng`. */
export interface GridOptions {
  /** Images per row (default: all in one row up to 3, 2x2 for 4, else ceil(sqrt(n))). */
  columns?: number;
  /** Integer upscale factor (default `defaultScale(size)`: about 256 px per image). */
  scale?: number;
  /** Pixels between images (default 4). */
  gap?: number;
  /** Upscaling filter (default lanczos3). */
  kernel?: UpscaleKernel;
  /** Colour between images (default dark grey). */
  background?: { r: number; g: number; b: number };
}

const DEFAULT_BACKGROUND = { r: 24, g: 24, b: 24 };

/** The display scale that makes a `size` px image about 256 px wide (at least 1). */
export function defaultScale(size: number): number {
  return Math.max(1, Math.round(256 / size));
}

/** Default number of grid columns for n images. */
export function defaultColumns(n: number): number {
  if (n <= 3) return Math.max(1, n);
  if (n === 4) return 2;
  return Math.ceil(Math.sqrt(n));
}

function checkImage(image: Uint8Array, size: number, index: number): void {
  if (image.length !== size * size * 3) {
    throw new Error(`image ${index} has ${image.length} bytes; a ${size}x${size} RGB image has ${size * size * 3}`);
  }
}

function checkScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) throw new Error(`scale must be an integer from 1 to 64, got ${scale}`);
}

/** The raw RGB bytes of an image upscaled by an integer factor. */
async function upscaleRaw(image: Uint8Array, size: number, scale: number, kernel: UpscaleKernel): Promise<Buffer> {
  const input = sharp(Buffer.from(image.buffer, image.byteOffset, image.byteLength), { raw: { width: size, height: size, channels: 3 } });
  const resized = scale === 1 ? input : input.resize(size * scale, size * scale, { kernel });
  return resized.raw().toBuffer();
}

/**
 * One image as PNG.
 * @param image uint8 RGB, `size * size * 3` bytes, row-major HWC
 * @param size image side in pixels
 * @param scale integer upscale factor (default `defaultScale(size)`)
 * @param kernel upscaling filter (default lanczos3)
 */
export async function imagePng(image: Uint8Array, size: number, scale = defaultScale(size), kernel: UpscaleKernel = 'lanczos3'): Promise<Buffer> {
  checkImage(image, size, 0);
  checkScale(scale);
  const side = size * scale;
  return sharp(await upscaleRaw(image, size, scale, kernel), { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
}

/**
 * Several images as one PNG grid, row by row.
 * @param images uint8 RGB images, `size * size * 3` bytes each
 * @param size image side in pixels
 */
export async function gridPng(images: Uint8Array[], size: number, opts: GridOptions = {}): Promise<Buffer> {
  if (images.length === 0) throw new Error('gridPng needs at least one image');
  images.forEach((img, i) => checkImage(img, size, i));
  const scale = opts.scale ?? defaultScale(size);
  checkScale(scale);
  const gap = opts.gap ?? 4;
  if (!Number.isInteger(gap) || gap < 0) throw new Error(`gap must be a non-negative integer, got ${gap}`);
  const columns = Math.min(opts.columns ?? defaultColumns(images.length), images.length);
  if (!Number.isInteger(columns) || columns < 1) throw new Error(`columns must be a positive integer, got ${opts.columns}`);
  const rows = Math.ceil(images.length / columns);
  const tile = size * scale;
  const width = columns * tile + (columns - 1) * gap;
  const height = rows * tile + (rows - 1) * gap;
  const kernel = opts.kernel ?? 'lanczos3';
  const tiles = await Promise.all(images.map((img) => upscaleRaw(img, size, scale, kernel)));
  return sharp({ create: { width, height, channels: 3, background: opts.background ?? DEFAULT_BACKGROUND } })
    .composite(
      tiles.map((input, i) => ({
        input,
        raw: { width: tile, height: tile, channels: 3 as const },
        left: (i % columns) * (tile + gap),
        top: Math.floor(i / columns) * (tile + gap),
      })),
    )
    .png()
    .toBuffer();
}
