/**
 * Image preparation for the dataset cache, with sharp: decode fully (which catches truncated and corrupt files),
 * apply EXIF orientation, convert any colour space (grayscale, CMYK, 16-bit, palette) to 8-bit sRGB RGB,
 * flatten alpha onto white, then center-crop and resize to the training resolution.
 */
import sharp from 'sharp';

/** Images whose shorter side is below this many pixels are skipped (upscaling them more than 2x to 64 px gives mush). */
export const DEFAULT_MIN_SIDE = 32;

/** CLIP ViT-B/32 reads 224x224: images for the embedder are center-cropped to this size, so it does no resize of its own. */
export const CLIP_INPUT_SIZE = 224;

/** Background colour alpha is flattened onto. */
export const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

/** What was converted to reach 8-bit sRGB RGB. */
export type ImageConversion = 'grayscale' | 'cmyk' | 'alpha' | 'high-bit-depth' | 'other-colour-space' | 'oriented';

/** Why an image cannot be used. */
export type ImageRejectionReason = 'unreadable' | 'corrupt' | 'too-small';

/** An image ready for the cache. */
export interface PreparedImage {
  /** `resolution * resolution * 3` bytes, RGB, row-major (HWC). */
  pixels: Buffer;
  /** The same crop at CLIP's input size (224x224), encoded as PNG, for the image embedder. */
  clipPng: Buffer;
  /** Size of the source after orientation. */
  width: number;
  height: number;
  format: string;
  conversions: ImageConversion[];
}

export type PrepareResult =
  | { ok: true; image: PreparedImage }
  | { ok: false; reason: ImageRejectionReason; message: string };

export interface PrepareOptions {
  resolution: number;
  /** Skip images whose shorter side is smaller (default 32). */
  minSide?: number;
  /** Side of `clipPng` (default 224); 0 skips it. */
  clipSize?: number;
}

function conversionsOf(meta: sharp.Metadata): ImageConversion[] {
  const out: ImageConversion[] = [];
  const space = meta.space ?? 'srgb';
  if (space === 'cmyk') out.push('cmyk');
  else if (space === 'b-w' || space === 'grey16' || (meta.channels ?? 3) <= 2) out.push('grayscale');
  else if (space !== 'srgb' && space !== 'rgb' && space !== 'rgb16') out.push('other-colour-space');
  if (meta.hasAlpha) out.push('alpha');
  if (meta.depth && meta.depth !== 'uchar' && meta.depth !== 'char') out.push('high-bit-depth');
  if ((meta.orientation ?? 1) > 1) out.push('oriented');
  return out;
}

/** Center-crops and resizes raw sRGB RGB pixels to a square of `size` (sharp, lanczos3). */
async function squareFromRaw(raw: Buffer, width: number, height: number, size: number): Promise<sharp.Sharp> {
  return sharp(raw, { raw: { width, height, channels: 3 } }).resize(size, size, {
    fit: 'cover',
    position: 'centre',
    kernel: 'lanczos3',
  });
}

/**
 * Decodes an image (file path or encoded bytes) and turns it into training pixels plus the CLIP input.
 * Never throws for bad images: returns `{ ok: false, reason }` (unreadable format, corrupt/truncated data, too small).
 */
export async function prepareImage(input: string | Buffer, opts: PrepareOptions): Promise<PrepareResult> {
  const minSide = opts.minSide ?? DEFAULT_MIN_SIDE;
  const clipSize = opts.clipSize ?? CLIP_INPUT_SIZE;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input).metadata();
  } catch (err) {
    return { ok: false, reason: 'unreadable', message: (err as Error).message };
  }
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(input, { failOn: 'warning' })
      .autoOrient()
      .flatten({ background: FLATTEN_BACKGROUND })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    return { ok: false, reason: 'corrupt', message: (err as Error).message };
  }
  const { width, height, channels } = decoded.info;
  if (channels !== 3) {
    return { ok: false, reason: 'unreadable', message: `decoded to ${channels} channels, expected 3 (RGB)` };
  }
  if (Math.min(width, height) < minSide) {
    return { ok: false, reason: 'too-small', message: `${width}x${height} is smaller than ${minSide} px on a side` };
  }
  const pixels = await (await squareFromRaw(decoded.data, width, height, opts.resolution)).raw().toBuffer();
  const clipPng =
    clipSize > 0
      ? await (await squareFromRaw(decoded.data, width, height, clipSize)).png({ compressionLevel: 1 }).toBuffer()
      : Buffer.alloc(0);
  return {
    ok: true,
    image: { pixels, clipPng, width, height, format: meta.format ?? 'unknown', conversions: conversionsOf(meta) },
  };
}

/**
 * Whether encoded bytes are a complete, decodable image (every pixel decoded, truncation is an error).
 * Returns null when it decodes, else the reason.
 */
export async function checkDecodes(input: string | Buffer): Promise<string | null> {
  try {
    const info = await sharp(input, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true });
    return info.info.width > 0 && info.info.height > 0 ? null : 'empty image';
  } catch (err) {
    return (err as Error).message;
  }
}
