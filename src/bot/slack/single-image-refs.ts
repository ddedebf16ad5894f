import { LRUCache } from 'lru-cache';

/** Where a single-image post came from: the grid message the core knows, and the image's index. */
export interface SingleImageOrigin {
  gridMessageRef: string;
  imageIndex: number;
}

/**
 * Remembers which messages are single images posted from a grid (per-image buttons), so reactions on them are
 * recorded against the generation with the image index. In memory, bounded (LRU); after a restart reactions on
 * older single-image posts are not recorded (the ones on the grid still are: the core stores those).
 */
export class SingleImageRefs {
  private readonly refs: LRUCache<string, SingleImageOrigin>;

  constructor(max = 10_000) {
    this.refs = new LRUCache({ max });
  }

  remember(messageRef: string, origin: SingleImageOrigin): void {
    this.refs.set(messageRef, origin);
  }

  lookup(messageRef: string): SingleImageOrigin | undefined {
    return this.refs.get(messageRef);
  }
}
