/**
 * MS COCO captions files (`captions_train2017.json`, `captions_val2017.json`, and the subsets this project writes):
 * reading, validating, and selecting the images whose captions match the bucolic keywords.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { writeFileAtomic } from '../../util/durable-write.js';
import { compileKeywords, matchCaption } from './keywords.js';

const imageIdSchema = z.union([z.number().int(), z.string().min(1)]);

/** One entry of `images` in a COCO captions file (extra fields are kept). */
export const cocoImageSchema = z.looseObject({
  id: imageIdSchema,
  file_name: z.string().min(1),
  coco_url: z.string().optional(),
  width: z.number().optional(),
  height: z.number().optional(),
});

/** One entry of `annotations` in a COCO captions file (extra fields are kept). */
export const cocoAnnotationSchema = z.looseObject({
  id: z.union([z.number(), z.string()]).optional(),
  image_id: imageIdSchema,
  caption: z.string(),
});

export const cocoCaptionsSchema = z.looseObject({
  images: z.array(cocoImageSchema),
  annotations: z.array(cocoAnnotationSchema),
});

export type CocoImageId = number | string;
export type CocoImage = z.infer<typeof cocoImageSchema>;
export type CocoAnnotation = z.infer<typeof cocoAnnotationSchema>;
export type CocoCaptions = z.infer<typeof cocoCaptionsSchema>;

/** Validates parsed JSON as a COCO captions file; `source` names it in the error. */
export function parseCocoCaptions(json: unknown, source = 'captions file'): CocoCaptions {
  const parsed = cocoCaptionsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(
      `${source} is not a COCO captions file (${issue?.path.join('.') || 'root'}: ${issue?.message}). ` +
        'Expected {"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "caption"}]}, ' +
        'like captions_train2017.json from https://cocodataset.org.',
    );
  }
  return parsed.data;
}

/** Reads and validates a COCO captions JSON file. */
export async function readCocoCaptions(file: string): Promise<CocoCaptions> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read the captions file ${file}: ${(err as Error).message}. Check the path.`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`The captions file ${file} is not valid JSON: ${(err as Error).message}.`, { cause: err });
  }
  return parseCocoCaptions(json, file);
}

/** How often one keyword matched. */
export interface KeywordCount {
  keyword: string;
  /** Distinct images with at least one caption that mentions the keyword. */
  images: number;
  /** Captions that mention the keyword. */
  captions: number;
}

/** The result of the bucolic filter. */
export interface CocoSelection {
  /** The selected subset in COCO layout: selected images and all their captions (input order kept). */
  subset: CocoCaptions;
  /** Per keyword, in the order given. */
  keywords: KeywordCount[];
  totals: {
    imagesScanned: number;
    captionsScanned: number;
    /** Captions that matched at least one keyword. */
    captionsMatched: number;
    imagesSelected: number;
    /** All captions of the selected images (matching or not). */
    captionsSelected: number;
  };
}

/**
 * Selects the images with at least one caption that mentions a keyword (whole words, plurals, any case).
 * The subset keeps every caption of a selected image, and the file's other top-level fields (info, licenses).
 * Pure: the input is not modified.
 */
export function selectByKeywords(data: CocoCaptions, keywords: readonly string[]): CocoSelection {
  const matchers = compileKeywords(keywords);
  if (matchers.length === 0) throw new UserError('No keywords given: pass at least one, e.g. --keywords cow,sheep.');
  const perKeyword = new Map(matchers.map((m) => [m.keyword, { images: new Set<string>(), captions: 0 }]));
  const selected = new Set<string>();
  let captionsMatched = 0;
  for (const ann of data.annotations) {
    const hits = matchCaption(ann.caption, matchers);
    if (hits.length === 0) continue;
    captionsMatched++;
    const key = String(ann.image_id);
    selected.add(key);
    for (const h of hits) {
      const c = perKeyword.get(h)!;
      c.captions++;
      c.images.add(key);
    }
  }
  const seenImages = new Set<string>();
  const images = data.images.filter((img) => {
    const key = String(img.id);
    if (!selected.has(key) || seenImages.has(key)) return false;
    seenImages.add(key);
    return true;
  });
  const annotations = data.annotations.filter((a) => seenImages.has(String(a.image_id)));
  return {
    subset: { ...data, images, annotations },
    keywords: matchers.map((m) => ({
      keyword: m.keyword,
      images: [...perKeyword.get(m.keyword)!.images].filter((k) => seenImages.has(k)).length,
      captions: perKeyword.get(m.keyword)!.captions,
    })),
    totals: {
      imagesScanned: data.images.length,
      captionsScanned: data.annotations.length,
      captionsMatched,
      imagesSelected: images.length,
      captionsSelected: annotations.length,
    },
  };
}

/** Writes a COCO captions JSON atomically. */
export async function writeCocoCaptions(file: string, data: CocoCaptions): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(data));
}

/**
 * Finds the captions files of a dataset folder in COCO layout: `<dir>/annotations/*.json`
 * (a single JSON file passed directly is accepted too). Sorted by name.
 */
export async function findCaptionFiles(dirOrFile: string): Promise<string[]> {
  const stat = await fs.stat(dirOrFile).catch(() => null);
  if (!stat) throw new UserError(`Dataset source ${dirOrFile} does not exist. Run \`dataset coco\` or \`dataset synth\` first.`);
  if (stat.isFile()) return [dirOrFile];
  const annDir = path.join(dirOrFile, 'annotations');
  const names = await fs.readdir(annDir).catch(() => [] as string[]);
  const files = names.filter((n) => n.endsWith('.json')).sort().map((n) => path.join(annDir, n));
  if (files.length === 0) {
    throw new UserError(
      `No captions file in ${annDir}. A dataset source has COCO layout: annotations/<name>.json and images/<file_name>.`,
    );
  }
  return files;
}
