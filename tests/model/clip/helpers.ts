/** Shared bits of the CLIP tests: the tiny CLIP fixture and its Hugging Face reference outputs. */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../../src/paths.js';

export const TINY_CLIP_DIR = path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');

export interface TinyClipReference {
  texts: string[];
  input_ids: number[][];
  text_embeds: number[][];
  images: string[];
  pixel_values_mean: number[];
  image_embeds: number[][];
}

export const reference: TinyClipReference = JSON.parse(fs.readFileSync(path.join(TINY_CLIP_DIR, 'reference.json'), 'utf8'));

/** A vector divided by its L2 norm. */
export function normalise(v: ArrayLike<number>): number[] {
  const n = Math.hypot(...Array.from(v));
  return Array.from(v, (x) => x / n);
}

/** Largest absolute element difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** L2 norm of a - b. */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

export function norm(v: ArrayLike<number>): number {
  return Math.hypot(...Array.from(v));
}

/** A 400-character prompt of farm words, punctuation and a few words outside the tiny vocabulary. */
export const LONG_PROMPT = (
  'A wide green meadow under a blue sky, with three brown cows, two white sheep and a black horse grazing near a ' +
  'red barn; snow-capped mountains rise behind a calm lake, pine trees line the hills, a farmer walks along the ' +
  'fence at sunset, golden light over the yellow field, small lambs play in the grass, clouds drift slowly, ' +
  'a windmill turns, and far away the village church bell rings softly over the quiet countryside pasture today.'
).slice(0, 400);

/** Copies the tiny CLIP into `dest` (writable copies), leaving out the files in `skip`. */
export function copyTinyClip(dest: string, skip: string[] = []): string {
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(TINY_CLIP_DIR, rel), { withFileTypes: true })) {
      const r = path.join(rel, entry.name);
      if (skip.includes(r)) continue;
      if (entry.isDirectory()) {
        fs.mkdirSync(path.join(dest, r), { recursive: true });
        walk(r);
      } else {
        fs.writeFileSync(path.join(dest, r), fs.readFileSync(path.join(TINY_CLIP_DIR, r)));
      }
    }
  };
  fs.mkdirSync(dest, { recursive: true });
  walk('');
  return dest;
}

/** Cosine similarity of two vectors (accumulated in float64). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}
