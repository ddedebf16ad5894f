/**
 * The playground's one channel: the recent messages (commands typed, generations, training progress) and their
 * PNGs, in memory, and the subscribers (the pages' SSE streams) that get every new or changed message.
 * A message's id is its "web message id", the message reference that generations are attached to and
 * reactions name.
 */
import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** An image shown in a message. */
export interface ChatImage {
  /** Where the PNG is served. */
  url: string;
  caption?: string;
  /** For generation images: which image of the generation (0-based); absent for the grid. */
  index?: number;
}

/** What a generation message shows besides its text. */
export interface ChatGeneration {
  generationId: string;
  prompt: string;
  seeds: number[];
  model: string;
  /** Set when the message shows one image of the generation. */
  imageIndex?: number;
}

/** One message of the channel. */
export interface ChatMessage {
  id: string;
  at: string;
  from: 'you' | 'bot';
  kind: 'command' | 'generation' | 'image' | 'info' | 'error' | 'training';
  text: string;
  /** Progress of the work the message stands for. */
  state?: 'queued' | 'working' | 'done' | 'failed';
  /** Queue position while waiting (1 = next). */
  position?: number;
  /** Training progress, 0..1. */
  progress?: number;
  generation?: ChatGeneration;
  images?: ChatImage[];
  /** Training images: what they show. */
  trainingImage?: 'samples' | 'loss';
  /** The local user's reactions on this message (emoji → on). */
  reactions?: Record<string, boolean>;
}

export type ChatListener = (message: ChatMessage) => void;

/** New message ids: `web-` and 12 random url-safe characters. */
export function newMessageId(): string {
  return `web-${crypto.randomBytes(9).toString('base64url')}`;
}

/** In-memory channel state; see the module comment. */
export class ChatLog {
  private readonly messages: ChatMessage[] = [];
  private readonly byId = new Map<string, ChatMessage>();
  private readonly listeners = new Set<ChatListener>();
  private readonly media: LRUCache<string, Buffer>;

  /**
   * @param maxMessages messages kept for page reloads (older ones drop out)
   * @param maxMediaBytes PNG bytes kept (least recently used drop out)
   */
  constructor(private readonly maxMessages = 200, maxMediaBytes = 64 * 1024 * 1024) {
    this.media = new LRUCache<string, Buffer>({ maxSize: maxMediaBytes, sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** Adds a message (id and time filled in when absent) and tells the listeners. */
  add(m: Omit<ChatMessage, 'id' | 'at'> & { id?: string; at?: string }): ChatMessage {
    const message: ChatMessage = { ...m, id: m.id ?? newMessageId(), at: m.at ?? new Date().toISOString() };
    this.messages.push(message);
    this.byId.set(message.id, message);
    while (this.messages.length > this.maxMessages) this.byId.delete(this.messages.shift()!.id);
    this.emit(message);
    return message;
  }

  /** Changes a message and tells the listeners; unknown ids are ignored (null). */
  update(id: string, patch: Partial<Omit<ChatMessage, 'id' | 'at'>>): ChatMessage | null {
    const m = this.byId.get(id);
    if (!m) return null;
    Object.assign(m, patch);
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete (m as unknown as Record<string, unknown>)[k];
    this.emit(m);
    return m;
  }

  get(id: string): ChatMessage | null {
    return this.byId.get(id) ?? null;
  }

  /** The kept messages, oldest first. */
  recent(): ChatMessage[] {
    return [...this.messages];
  }

  /** Keeps a PNG of a message; returns the URL it is served at. */
  putImage(messageId: string, name: string, png: Buffer): string {
    this.media.set(`${messageId}/${name}`, png);
    return `/media/${encodeURIComponent(messageId)}/${encodeURIComponent(name)}.png`;
  }

  /** A kept PNG, or undefined when unknown or dropped. */
  image(messageId: string, name: string): Buffer | undefined {
    return this.media.get(`${messageId}/${name}`);
  }

  /** Subscribes to new and changed messages; returns the unsubscribe function. */
  subscribe(fn: ChatListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(m: ChatMessage): void {
    const copy = structuredClone(m);
    for (const fn of this.listeners) fn(copy);
  }
}
