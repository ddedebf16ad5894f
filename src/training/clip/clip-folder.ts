/**
 * A trained scene CLIP as a model folder in transformers.js layout, loadable by the project's CLIP embedder
 * (`CLIP_MODEL=<folder>`) exactly like a downloaded `Xenova/clip-vit-base-patch32`:
 *
 *   config.json                 Hugging Face `CLIPModel` config (text_config / vision_config)
 *   preprocessor_config.json    `CLIPImageProcessor`: bicubic resize + center crop to imageSize, CLIP mean/std
 *   tokenizer.json, tokenizer_config.json, special_tokens_map.json...   as given by the tokenizer
 *   onnx/text_model.onnx, onnx/vision_model.onnx                        see ../../model/onnx/clip-export.ts
 *   model.safetensors           every parameter (Hugging Face names, PyTorch layouts, float32), for resuming
 *                               training and for checks; a standard safetensors file, so PyTorch
 *                               `CLIPModel.from_pretrained(<folder>)` reads the folder too
 *
 * The folder is written whole into a staging sibling, flushed, then renamed into place, so a reader never
 * sees half a model.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../errors.js';
import { syncDir, writeFileDurable } from '../../util/durable-write.js';
import { buildClipTextOnnx, buildClipVisionOnnx, checkClipWeights, clipParameterShapes } from '../../model/onnx/clip-export.js';
import { CLIP_HIDDEN_ACT, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, type ClipWeights, type SceneClipConfig } from './scene-clip-config.js';

/** File names inside a scene CLIP folder. */
export const CLIP_FOLDER_FILES = {
  config: 'config.json',
  preprocessor: 'preprocessor_config.json',
  textModel: 'onnx/text_model.onnx',
  visionModel: 'onnx/vision_model.onnx',
  weights: 'model.safetensors',
} as const;

/** Tokenizer files the embedder cannot load without. */
const REQUIRED_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** What {@link writeClipFolder} writes. */
export interface ClipFolderContents {
  config: SceneClipConfig;
  weights: ClipWeights;
  /** Tokenizer files by name (`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`...), each a JSON value. */
  tokenizerFiles: Record<string, unknown>;
}

/** The Hugging Face `CLIPModel` config.json of a scene CLIP. */
export function hfClipConfig(config: SceneClipConfig): Record<string, unknown> {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    torch_dtype: 'float32',
    initializer_factor: 1.0,
    logit_scale_init_value: config.logitScaleInit,
    projection_dim: config.projectionDim,
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: config.vocabSize,
      hidden_size: config.textWidth,
      intermediate_size: config.textMlp,
      num_hidden_layers: config.textLayers,
      num_attention_heads: config.textHeads,
      max_position_embeddings: config.contextLength,
      hidden_act: CLIP_HIDDEN_ACT,
      layer_norm_eps: config.layerNormEps,
      attention_dropout: 0.0,
      initializer_factor: 1.0,
      initializer_range: 0.02,
      bos_token_id: config.bosTokenId,
      eos_token_id: config.eosTokenId,
      pad_token_id: config.eosTokenId,
      projection_dim: config.projectionDim,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: config.visionWidth,
      intermediate_size: config.visionMlp,
      num_hidden_layers: config.visionLayers,
      num_attention_heads: config.visionHeads,
      num_channels: 3,
      image_size: config.imageSize,
      patch_size: config.patchSize,
      hidden_act: CLIP_HIDDEN_ACT,
      layer_norm_eps: config.layerNormEps,
      attention_dropout: 0.0,
      initializer_factor: 1.0,
      initializer_range: 0.02,
      projection_dim: config.projectionDim,
    },
  };
}

