/**
 * One scene CLIP training run from a dataset folder to a transformers.js model folder: read the captioned
 * images (COCO captions layout, as `dataset synth` writes), learn the tokenizer from the captions, train,
 * write the folder (config, tokenizer, ONNX towers, weights, recipe), then load it back through the same
 * embedder the bot uses and score text-to-image retrieval on renders of unseen scenes (`eval.json`).
 * Nothing is written when the dataset is unusable or training fails.
 */
import path from 'node:path';
import { UserError } from '../../errors.js';
import { ClipEmbedder } from '../../model/clip/embedder.js';
import { writeJsonAtomic } from '../../util/durable-write.js';
import { collectCandidates, resolveSource } from '../data/cache-build.js';
import { prepareImage } from '../data/images.js';
import { runPool } from '../data/pool.js';
import { encodePng } from '../data/synth/write.js';
import { clipTokenizerFiles, learnClipBpe } from './bpe-tokenizer.js';
import { writeClipFolder } from './clip-folder.js';
import { evaluateRetrieval, type RetrievalReport } from './clip-retrieval.js';
import type { SceneClipConfig } from './scene-clip-config.js';
import { DEFAULT_HARD_NEGATIVES, trainSceneClip, type CaptionedImage, type SceneClipProgress } from './train-scene-clip.js';

/** Sizes of the scene CLIP `clip train` builds unless told otherwise (about 0.26 M parameters). */
export const SCENE_CLIP_SIZES = {
  contextLength: 40,
  width: 64,
  layers: 2,
  heads: 4,
  mlp: 256,
  imageSize: 64,
  patchSize: 8,
  projectionDim: 128,
} as const;

export interface SceneClipRunOptions {
  dataset: string;
  out: string;
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Share of each batch that is nearest neighbours of one image (see train-scene-clip.ts). */
  hardNegatives?: number;
  sizes?: Partial<Record<keyof typeof SCENE_CLIP_SIZES, number>>;
  /** Skip the retrieval check after training. */
  skipEval?: boolean;
  signal?: AbortSignal;
  onLoad?: (done: number, total: number) => void;
  onProgress?: (p: SceneClipProgress) => void;
}

export interface SceneClipRunResult {
  out: string;
  images: number;
  captions: number;
  vocabSize: number;
  parameters: number;
  steps: number;
  seconds: number;
  finalLoss: number;
  retrieval?: RetrievalReport;
}

/**
 * Reads every captioned image of a dataset folder, resized to `size`: the same images and captions as
 * `dataset build` takes (duplicate ids, orphan and empty captions left out the same way).
 */
export async function readCaptionedImages(dataset: string, size: number, onLoad?: (done: number, total: number) => void): Promise<CaptionedImage[]> {
  const { captionFiles, imagesDir } = await resolveSource(dataset);
  const { candidates } = await collectCandidates(captionFiles, []);
  if (candidates.length === 0) {
    throw new UserError(`${dataset} has no captioned images: a scene CLIP learns from images with captions. Make one with \`npm run cli -- dataset synth\`.`);
  }
  const entries = candidates.map((c) => ({ file: path.join(imagesDir, c.file), captions: c.captions }));
  const out: (CaptionedImage | null)[] = new Array(entries.length).fill(null);
  let done = 0;
  await runPool(entries, 4, async (e, i) => {
    const r = await prepareImage(e.file, { resolution: size, clipSize: 0, minSide: 1 });
    if (r.ok) out[i] = { pixels: new Uint8Array(r.image.pixels), captions: e.captions };
    onLoad?.(++done, entries.length);
  });
  const images = out.filter((x): x is CaptionedImage => x !== null);
  if (images.length < 2) throw new UserError(`${dataset} has ${images.length} readable captioned image(s); contrastive training needs at least 2.`);
  return images;
}

/** Trains a scene CLIP on a dataset and writes it to `out` (see the module comment). */
export async function runSceneClipTraining(opts: SceneClipRunOptions): Promise<SceneClipRunResult> {
  const sizes = { ...SCENE_CLIP_SIZES, ...opts.sizes };
  const images = await readCaptionedImages(opts.dataset, sizes.imageSize, opts.onLoad);
  const allCaptions = images.flatMap((i) => i.captions);
  const tokenizer = learnClipBpe(allCaptions);
  const config: SceneClipConfig = {
    vocabSize: tokenizer.vocabSize,
    contextLength: sizes.contextLength,
    textWidth: sizes.width,
    textLayers: sizes.layers,
    textHeads: sizes.heads,
    textMlp: sizes.mlp,
    imageSize: sizes.imageSize,
    patchSize: sizes.patchSize,
    visionWidth: sizes.width,
    visionLayers: sizes.layers,
    visionHeads: sizes.heads,
    visionMlp: sizes.mlp,
    projectionDim: sizes.projectionDim,
    bosTokenId: tokenizer.bosTokenId,
    eosTokenId: tokenizer.eosTokenId,
    layerNormEps: 1e-5,
    logitScaleInit: Math.log(1 / 0.07),
  };
  const trained = await trainSceneClip({
    config,
    tokenizer,
    images,
    steps: opts.steps,
    batchSize: opts.batchSize,
    learningRate: opts.learningRate,
    seed: opts.seed,
    hardNegatives: opts.hardNegatives,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  const out = path.resolve(opts.out);
  const parameters = trained.model.parameterCount;
  try {
    if (trained.steps === 0) throw new UserError('training stopped before its first step; nothing was written');
    await writeClipFolder(out, { config, weights: trained.model.toClipWeights(), tokenizerFiles: { ...clipTokenizerFiles(tokenizer, config.contextLength) } });
  } finally {
    trained.model.dispose();
  }
  const result: SceneClipRunResult = {
    out,
    images: images.length,
    captions: allCaptions.length,
    vocabSize: tokenizer.vocabSize,
    parameters,
    steps: trained.steps,
    seconds: Math.round(trained.seconds),
    finalLoss: trained.finalLoss,
  };
  const recipe = {
    command: 'npm run cli -- clip train',
    dataset: path.relative(process.cwd(), path.resolve(opts.dataset)) || '.',
    images: images.length,
    captions: allCaptions.length,
    steps: trained.steps,
    batchSize: opts.batchSize,
    learningRate: opts.learningRate,
    seed: opts.seed,
    hardNegatives: opts.hardNegatives ?? DEFAULT_HARD_NEGATIVES,
    sizes,
    parameters,
    finalLoss: trained.finalLoss,
    trainSeconds: Math.round(trained.seconds),
  };
  await writeJsonAtomic(path.join(out, 'recipe.json'), recipe);
  if (!opts.skipEval) {
    result.retrieval = await evaluateSceneClipFolder(out, sizes.imageSize, new Set(allCaptions));
    await writeJsonAtomic(path.join(out, 'eval.json'), result.retrieval);
  }
  return result;
}

/** Loads a CLIP folder with the bot's embedder and scores retrieval on renders of unseen scenes. */
export async function evaluateSceneClipFolder(dir: string, size: number, exclude?: ReadonlySet<string>): Promise<RetrievalReport> {
  const clip = await ClipEmbedder.load({ model: dir });
  try {
    return await evaluateRetrieval(
      {
        embedTexts: (texts) => clip.embedTexts(texts),
        embedRenders: async (pixels, s) => clip.embedImages(await Promise.all(pixels.map((p) => encodePng(p, s)))),
      },
      size,
      { exclude },
    );
  } finally {
    await clip.dispose();
  }
}
