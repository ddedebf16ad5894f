/**
 * Where the CLIP model comes from: a Hugging Face hub id (downloaded once into a cache folder under
 * the data dir) or a local folder in transformers.js layout (fully offline). Also owns the
 * transformers.js global `env`, which is set right before every load under a lock, and turns load
 * failures into one `UserError` a person can act on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { env } from '@xenova/transformers';
import { UserError } from '../../errors.js';
import { dataDir } from '../../paths.js';
import { expandHome, looksLikePath } from './clip-name.js';

/** The hub id used when neither an option nor `CLIP_MODEL` names a model. */
export const DEFAULT_CLIP_MODEL = 'Xenova/clip-vit-base-patch32';
/** The public Hugging Face hub; `HF_ENDPOINT` points elsewhere (a mirror). */
export const DEFAULT_HUB_HOST = 'https://huggingface.co/';

/** Files a CLIP folder needs, per part. */
export type ClipPart = 'tokenizer' | 'text' | 'vision';

/** Where a CLIP model is read from. */
export type ClipModelSource =
  | {
      kind: 'local';
      /** Absolute folder of the model. */
      dir: string;
      /** What transformers.js is asked to load: the folder's name, relative to `env.localModelPath`. */
      loadId: string;
      /** The parent folder, set as `env.localModelPath`. */
      localModelPath: string;
      quantized: boolean;
    }
  | {
      kind: 'hub';
      /** Hub id, e.g. `Xenova/clip-vit-base-patch32`. */
      id: string;
      loadId: string;
      /** Download cache (`env.cacheDir`). */
      cacheDir: string;
      /** Hub or mirror base URL, ends with `/`. */
      remoteHost: string;
      /** Only the cache is used, never the network (`HF_HUB_OFFLINE=1`). */
      offline: boolean;
      quantized: boolean;
    };

/** Options that pick the CLIP model. Unset fields fall back to environment variables, then defaults. */
export interface ClipSourceOptions {
  /** Hub id or local folder. Default `CLIP_MODEL`, else `Xenova/clip-vit-base-patch32`. */
  model?: string;
  /** Use the `*_quantized.onnx` (uint8) towers. Default `CLIP_QUANTIZED` (1/true), else false (fp32). */
  quantized?: boolean;
  /** Download cache for hub models. Default `CLIP_CACHE_DIR`, else `<DATA_DIR>/models`. */
  cacheDir?: string;
  /** Hub base URL. Default `HF_ENDPOINT`, else https://huggingface.co/. */
  remoteHost?: string;
  /** Never download; hub models must already be in the cache. Default `HF_HUB_OFFLINE` (1/true). */
  offline?: boolean;
}

function envFlag(name: string): boolean | undefined {
  const v = process.env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  return ['1', 'true', 'yes', 'on'].includes(v);
}

/** The model name used when none is given: `CLIP_MODEL` or the default hub id. */
export function defaultClipModel(): string {
  const v = process.env.CLIP_MODEL?.trim();
  return v ? v : DEFAULT_CLIP_MODEL;
}

/** Whether quantized towers are used when none is asked for: `CLIP_QUANTIZED`. */
export function defaultClipQuantized(): boolean {
  return envFlag('CLIP_QUANTIZED') ?? false;
}

/** Help text listing what a local CLIP folder must hold. */
export function localFolderHelp(quantized = false): string {
  const q = quantized ? '_quantized' : '';
  return (
    `a folder containing config.json, tokenizer.json, tokenizer_config.json and onnx/text_model${q}.onnx ` +
    `(plus preprocessor_config.json and onnx/vision_model${q}.onnx for images)`
  );
}

function fixHint(quantized: boolean): string {
  return (
    `Set CLIP_MODEL (or --clip-model) to ${localFolderHelp(quantized)}, or to a Hugging Face hub id such as ` +
    `${DEFAULT_CLIP_MODEL} on a machine that can reach the hub (or a mirror set with HF_ENDPOINT).`
  );
}

/**
 * Decides where the model comes from. A folder that exists (or a name written like a path) is a
 * local model; anything else shaped like `owner/name` is a hub id. Throws a `UserError` for a path
 * that does not exist or is not a folder.
 */
export function resolveClipModelSource(opts: ClipSourceOptions = {}): ClipModelSource {
  const model = (opts.model ?? defaultClipModel()).trim();
  const quantized = opts.quantized ?? defaultClipQuantized();
  if (!model) throw new UserError(`No CLIP model given. ${fixHint(quantized)}`);
  if (looksLikePath(model)) {
    const dir = path.resolve(expandHome(model));
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch {
      throw new UserError(`CLIP model folder "${dir}" does not exist. ${fixHint(quantized)}`);
    }
    if (!stat.isDirectory()) {
      throw new UserError(`CLIP model "${dir}" is a file, not a folder. ${fixHint(quantized)}`);
    }
    return { kind: 'local', dir, loadId: path.basename(dir), localModelPath: path.dirname(dir) + path.sep, quantized };
  }
  let remoteHost = (opts.remoteHost ?? process.env.HF_ENDPOINT?.trim()) || DEFAULT_HUB_HOST;
  if (!remoteHost.endsWith('/')) remoteHost += '/';
  const cacheDir = path.resolve(opts.cacheDir ?? (process.env.CLIP_CACHE_DIR?.trim() || path.join(dataDir(), 'models')));
  const offline = opts.offline ?? envFlag('HF_HUB_OFFLINE') ?? false;
  return { kind: 'hub', id: model, loadId: model, cacheDir, remoteHost, offline, quantized };
}

export { portableClipModelName, resolveRecordedClipModel, sameClipModel } from './clip-name.js';

