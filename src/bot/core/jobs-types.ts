/**
 * The contract of scaled mode (DATABASE_URL set): the ingress turns a chat request into a durable generation
 * job, and a worker renders it and delivers the reply itself through the platform's REST API to a
 * {@link ReplyTarget}. Typed data only: nothing here is parsed back from text.
 */
import type { Actor, ImagineOptions, ImagineReply } from './types.js';

/** Where a worker delivers a generation's reply. */
export type ReplyTarget =
  | {
    platform: 'discord';
    applicationId: string;
    /** The interaction's token: its webhook edits the deferred reply for 15 minutes after `receivedAt`. */
    interactionToken: string;
    channelId: string;
    /** When the interaction arrived (ms since the epoch); past the token's life the worker posts in the channel. */
    receivedAt: number;
  }
  | { platform: 'slack'; channelId: string; threadTs?: string }
  /** The ingress waits for the job (the local playground): the worker stores the reply for it. */
  | { platform: 'web' };

/** What a job asks for. */
export type GenerationAsk =
  | { kind: 'imagine'; options: ImagineOptions }
  | { kind: 'reroll'; generationId: string }
  | { kind: 'variations'; generationId: string };

/** What the ingress tells the user once a job is accepted. */
export interface JobReceipt {
  /** Identifies the job for Cancel. */
  requestId: string;
  /** 1 = next. */
  position: number;
  /** Predicted wait until the images arrive, in seconds, from the queue and the live workers' throughput. */
  predictedWaitS: number;
  /** The same platform request was submitted before (a retried Slack request, a double click): no second job. */
  duplicate: boolean;
}

/** The scaled-mode side of the core: present only when generation runs in workers. */
export interface JobSubmitter {
  /**
   * Admits and queues a generation in one transaction, or refuses with a UserError (per-user limit, predicted
   * wait past the bound, database unreachable). `requestKey` derives from the platform's request id.
   */
  submit(actor: Actor, ask: GenerationAsk, target: ReplyTarget, requestKey: string): Promise<JobReceipt>;
  /** Cancels a job that has not started; only who asked (or an admin). Returns the text to show. */
  cancel(actor: Actor, requestId: string): Promise<string>;
}

/** A platform message that shows a delivered generation (reactions on it count as feedback). */
export interface DeliveredMessage {
  /** Platform message id (Slack: `channel:ts`). */
  messageRef: string;
  /** Set when the message shows one image of the generation. */
  imageIndex?: number;
}

/** Posts a finished generation, or an apology, to a reply target through one platform's REST API. */
export interface ReplyDelivery {
  /**
   * Posts the reply (text, grid, buttons); returns the messages that show it, for the caller to record.
   * `posted` is called as soon as the user can see the images, before follow-up steps (finding the share
   * message, posting buttons): from then on a crash must not make a retry post them a second time.
   */
  deliver(target: ReplyTarget, reply: ImagineReply, posted?: () => Promise<void>): Promise<DeliveredMessage[]>;
  /** Tells the asker the request could not be done (a worker died twice, the model failed...). */
  apologise(target: ReplyTarget, text: string): Promise<void>;
}
