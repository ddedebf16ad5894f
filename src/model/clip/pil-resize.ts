/**
 * The resize and center crop of Hugging Face's `CLIPImageProcessor`, bit-exact.
 *
 * Reference CLIP preprocessing resizes with Pillow's BICUBIC filter, which is antialiased (its
 * kernel widens with the downscale factor). transformers.js 2.17 resizes with a sharp affine
 * transform instead: no antialiasing, so a 640x480 photo shrunk to 224 px differs from Pillow by
 * about 17 grey levels on average, and the embedding drifts. No image library reproduces Pillow's
 * filter, so this is a port of Pillow's `ImagingResample` (src/libImaging/Resample.c: the same
 * coefficients, the same 22-bit fixed point, horizontal pass then vertical pass, both rounded to
 * 8 bits), and of `transformers.image_transforms.center_crop`.
 */

/** Pillow's fixed-point precision for 8-bit images: `32 - 8 - 2`. */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Pillow's bicubic kernel (a = -0.5), support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coefficients {
  /** First input index of each output pixel. */
  start: Int32Array;
  /** Number of taps of each output pixel. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  weights: Float64Array;
  ksize: number;
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for a resize of `inSize` to `outSize`. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = bicubic((x + xmin - center + 0.5) / filterScale);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes interleaved 8-bit pixels (`channels` per pixel) from `width`x`height` to
 * `outWidth`x`outHeight` exactly as Pillow's `Image.resize(size, Image.BICUBIC)`.
 */
export function resizeBicubicPil(
  src: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  if (src.length !== width * height * channels) throw new RangeError('pixel buffer does not match width x height x channels');
  let cur: Uint8Array = src instanceof Uint8Array ? src : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  let curWidth = width;
  if (outWidth !== width) {
    const c = coefficients(width, outWidth);
    const out = new Uint8Array(outWidth * height * channels);
    const acc = new Float64Array(channels);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let xx = 0; xx < outWidth; xx++) {
        const base = xx * c.ksize;
        const n = c.count[xx];
        let at = row + c.start[xx] * channels;
        const o = (y * outWidth + xx) * channels;
        if (channels === 3) {
          // The common case, without the per-channel array.
          let a0 = HALF;
          let a1 = HALF;
          let a2 = HALF;
          for (let t = 0; t < n; t++, at += 3) {
            const w = c.weights[base + t];
            a0 += cur[at] * w;
            a1 += cur[at + 1] * w;
            a2 += cur[at + 2] * w;
          }
          out[o] = clip8(a0);
          out[o + 1] = clip8(a1);
          out[o + 2] = clip8(a2);
          continue;
        }
        acc.fill(HALF);
        for (let t = 0; t < n; t++, at += channels) {
          const w = c.weights[base + t];
          for (let ch = 0; ch < channels; ch++) acc[ch] += cur[at + ch] * w;
        }
        for (let ch = 0; ch < channels; ch++) out[o + ch] = clip8(acc[ch]);
      }
    }
    cur = out;
    curWidth = outWidth;
  }
  if (outHeight !== height) {
    const c = coefficients(height, outHeight);
    const stride = curWidth * channels;
    const out = new Uint8Array(curWidth * outHeight * channels);
    const acc = new Float64Array(stride);
    for (let yy = 0; yy < outHeight; yy++) {
      const base = yy * c.ksize;
      acc.fill(HALF);
      for (let t = 0; t < c.count[yy]; t++) {
        const w = c.weights[base + t];
        const from = (c.start[yy] + t) * stride;
        for (let i = 0; i < stride; i++) acc[i] += cur[from + i] * w;
      }
      const o = yy * stride;
      for (let i = 0; i < stride; i++) out[o + i] = clip8(acc[i]);
    }
    cur = out;
  }
  return cur === src ? new Uint8Array(src) : cur;
}

/**
 * The size `CLIPImageProcessor` resizes to for `size: { shortest_edge }`: the short side becomes
 * `shortestEdge`, the long side `int(shortestEdge * long / short)` (transformers'
 * `get_resize_output_image_size` with `default_to_square=False`).
 */
export function shortestEdgeSize(width: number, height: number, shortestEdge: number): { width: number; height: number } {
  if (width <= height) return { width: shortestEdge, height: Math.trunc((shortestEdge * height) / width) };
  return { width: Math.trunc((shortestEdge * width) / height), height: shortestEdge };
}

/**
 * Cuts the centered `cropWidth`x`cropHeight` window (top/left rounded down, as transformers'
 * `center_crop`). The image must be at least that large.
 */
export function centerCrop(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  cropWidth: number,
  cropHeight: number,
): Uint8Array {
  if (cropWidth > width || cropHeight > height) throw new RangeError(`cannot crop ${width}x${height} to ${cropWidth}x${cropHeight}`);
  const top = Math.floor((height - cropHeight) / 2);
  const left = Math.floor((width - cropWidth) / 2);
  const out = new Uint8Array(cropWidth * cropHeight * channels);
  for (let y = 0; y < cropHeight; y++) {
    const from = ((top + y) * width + left) * channels;
    out.set(src.subarray(from, from + cropWidth * channels), y * cropWidth * channels);
  }
  return out;
}