/** Reads a scene CLIP config back from a Hugging Face `CLIPModel` config.json object. */
export function sceneClipConfigFromHf(json: Record<string, unknown>): SceneClipConfig {
  const text = (json.text_config ?? {}) as Record<string, unknown>;
  const vision = (json.vision_config ?? {}) as Record<string, unknown>;
  const num = (obj: Record<string, unknown>, key: string, where: string): number => {
    const v = obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}${key} is not a number`);
    return v;
  };
  if (json.model_type !== 'clip') throw new Error(`model_type is ${JSON.stringify(json.model_type)}, not "clip"`);
  for (const [cfg, where] of [[text, 'text_config.'], [vision, 'vision_config.']] as const) {
    const act = cfg.hidden_act ?? CLIP_HIDDEN_ACT;
    if (act !== CLIP_HIDDEN_ACT) throw new Error(`${where}hidden_act is ${JSON.stringify(act)}; a scene CLIP uses ${CLIP_HIDDEN_ACT}`);
  }
  return {
    vocabSize: num(text, 'vocab_size', 'text_config.'),
    contextLength: num(text, 'max_position_embeddings', 'text_config.'),
    textWidth: num(text, 'hidden_size', 'text_config.'),
    textLayers: num(text, 'num_hidden_layers', 'text_config.'),
    textHeads: num(text, 'num_attention_heads', 'text_config.'),
    textMlp: num(text, 'intermediate_size', 'text_config.'),
    imageSize: num(vision, 'image_size', 'vision_config.'),
    patchSize: num(vision, 'patch_size', 'vision_config.'),
    visionWidth: num(vision, 'hidden_size', 'vision_config.'),
    visionLayers: num(vision, 'num_hidden_layers', 'vision_config.'),
    visionHeads: num(vision, 'num_attention_heads', 'vision_config.'),
    visionMlp: num(vision, 'intermediate_size', 'vision_config.'),
    projectionDim: num(json, 'projection_dim', ''),
    bosTokenId: num(text, 'bos_token_id', 'text_config.'),
    eosTokenId: num(text, 'eos_token_id', 'text_config.'),
    layerNormEps: num(text, 'layer_norm_eps', 'text_config.'),
    logitScaleInit: num(json, 'logit_scale_init_value', ''),
  };
}

/** The `CLIPImageProcessor` preprocessor_config.json: shortest edge and center crop to imageSize, bicubic. */
export function clipPreprocessorConfig(config: SceneClipConfig): Record<string, unknown> {
  return {
    image_processor_type: 'CLIPImageProcessor',
    feature_extractor_type: 'CLIPFeatureExtractor',
    do_convert_rgb: true,
    do_resize: true,
    size: { shortest_edge: config.imageSize },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: config.imageSize, width: config.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...CLIP_IMAGE_MEAN],
    image_std: [...CLIP_IMAGE_STD],
  };
}

/**
 * Encodes weights as a safetensors file (8-byte little-endian header length, JSON header padded with spaces
 * to 8 bytes, then the float32 data back to back), in Hugging Face state_dict order where names are known.
 */
export function encodeSafetensors(weights: ClipWeights, metadata: Record<string, string> = {}, order?: Iterable<string>): Uint8Array {
  const names = [...new Set([...(order ?? []), ...weights.keys()])].filter((n) => weights.has(n));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = weights.get(name)!;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = weights.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** Decodes a safetensors file of float32 tensors (each copied into its own array). Throws on anything malformed. */
export function decodeSafetensors(bytes: Uint8Array): { weights: ClipWeights; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) throw new Error(`${bytes.byteLength} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.byteLength) throw new Error(`header of ${headerLength} bytes runs past the end of the file (${bytes.byteLength} bytes)`);
  const header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8')) as Record<string, unknown>;
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const weights: ClipWeights = new Map();
  let covered = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32') throw new Error(`tensor ${name} is ${dtype}, only F32 is supported`);
    const size = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (!(begin >= 0 && end <= dataLength && end - begin === size * 4)) {
      throw new Error(`tensor ${name} [${shape.join(', ')}] has data offsets [${begin}, ${end}] that do not fit ${dataLength} data bytes`);
    }
    covered += end - begin;
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    weights.set(name, { shape: [...shape], data: new Float32Array(copy.buffer, copy.byteOffset, size) });
  }
  if (covered !== dataLength) throw new Error(`the tensors cover ${covered} of ${dataLength} data bytes: the file is truncated or damaged`);
  return { weights, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

/** Largest token id a tokenizer.json defines (its BPE/WordPiece vocab and added tokens), or -1 if it has none. */
function largestTokenId(tokenizerJson: unknown): number {
  const t = tokenizerJson as { model?: { vocab?: unknown }; added_tokens?: { id?: unknown }[] };
  let max = -1;
  const vocab = t.model?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id;
  }
  for (const tok of t.added_tokens ?? []) if (typeof tok.id === 'number' && tok.id > max) max = tok.id;
  return max;
}

function checkTokenizerFiles(config: SceneClipConfig, files: Record<string, unknown>): void {
  const reserved = new Set<string>([CLIP_FOLDER_FILES.config, CLIP_FOLDER_FILES.preprocessor, CLIP_FOLDER_FILES.weights]);
  for (const name of Object.keys(files)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.json$/.test(name)) throw new Error(`tokenizer file name ${JSON.stringify(name)} is not a plain .json file name`);
    if (reserved.has(name)) throw new Error(`tokenizer file ${name} would overwrite the model's own ${name}`);
  }
  const missing = REQUIRED_TOKENIZER_FILES.filter((f) => !(f in files));
  if (missing.length > 0) throw new Error(`the tokenizer files lack ${missing.join(', ')}`);
  const tokenizer = files['tokenizer.json'];
  const maxId = largestTokenId(tokenizer);
  if (maxId >= config.vocabSize) {
    throw new Error(`the tokenizer has token id ${maxId}, but the model's vocabSize is ${config.vocabSize}`);
  }
  // The text tower pools at the end token: the tokenizer's and the config's must be the same id.
  const tokenizerConfig = files['tokenizer_config.json'] as Record<string, unknown> | undefined;
  for (const [key, id, field] of [['eos_token', config.eosTokenId, 'eosTokenId'], ['bos_token', config.bosTokenId, 'bosTokenId']] as const) {
    const entry = tokenizerConfig?.[key];
    const content = typeof entry === 'string' ? entry : (entry as { content?: unknown } | undefined)?.content;
    if (typeof content !== 'string') continue;
    const actual = tokenId(tokenizer, content);
    if (actual !== undefined && actual !== id) {
      throw new Error(`the tokenizer's ${key} ${content} is id ${actual}, but the config's ${field} is ${id}`);
    }
  }
}

