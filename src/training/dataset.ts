/**
 * What the trainer reads: any source of (image, CLIP embedding) batches.
 * Implemented by the in-memory dataset (tests, small runs) and by the dataset cache loader (src/training/data).
 */

export type Split = 'train' | 'val';

/** One batch of training pairs, row-major. */
export interface Batch {
  /** Number of examples in the batch (the last batch of an epoch may be short). */
  size: number;
  /** Images as uint8 RGB, NHWC: `size * resolution * resolution * 3` bytes. The trainer scales them to [0, 1]. */
  images: Uint8Array;
  /** CLIP embeddings, L2-normalised: `size * embeddingDim` floats. */
  embeddings: Float32Array;
}

export interface BatchOptions {
  /** Epoch number (0-based): sources reshuffle (and, in text mode, redraw captions) per epoch. */
  epoch: number;
  /** Seed of the shuffle; the same seed and epoch give the same order. */
  seed: number;
  /** Shuffle the examples (default true for `train`, false for `val`). */
  shuffle?: boolean;
}

export interface BatchSource {
  /** Image side in pixels (64 or 128). */
  readonly resolution: number;
  /** Embedding width (512 for CLIP ViT-B/32). */
  readonly embeddingDim: number;
  /** Stable content fingerprint of the data (goes into checkpoint metadata). */
  readonly fingerprint: string;
  /** CLIP model the embeddings were computed with (goes into checkpoint metadata). */
  readonly clipModel: string;
  /** Number of examples in a split. */
  size(split: Split): number;
  /** Streams the split's batches; memory stays bounded by a few batches. */
  batches(split: Split, batchSize: number, options: BatchOptions): AsyncIterable<Batch>;
}
