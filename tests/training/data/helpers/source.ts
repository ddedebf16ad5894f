/** Writes small dataset sources in COCO layout for tests. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeCocoCaptions, type CocoCaptions } from '../../../../src/training/data/coco.js';

export const TINY_CLIP = path.resolve('tests/fixtures/tiny-clip');

export interface SourceImage {
  id: number | string;
  file: string;
  /** Bytes to write; null writes no file (a missing file). */
  bytes: Buffer | null;
  captions: string[];
}

/** Writes `<dir>/annotations/<name>.json` and `<dir>/images/*`. */
export async function writeSource(dir: string, images: SourceImage[], extra: Partial<CocoCaptions> = {}, name = 'captions_test.json') {
  await fs.mkdir(path.join(dir, 'images'), { recursive: true });
  let annId = 1;
  const data: CocoCaptions = {
    images: images.map((i) => ({ id: i.id, file_name: i.file, width: 0, height: 0 })),
    annotations: images.flatMap((i) => i.captions.map((caption) => ({ id: annId++, image_id: i.id, caption }))),
    ...extra,
  };
  for (const i of images) if (i.bytes) await fs.writeFile(path.join(dir, 'images', i.file), i.bytes);
  await writeCocoCaptions(path.join(dir, 'annotations', name), data);
  return data;
}