/** The id of a token in a tokenizer.json (added tokens first, then the model vocabulary), if it has one. */
function tokenId(tokenizerJson: unknown, content: string): number | undefined {
  const t = tokenizerJson as { model?: { vocab?: unknown }; added_tokens?: { id?: unknown; content?: unknown }[] };
  const added = t.added_tokens?.find((tok) => tok.content === content);
  if (typeof added?.id === 'number') return added.id;
  const vocab = t.model?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    const id = (vocab as Record<string, unknown>)[content];
    if (typeof id === 'number') return id;
  }
  return undefined;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/**
 * Writes a scene CLIP as a transformers.js model folder (see the module comment), replacing any folder at
 * `dir`. Checks the weights against the config and the tokenizer against the vocabulary first.
 */
export async function writeClipFolder(dir: string, contents: ClipFolderContents): Promise<void> {
  const { config, weights, tokenizerFiles } = contents;
  checkClipWeights(config, weights);
  checkTokenizerFiles(config, tokenizerFiles);
  const textOnnx = buildClipTextOnnx(config, weights);
  const visionOnnx = buildClipVisionOnnx(config, weights);
  const safetensors = encodeSafetensors(weights, { format: 'pt', scene_clip_config: JSON.stringify(config) }, clipParameterShapes(config).keys());

  const target = path.resolve(dir);
  const parent = path.dirname(target);
  await fsp.mkdir(parent, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const staging = path.join(parent, `.${path.basename(target)}.staging-${stamp}`);
  try {
    await fsp.mkdir(path.join(staging, 'onnx'), { recursive: true });
    const files: [string, string | Uint8Array][] = [
      [CLIP_FOLDER_FILES.config, json(hfClipConfig(config))],
      [CLIP_FOLDER_FILES.preprocessor, json(clipPreprocessorConfig(config))],
      ...Object.entries(tokenizerFiles).map(([name, value]): [string, string] => [name, json(value)]),
      [CLIP_FOLDER_FILES.textModel, textOnnx],
      [CLIP_FOLDER_FILES.visionModel, visionOnnx],
      [CLIP_FOLDER_FILES.weights, safetensors],
    ];
    for (const [name, data] of files) await writeFileDurable(path.join(staging, name), data);
    await syncDir(path.join(staging, 'onnx'));
    await syncDir(staging);

    // A folder cannot be renamed over a non-empty one: move the old one aside, then swap.
    const old = path.join(parent, `.${path.basename(target)}.old-${stamp}`);
    let hadOld = false;
    try {
      await fsp.rename(target, old);
      hadOld = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      await fsp.rename(staging, target);
    } catch (err) {
      if (hadOld) await fsp.rename(old, target).catch(() => undefined);
      throw err;
    }
    await syncDir(parent);
    if (hadOld) await fsp.rm(old, { recursive: true, force: true });
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

/** Reads the scene CLIP config of a folder from its config.json. Throws a `UserError` naming the file. */
export async function readSceneClipConfig(dir: string): Promise<SceneClipConfig> {
  const file = path.join(dir, CLIP_FOLDER_FILES.config);
  try {
    return sceneClipConfigFromHf(JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>);
  } catch (err) {
    throw new UserError(`Cannot read the scene CLIP config ${file} (${(err as Error).message}). Write the CLIP folder again.`, { cause: err });
  }
}

/**
 * Reads the weights of a scene CLIP folder (`model.safetensors`) and checks them against its config.json.
 * Throws a `UserError` naming the file when it is missing, damaged or does not match.
 */
export async function readClipWeights(dir: string): Promise<ClipWeights> {
  const config = await readSceneClipConfig(dir);
  const file = path.join(dir, CLIP_FOLDER_FILES.weights);
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw new UserError(`Cannot read the scene CLIP weights ${file} (${(err as Error).message}). Write the CLIP folder again.`, { cause: err });
  }
  try {
    const { weights } = decodeSafetensors(bytes);
    checkClipWeights(config, weights);
    return weights;
  } catch (err) {
    throw new UserError(`The scene CLIP weights ${file} are damaged or do not match ${CLIP_FOLDER_FILES.config} (${(err as Error).message}). Write the CLIP folder again.`, { cause: err });
  }
}