/** A stable name of the model: the absolute folder or the hub id (what checkpoints record). */
export function sourceName(src: ClipModelSource): string {
  return src.kind === 'local' ? src.dir : src.id;
}

/** Files (relative to the model folder) that a part of the model needs. */
export function requiredFiles(part: ClipPart, quantized: boolean): string[] {
  const q = quantized ? '_quantized' : '';
  switch (part) {
    case 'tokenizer':
      return ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
    case 'text':
      return [`onnx/text_model${q}.onnx`];
    case 'vision':
      return ['preprocessor_config.json', `onnx/vision_model${q}.onnx`];
  }
}

/** For a local folder: throws one `UserError` listing every file the part needs that is missing. */
export function checkLocalFiles(src: ClipModelSource, part: ClipPart): void {
  if (src.kind !== 'local') return;
  const missing = requiredFiles(part, src.quantized).filter((f) => !fs.existsSync(path.join(src.dir, f)));
  if (missing.length > 0) {
    throw new UserError(
      `CLIP model folder "${src.dir}" is missing ${missing.join(', ')} (needed for the ${partName(part)}). ` +
        fixHint(src.quantized),
    );
  }
}

function partName(part: ClipPart): string {
  return part === 'tokenizer' ? 'tokenizer' : part === 'text' ? 'text tower' : 'vision tower';
}

let envLock: Promise<unknown> = Promise.resolve();

/**
 * Runs a transformers.js load with the global `env` set for this source. Loads are serialised:
 * `env` is process-wide, and a concurrent load for another model would otherwise change it midway.
 */
export function withModelEnv<T>(src: ClipModelSource, load: () => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    env.useBrowserCache = false;
    env.useCustomCache = false;
    if (src.kind === 'local') {
      env.localModelPath = src.localModelPath;
      env.allowLocalModels = true;
      env.allowRemoteModels = false;
      // The file cache is keyed by the relative id: a cached hub model with the folder's name would win.
      env.useFSCache = false;
    } else {
      // Online: cache, then the hub. Offline: the cache only (transformers.js refuses to have both
      // sources off, so the cache folder doubles as the local model path).
      env.allowLocalModels = src.offline;
      if (src.offline) env.localModelPath = src.cacheDir + path.sep;
      env.allowRemoteModels = !src.offline;
      env.useFSCache = true;
      env.cacheDir = src.cacheDir;
      env.remoteHost = src.remoteHost;
      env.remotePathTemplate = '{model}/resolve/{revision}/';
    }
    return load();
  };
  const result = envLock.then(run, run);
  envLock = result.catch(() => undefined);
  return result;
}

/** transformers.js loader options for this source. */
export function loadOptions(src: ClipModelSource, onProgress?: (p: ClipLoadProgress) => void) {
  return {
    quantized: src.quantized,
    // (hub + offline: `env.allowRemoteModels = false` already keeps it to the cache)
    local_files_only: src.kind === 'local',
    ...(src.kind === 'hub' ? { cache_dir: src.cacheDir } : {}),
    ...(onProgress ? { progress_callback: (p: ClipLoadProgress) => onProgress(p) } : {}),
  };
}

/** Load/download progress as transformers.js reports it, per file. */
export interface ClipLoadProgress {
  status: 'initiate' | 'download' | 'progress' | 'done' | 'ready';
  name?: string;
  file?: string;
  /** Percent 0..100 (status `progress`). */
  progress?: number;
  loaded?: number;
  total?: number;
}

/**
 * Turns an error thrown while loading part of the model into one `UserError` naming the folder or
 * hub id and saying what to do. `UserError`s pass through unchanged.
 */
export function explainLoadError(src: ClipModelSource, part: ClipPart, err: unknown): UserError {
  if (err instanceof UserError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const files = requiredFiles(part, src.quantized).join(', ');
  if (src.kind === 'local') {
    const missing = /not found locally at "([^"]+)"/.exec(msg);
    if (missing) {
      return new UserError(`CLIP model folder "${src.dir}" is missing ${path.relative(src.dir, missing[1])}. ${fixHint(src.quantized)}`, { cause: err });
    }
    return new UserError(
      `CLIP model folder "${src.dir}" is broken: its ${partName(part)} (${files}) could not be loaded (${msg}). ` +
        `Replace the folder with a complete copy of the model. ${fixHint(src.quantized)}`,
      { cause: err },
    );
  }
  const cached = path.join(src.cacheDir, src.id);
  if (/not found locally/.test(msg) && src.offline) {
    return new UserError(
      `CLIP model "${src.id}" is not in the cache ${cached} and downloads are off (HF_HUB_OFFLINE). ` +
        `Unset HF_HUB_OFFLINE on a machine that can reach the hub, or ${fixHint(src.quantized)}`,
      { cause: err },
    );
  }
  if (/fetch failed|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|network/i.test(msg)) {
    const cause = (err as { cause?: { message?: string; code?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? msg;
    return new UserError(
      `Could not download CLIP model "${src.id}" from ${src.remoteHost} (${detail}). ${fixHint(src.quantized)}`,
      { cause: err },
    );
  }
  if (/Could not locate file|Unauthorized|Forbidden|Error \(\d+\) occurred/.test(msg)) {
    return new UserError(
      `Could not download CLIP model "${src.id}" from ${src.remoteHost}: ${msg} Check the model id ` +
        `(it must hold ${files} in transformers.js layout; set HF_TOKEN for private models). ${fixHint(src.quantized)}`,
      { cause: err },
    );
  }
  return new UserError(
    `CLIP model "${src.id}" is broken: its ${partName(part)} (${files}) could not be loaded (${msg}). ` +
      `Delete ${cached} to download it again. ${fixHint(src.quantized)}`,
    { cause: err },
  );
}
