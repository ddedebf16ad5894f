/**
 * What the core needs from the model side, as small interfaces so the core can be wired with the real
 * ClipEmbedder / Sampler / CheckpointRegistry (see sampler-provider.ts and src/app.ts).
 */

/** Turns text into L2-normalised CLIP embeddings (implemented by ClipEmbedder). */
export interface Embedder {
  readonly modelId: string;
  embedTexts(texts: string[]): Promise<Float32Array[]>;
}

/** Checkpoint metadata the core reads (a subset of CheckpointMeta). */
export interface ServedModelMeta {
  clipModel: string;
  resolution: number;
  preset: string;
  /** When the checkpoint was saved; a checkpoint re-saved in place (a run's `best/`) gets a new one. */
  createdAt?: string;
  /** Optimizer steps the checkpoint was trained for. */
  step?: number;
}

/** A loaded sampler of one checkpoint. */
export interface LoadedSampler {
  name: string;
  meta: ServedModelMeta;
  /** One HxWx3 RGB image per (embedding, seed); same seed + embedding gives the same image. */
  sample(embeddings: Float32Array[], seeds: number[]): Promise<Uint8Array[]>;
}

/** Gives the sampler of a named checkpoint, or of the active one. */
export interface SamplerProvider {
  get(modelName?: string): Promise<LoadedSampler>;
}

/** A registered checkpoint (subset of what CheckpointRegistry.list() returns). */
export interface CatalogEntry {
  name: string;
  dir: string;
  meta: ServedModelMeta & { epoch?: number; bestValLoss?: number; createdAt?: string };
  active: boolean;
}

/** The checkpoint registry as the core uses it (implemented by CheckpointRegistry). */
export interface ModelCatalog {
  list(): Promise<CatalogEntry[]>;
  register(name: string, dir: string): Promise<void>;
  activate(name: string): Promise<void>;
  resolve(name: string): Promise<{ name: string; dir: string; meta: ServedModelMeta }>;
}

/** Renders images to PNG for display (implemented with src/model/image-grid.ts). */
export interface ImageRenderer {
  /** Grid of all images, upscaled for display. */
  grid(images: Uint8Array[], size: number): Promise<Buffer>;
  /** One image, upscaled for display. */
  image(image: Uint8Array, size: number): Promise<Buffer>;
}
