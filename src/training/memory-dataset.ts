/**
 * A BatchSource held entirely in memory: for tests, synthetic quick runs and small datasets.
 * Shuffling is deterministic: the same (seed, epoch) gives the same order.
 */
import { createHash } from 'node:crypto';
import type { Batch, BatchOptions, BatchSource, Split } from './dataset.js';
import { mixSeeds, mulberry32, permutation } from '../util/prng.js';

/** The examples of one split, row-major: `n * resolution² * 3` image bytes and `n * embeddingDim` floats. */
export interface InMemorySplit {
  images: Uint8Array;
  embeddings: Float32Array;
}

export interface InMemoryDatasetOptions {
  resolution: number;
  embeddingDim: number;
  train: InMemorySplit;
  val: InMemorySplit;
  /** Content fingerprint; default: a SHA-256 of the data (`memory-sha256:...`). */
  fingerprint?: string;
  /** CLIP model id the embeddings came from; default `'none'`. */
  clipModel?: string;
}

/** One (image, embedding) pair. */
export interface Example {
  /** `resolution² * 3` bytes, RGB, HWC. */
  image: Uint8Array;
  embedding: Float32Array;
}

export class InMemoryDataset implements BatchSource {
  readonly resolution: number;
  readonly embeddingDim: number;
  readonly fingerprint: string;
  readonly clipModel: string;
  private readonly splits: Record<Split, InMemorySplit & { count: number }>;

  constructor(opts: InMemoryDatasetOptions) {
    const { resolution, embeddingDim } = opts;
    if (!Number.isInteger(resolution) || resolution < 1) throw new RangeError(`bad resolution ${resolution}`);
    if (!Number.isInteger(embeddingDim) || embeddingDim < 1) throw new RangeError(`bad embeddingDim ${embeddingDim}`);
    const imageBytes = resolution * resolution * 3;
    const check = (name: Split, s: InMemorySplit) => {
      const count = s.images.length / imageBytes;
      if (!Number.isInteger(count)) {
        throw new RangeError(`${name} images: ${s.images.length} bytes is not a multiple of ${imageBytes}`);
      }
      if (s.embeddings.length !== count * embeddingDim) {
        throw new RangeError(`${name}: ${count} images but ${s.embeddings.length / embeddingDim} embeddings`);
      }
      return { ...s, count };
    };
    this.resolution = resolution;
    this.embeddingDim = embeddingDim;
    this.splits = { train: check('train', opts.train), val: check('val', opts.val) };
    this.clipModel = opts.clipModel ?? 'none';
    this.fingerprint = opts.fingerprint ?? contentFingerprint(this.splits.train, this.splits.val);
  }

  /**
   * Builds a dataset from a list of examples, holding out the last `valFraction` (default 0.1, at least one
   * example when there are two or more) as the val split after a seeded shuffle.
   */
  static fromExamples(
    examples: Example[],
    opts: { resolution: number; embeddingDim: number; valFraction?: number; seed?: number; fingerprint?: string; clipModel?: string },
  ): InMemoryDataset {
    const n = examples.length;
    const valFraction = opts.valFraction ?? 0.1;
    let valCount = Math.round(n * valFraction);
    if (valFraction > 0 && valCount === 0 && n >= 2) valCount = 1;
    const order = permutation(n, mulberry32(mixSeeds(opts.seed ?? 0, 0x5a17)));
    const pick = (indices: ArrayLike<number>): InMemorySplit => {
      const imageBytes = opts.resolution * opts.resolution * 3;
      const images = new Uint8Array(indices.length * imageBytes);
      const embeddings = new Float32Array(indices.length * opts.embeddingDim);
      for (let i = 0; i < indices.length; i++) {
        const ex = examples[indices[i]];
        images.set(ex.image, i * imageBytes);
        embeddings.set(ex.embedding, i * opts.embeddingDim);
      }
      return { images, embeddings };
    };
    return new InMemoryDataset({
      resolution: opts.resolution,
      embeddingDim: opts.embeddingDim,
      train: pick(order.subarray(0, n - valCount)),
      val: pick(order.subarray(n - valCount)),
      fingerprint: opts.fingerprint,
      clipModel: opts.clipModel,
    });
  }

  size(split: Split): number {
    return this.splits[split].count;
  }

  /** The `index`-th example of a split (in storage order), as views into the dataset's arrays. */
  example(split: Split, index: number): Example {
    const s = this.splits[split];
    if (index < 0 || index >= s.count) throw new RangeError(`${split} has ${s.count} examples, asked for #${index}`);
    const imageBytes = this.resolution * this.resolution * 3;
    return {
      image: s.images.subarray(index * imageBytes, (index + 1) * imageBytes),
      embedding: s.embeddings.subarray(index * this.embeddingDim, (index + 1) * this.embeddingDim),
    };
  }

  /** Yields batches of `batchSize` (the last may be short); shuffled per (seed, epoch) unless `shuffle` is false. */
  async *batches(split: Split, batchSize: number, options: BatchOptions): AsyncIterable<Batch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`bad batch size ${batchSize}`);
    const s = this.splits[split];
    const shuffle = options.shuffle ?? split === 'train';
    const order = shuffle
      ? permutation(s.count, mulberry32(mixSeeds(options.seed, options.epoch, split === 'train' ? 1 : 2)))
      : Uint32Array.from({ length: s.count }, (_, i) => i);
    const imageBytes = this.resolution * this.resolution * 3;
    const dim = this.embeddingDim;
    for (let start = 0; start < s.count; start += batchSize) {
      const size = Math.min(batchSize, s.count - start);
      const images = new Uint8Array(size * imageBytes);
      const embeddings = new Float32Array(size * dim);
      for (let i = 0; i < size; i++) {
        const j = order[start + i];
        images.set(s.images.subarray(j * imageBytes, (j + 1) * imageBytes), i * imageBytes);
        embeddings.set(s.embeddings.subarray(j * dim, (j + 1) * dim), i * dim);
      }
      yield { size, images, embeddings };
    }
  }
}

function contentFingerprint(train: InMemorySplit, val: InMemorySplit): string {
  const h = createHash('sha256');
  for (const s of [train, val]) {
    h.update(String(s.images.length));
    h.update(s.images);
    h.update(new Uint8Array(s.embeddings.buffer, s.embeddings.byteOffset, s.embeddings.byteLength));
  }
  return `memory-sha256:${h.digest('hex').slice(0, 16)}`;
}
