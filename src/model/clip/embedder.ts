/**
 * CLIP text and image embeddings on transformers.js (ONNX Runtime), L2-normalised.
 *
 * The tokenizer and config load with the embedder; each tower loads on its first use, so a
 * text-only user never loads the vision tower. Texts are embedded in padded batches with the
 * reference CLIP truncation (see ./tokenize.ts) and remembered in an LRU cache.
 */
import {
  AutoConfig,
  AutoProcessor,
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  type RawImage,
  type Tensor,
} from '@xenova/transformers';
import { childLogger } from '../../log.js';
import { decodeImageRgb, resizeAndCropLikeClip, type ImageInput, type ResizeCropConfig } from './image-input.js';
import {
  checkLocalFiles,
  explainLoadError,
  loadOptions,
  resolveClipModelSource,
  sourceName,
  withModelEnv,
  type ClipLoadProgress,
  type ClipModelSource,
  type ClipPart,
  type ClipSourceOptions,
} from './model-source.js';
import { DEFAULT_TEXT_CACHE_SIZE, TextEmbeddingCache } from './text-cache.js';
import { CLIP_CONTEXT_LENGTH, clipTokenIds, padTextBatch, textBatchTensors } from './tokenize.js';

const log = childLogger('clip');

/** Options of {@link ClipEmbedder.load}. Model choice: see {@link ClipSourceOptions}. */
export interface ClipLoadOptions extends ClipSourceOptions {
  /** Texts per text-tower run (default 32). */
  textBatchSize?: number;
  /** Images per vision-tower run (default 16). */
  imageBatchSize?: number;
  /** Prompts kept in the text-embedding LRU cache (default 4096; 0 turns it off). */
  textCacheSize?: number;
  /** Download / load progress of model files (hub models download on first use). */
  onProgress?: (p: ClipLoadProgress) => void;
}

/** Counters of the work an embedder has done. */
export interface ClipStats {
  /** Runs of the text tower (one per batch). */
  textModelRuns: number;
  /** Texts that went through the text tower. */
  textsEmbedded: number;
  /** Texts answered from the cache. */
  textCacheHits: number;
  /** Runs of the vision tower (one per batch). */
  imageModelRuns: number;
  imagesEmbedded: number;
}

type ModelRun = (inputs: Record<string, Tensor>) => Promise<Record<string, Tensor>>;
type ProcessorRun = (images: RawImage[]) => Promise<{ pixel_values: Tensor }>;

interface VisionTower {
  processor: ProcessorRun;
  /** The processor's resize/crop settings, applied beforehand with the reference (Pillow) filter. */
  resizeConfig: ResizeCropConfig;
  model: PreTrainedModel;
}

/** Divides by the L2 norm (accumulated in float64). A zero vector stays zero. */
export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const norm = Math.sqrt(sum);
  const out = new Float32Array(v.length);
  if (norm > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / norm;
  return out;
}

