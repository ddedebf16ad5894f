/**
 * The platform-neutral contract between the bot core and its chat adapters (Discord, Slack, ...).
 * The core never imports discord.js or Bolt; adapters parse, defer/ack, render replies and forward reactions.
 */
import type { JobSubmitter } from './jobs-types.js';
import type { TrainingImage, TrainingProgress } from './training-progress.js';

/** Chat platform a request comes from. */
export type Platform = 'discord' | 'slack' | 'web';

/** Who asks, and where. */
export interface Actor {
  platform: Platform;
  /** Discord guild id or Slack team id. */
  workspaceId: string;
  channelId: string;
  userId: string;
  /** e.g. Discord Manage Server */
  platformAdmin?: boolean;
}

/** Options of one /imagine request. */
export interface ImagineOptions {
  prompt: string;
  /** Number of images, 1..4 (default 1). */
  count?: number;
  /** Base seed (default: random). Image i uses seed + i. */
  seed?: number;
  /** Checkpoint name (default: the active one). */
  model?: string;
}

/** What the adapter posts back for a generation. */
export interface ImagineReply {
  generationId: string;
  prompt: string;
  seeds: number[];
  model: string;
  /** Platform user id of who asked (the actor of imagine, reroll or variations). */
  userId: string;
  /** PNG grid of all images. */
  grid: Buffer;
  /** Per-image PNG at display size. */
  images: Buffer[];
  /** Summary: prompt, seed(s), model. */
  text: string;
}

/**
 * Where a training run reports its progress (the channel it was started from). The sink renders it for its
 * platform (formatTrainingProgress, trainingImageCaption in training-progress.ts).
 */
export interface TrainingProgressSink {
  /** Show where the run stands (edit the one status message); the core throttles to >= 15 s apart, except the final one. */
  update(progress: TrainingProgress): Promise<void>;
  /** Post an image of an epoch (sample grid, loss curve). */
  image(image: TrainingImage): Promise<void>;
}

/** Hooks an adapter may pass to imagine(), reroll() and variations(). */
export interface ImagineHooks {
  /** Called when the request has to wait; position 1 is next. */
  onQueued?(position: number): void | Promise<void>;
}

/** A reaction added to or removed from a generation message. */
export interface ReactionEvent {
  platform: Platform;
  /** Platform message id (Slack: channel:ts). */
  messageRef: string;
  userId: string;
  /** Emoji: unicode character or platform name (e.g. `thumbsup`, `<:name:id>` as `name:id`). */
  reaction: string;
  added: boolean;
  imageIndex?: number;
}

export interface BotCore {
  /**
   * Scaled mode only (DATABASE_URL): generations become durable jobs that a worker renders and delivers itself.
   * Adapters that can name a reply target submit here and show the receipt; without it they await imagine().
   */
  readonly jobs?: JobSubmitter;
  imagine(actor: Actor, opts: ImagineOptions, hooks?: ImagineHooks): Promise<ImagineReply>;
  /** Same prompt, new seeds. */
  reroll(actor: Actor, generationId: string, hooks?: ImagineHooks): Promise<ImagineReply>;
  /** Same seed neighbourhood. */
  variations(actor: Actor, generationId: string, hooks?: ImagineHooks): Promise<ImagineReply>;
  singleImage(generationId: string, index: number): Promise<{ png: Buffer; text: string }>;
  /**
   * messageRef: platform message id (Slack: channel:ts). `imageIndex` when the message shows one image of the
   * generation (reactions on it then count for that image). Never rejects: a failure is logged (the reply is out
   * already; only reactions on that message would not count).
   */
  attachMessage(generationId: string, messageRef: string, imageIndex?: number): Promise<void>;
  /**
   * false: not a generation message. Rejects with a UserError (DATABASE_UNAVAILABLE_MESSAGE) while the database
   * cannot be reached; adapters log it and go on.
   */
  recordReaction(r: ReactionEvent): Promise<boolean>;
  trainStart(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }, sink: TrainingProgressSink): Promise<string>;
  trainStatus(actor: Actor): Promise<string>;
  trainStop(actor: Actor): Promise<string>;
  modelList(actor: Actor): Promise<string>;
  modelUse(actor: Actor, name: string): Promise<string>;
  /** Publishes a model (anyone may pick it with `/imagine ... model:NAME`) or takes it back; admins only. */
  modelPublish?(actor: Actor, name: string, published: boolean): Promise<string>;
}
