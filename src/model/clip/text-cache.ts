/**
 * An LRU cache of text embeddings, so repeated prompts (the bot sees the same few often) skip the
 * text tower. Keys carry the model and its precision, so two models never share an entry.
 */
import { LRUCache } from 'lru-cache';

/** Default number of prompts kept (512 floats each: 2 KiB per entry). */
export const DEFAULT_TEXT_CACHE_SIZE = 4096;

export class TextEmbeddingCache {
  private readonly lru: LRUCache<string, Float32Array>;
  private readonly enabled: boolean;
  hits = 0;
  misses = 0;

  /** @param max entries kept; 0 turns the cache off. */
  constructor(max: number = DEFAULT_TEXT_CACHE_SIZE) {
    this.lru = new LRUCache<string, Float32Array>({ max: Math.max(1, max) });
    this.enabled = max > 0;
  }

  /** The cache key of a text for a model (`model` names the source, e.g. a hub id or folder). */
  static key(model: string, quantized: boolean, text: string): string {
    return `${model}\u0000${quantized ? 'q8' : 'fp32'}\u0000${text}`;
  }

  /** A copy of the cached embedding, or undefined. Copies keep callers from changing the cache. */
  get(key: string): Float32Array | undefined {
    if (!this.enabled) return undefined;
    const v = this.lru.get(key);
    if (v) this.hits++;
    else this.misses++;
    return v ? v.slice() : undefined;
  }

  set(key: string, embedding: Float32Array): void {
    if (this.enabled) this.lru.set(key, embedding.slice());
  }

  get size(): number {
    return this.lru.size;
  }

  clear(): void {
    this.lru.clear();
  }
}