/** Splits a `[n, dim]` output tensor into n normalised rows. */
function normalisedRows(t: Tensor, name: string): Float32Array[] {
  const [n, dim] = t.dims;
  if (t.dims.length !== 2) throw new Error(`CLIP output ${name} has shape [${t.dims.join(', ')}], expected [batch, dim]`);
  const data = t.data as Float32Array;
  const rows: Float32Array[] = [];
  for (let i = 0; i < n; i++) rows.push(l2Normalize(data.subarray(i * dim, (i + 1) * dim)));
  return rows;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** CLIP text and image embedder. Create with {@link ClipEmbedder.load}. */
export class ClipEmbedder {
  /** The model: absolute folder for a local model, else the hub id. */
  readonly modelId: string;
  /** Whether the uint8-quantized towers are used. */
  readonly quantized: boolean;
  /** Embedding size (the projection dim: 512 for ViT-B/32 and the tiny test CLIP). */
  readonly dim: number;
  /** Most tokens the text tower reads, start and end token included (77). */
  readonly maxTokens: number;

  private readonly textCache: TextEmbeddingCache;
  private textTower?: Promise<PreTrainedModel>;
  private visionTower?: Promise<VisionTower>;
  private disposed = false;
  private readonly counters: ClipStats = {
    textModelRuns: 0,
    textsEmbedded: 0,
    textCacheHits: 0,
    imageModelRuns: 0,
    imagesEmbedded: 0,
  };

  private constructor(
    private readonly source: ClipModelSource,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly padId: number,
    dim: number,
    maxTokens: number,
    private readonly opts: ClipLoadOptions,
  ) {
    this.modelId = sourceName(source);
    this.quantized = source.quantized;
    this.dim = dim;
    this.maxTokens = maxTokens;
    this.textCache = new TextEmbeddingCache(opts.textCacheSize ?? DEFAULT_TEXT_CACHE_SIZE);
  }

  /**
   * Loads the tokenizer and config of a CLIP model (a hub id, downloaded into the cache on first
   * use, or a local folder). The towers load when first needed. A missing or broken model gives one
   * `UserError` that names it and says how to fix it.
   */
  static async load(opts: ClipLoadOptions = {}): Promise<ClipEmbedder> {
    const source = resolveClipModelSource(opts);
    checkLocalFiles(source, 'tokenizer');
    const started = Date.now();
    const { tokenizer, config } = await withModelEnv(source, async () => {
      const o = loadOptions(source, opts.onProgress);
      const config = (await AutoConfig.from_pretrained(source.loadId, o)) as unknown as Record<string, unknown>;
      const tokenizer = await AutoTokenizer.from_pretrained(source.loadId, o);
      return { tokenizer, config };
    }).catch((err: unknown) => {
      throw explainLoadError(source, 'tokenizer', err);
    });
    const textConfig = (config.text_config ?? {}) as Record<string, unknown>;
    const dim = Number(config.projection_dim ?? textConfig.projection_dim ?? 512);
    const positions = Number(textConfig.max_position_embeddings ?? CLIP_CONTEXT_LENGTH);
    const tokLimit = Number(tokenizer.model_max_length);
    const maxTokens = Number.isFinite(tokLimit) && tokLimit > 2 ? Math.min(tokLimit, positions) : positions;
    const bare = tokenizer.encode('', null, { add_special_tokens: true }) as number[];
    const padId = tokenizer.pad_token_id ?? bare[bare.length - 1];
    if (typeof padId !== 'number') {
      throw explainLoadError(source, 'tokenizer', new Error('the tokenizer has neither a pad token nor an end token'));
    }
    log.info({ model: sourceName(source), quantized: source.quantized, dim, maxTokens, ms: Date.now() - started }, 'CLIP tokenizer loaded');
    return new ClipEmbedder(source, tokenizer, padId, dim, maxTokens, opts);
  }

  /** Token ids of a text as the text tower reads them: start token, at most 75 tokens, end token. */
  tokenize(text: string): number[] {
    return clipTokenIds(this.tokenizer, text, this.maxTokens);
  }

  /** Embeds texts (L2-normalised, `dim` floats each), in batches, with repeated texts from the cache. */
  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    this.assertLive();
    const out: (Float32Array | undefined)[] = new Array(texts.length);
    const pending = new Map<string, number[]>(); // text -> positions still to fill
    texts.forEach((text, i) => {
      const hit = this.textCache.get(this.cacheKey(text));
      if (hit) {
        out[i] = hit;
        this.counters.textCacheHits++;
      } else {
        const at = pending.get(text);
        if (at) at.push(i);
        else pending.set(text, [i]);
      }
    });
    if (pending.size > 0) {
      const model = await this.textModel();
      for (const batch of chunks([...pending.keys()], this.opts.textBatchSize ?? 32)) {
        const embeddings = await this.runTextModel(model, batch.map((t) => this.tokenize(t)));
        batch.forEach((text, j) => {
          this.textCache.set(this.cacheKey(text), embeddings[j]);
          const positions = pending.get(text)!;
          positions.forEach((p, k) => (out[p] = k === 0 ? embeddings[j] : embeddings[j].slice()));
        });
      }
    }
    return out as Float32Array[];
  }

  /** Embeds one text. */
  async embedText(text: string): Promise<Float32Array> {
    return (await this.embedTexts([text]))[0];
  }

  /**
   * Runs the text tower on token-id sequences as given (no truncation, no cache): each must fit
   * `maxTokens`. Embeddings are L2-normalised. For checks and tools; prefer {@link embedTexts}.
   */
  async embedTokenIds(sequences: number[][]): Promise<Float32Array[]> {
    this.assertLive();
    for (const s of sequences) {
      if (s.length > this.maxTokens) throw new RangeError(`token sequence of ${s.length} ids is longer than ${this.maxTokens}`);
    }
    return this.runTextModel(await this.textModel(), sequences);
  }

  /**
   * Embeds images given as file paths or encoded bytes (PNG, JPEG, WebP...), L2-normalised.
   * Resized and cropped bit-exactly like the reference CLIP preprocessing (Pillow bicubic), which
   * transformers.js alone does not do. Throws `UserError` for a missing file or bytes that are not an image.
   */
  async embedImages(images: ImageInput[]): Promise<Float32Array[]> {
    this.assertLive();
    if (images.length === 0) return [];
    const { processor, resizeConfig, model } = await this.visionModel();
    const out: Float32Array[] = [];
    for (const batch of chunks(images, this.opts.imageBatchSize ?? 16)) {
      const decoded = await Promise.all(batch.map((img) => decodeImageRgb(img)));
      const { pixel_values } = await processor(decoded.map((img) => resizeAndCropLikeClip(img, resizeConfig)));
      const result = await (model as unknown as ModelRun)({ pixel_values });
      const embeds = result.image_embeds;
      if (!embeds) throw new Error('the CLIP vision tower returned no image_embeds');
      out.push(...normalisedRows(embeds, 'image_embeds'));
      this.counters.imageModelRuns++;
      this.counters.imagesEmbedded += batch.length;
    }
    return out;
  }

  /** Loads the given towers now instead of on first use (e.g. before serving). */
  async warmUp(parts: ('text' | 'vision')[] = ['text']): Promise<void> {
    if (parts.includes('text')) await this.textModel();
    if (parts.includes('vision')) await this.visionModel();
  }

  /** Work counters (model runs, cache hits). */
  stats(): ClipStats {
    return { ...this.counters };
  }

  /** Releases the ONNX sessions. The embedder cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const towers = await Promise.allSettled([this.textTower, this.visionTower]);
    const [text, vision] = towers.map((t) => (t.status === 'fulfilled' ? t.value : undefined));
    await (text as PreTrainedModel | undefined)?.dispose();
    await (vision as VisionTower | undefined)?.model.dispose();
    this.textCache.clear();
  }

  private cacheKey(text: string): string {
    return TextEmbeddingCache.key(this.modelId, this.quantized, text);
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('ClipEmbedder used after dispose()');
  }

  private async runTextModel(model: PreTrainedModel, sequences: number[][]): Promise<Float32Array[]> {
    const batch = padTextBatch(sequences, this.padId);
    const result = await (model as unknown as ModelRun)(textBatchTensors(batch));
    const embeds = result.text_embeds;
    if (!embeds) throw new Error('the CLIP text tower returned no text_embeds');
    this.counters.textModelRuns++;
    this.counters.textsEmbedded += sequences.length;
    log.debug({ batch: batch.batch, length: batch.length }, 'text batch embedded');
    return normalisedRows(embeds, 'text_embeds');
  }

  private textModel(): Promise<PreTrainedModel> {
    this.textTower ??= this.loadPart('text', () =>
      CLIPTextModelWithProjection.from_pretrained(this.source.loadId, loadOptions(this.source, this.opts.onProgress)),
    ).catch((err: unknown) => {
      this.textTower = undefined; // let a later call retry (e.g. once the network is back)
      throw err;
    });
    return this.textTower;
  }

  private visionModel(): Promise<VisionTower> {
    this.visionTower ??= this.loadPart('vision', async () => {
      const o = loadOptions(this.source, this.opts.onProgress);
      const processor = await AutoProcessor.from_pretrained(this.source.loadId, o);
      const resizeConfig = ((processor as unknown as { feature_extractor?: { config?: ResizeCropConfig } }).feature_extractor?.config ?? {});
      const model = await CLIPVisionModelWithProjection.from_pretrained(this.source.loadId, o);
      return { processor: processor as unknown as ProcessorRun, resizeConfig, model };
    }).catch((err: unknown) => {
      this.visionTower = undefined;
      throw err;
    });
    return this.visionTower;
  }

  private async loadPart<T>(part: ClipPart, load: () => Promise<T>): Promise<T> {
    this.assertLive();
    checkLocalFiles(this.source, part);
    const started = Date.now();
    try {
      const loaded = await withModelEnv(this.source, load);
      log.info({ model: this.modelId, part, quantized: this.quantized, ms: Date.now() - started }, 'CLIP tower loaded');
      return loaded;
    } catch (err) {
      throw explainLoadError(this.source, part, err);
    }
  }
}
