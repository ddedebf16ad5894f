/**
 * Replies to Discord interactions without the gateway: the Discord {@link ReplyDelivery} a generation worker uses,
 * and the one path the HTTP interactions route answers through. Within the interaction token's life it edits the
 * deferred reply (`PATCH /webhooks/{application}/{token}/messages/@original`, files and buttons); once the token
 * is about to expire (it lasts 15 minutes from the interaction), or Discord says it is no longer valid, it posts
 * in the interaction's channel with the bot token instead. Everything goes through discord.js's REST client of a
 * Client that need not be logged in (see {@link createDiscordRestClient}), so DISCORD_API_URL points it at a fake.
 */
import {
  DiscordAPIError, InteractionWebhook, MessageFlags, RESTJSONErrorCodes, Routes,
  type Client, type InteractionEditReplyOptions,
} from 'discord.js';
import { childLogger } from '../../log.js';
import type { DeliveredMessage, ReplyDelivery, ReplyTarget } from '../core/jobs-types.js';
import type { ImagineReply } from '../core/types.js';
import { createDiscordClient, type DiscordConfig } from './index.js';
import { safeError } from './log-safe.js';
import { generationMessage } from './replies.js';

const log = childLogger('discord-delivery');

/** A reply target on Discord. */
export type DiscordTarget = Extract<ReplyTarget, { platform: 'discord' }>;

/** What a reply shows (the subset of discord.js message options that both a webhook edit and a channel post take). */
export type DiscordMessage = Pick<InteractionEditReplyOptions, 'content' | 'files' | 'components' | 'allowedMentions'>;

/**
 * How long after the interaction its token is used (it lasts 15 minutes; one minute is left for the request in
 * flight and clock differences between the ingress that stamped `receivedAt` and the worker).
 */
export const INTERACTION_TOKEN_USABLE_MS = 14 * 60_000;

/** Webhook errors that mean the token is no longer usable, so the channel is the only way left. */
const TOKEN_GONE = new Set<number | string>([RESTJSONErrorCodes.InvalidWebhookToken, RESTJSONErrorCodes.UnknownWebhook]);

/** The Discord delivery: {@link ReplyDelivery} plus what the HTTP route needs to answer other interactions. */
export interface DiscordReplyDelivery extends ReplyDelivery {
  deliver(target: DiscordTarget, reply: ImagineReply, posted?: () => Promise<void>): Promise<DeliveredMessage[]>;
  /** Tells who asked privately (ephemeral follow-up, the public placeholder removed); a channel post once the token is gone. */
  apologise(target: DiscordTarget, text: string): Promise<void>;
  /** Edits the interaction's reply to `message` (a channel post once the token is gone); resolves with the message id. */
  show(target: DiscordTarget, message: DiscordMessage): Promise<string>;
  /** Sends a private (ephemeral) follow-up to who clicked or typed; nothing once the token is gone. */
  followUpPrivately(target: DiscordTarget, text: string): Promise<void>;
}

export interface DiscordWebhookDeliveryOptions {
  /** REST access: a discord.js Client (logged in or not); its REST token is the bot token used for channel posts. */
  client: Client;
  /** Clock (tests). */
  now?: () => number;
  /** Use the interaction token until this long after `receivedAt` (default {@link INTERACTION_TOKEN_USABLE_MS}). */
  tokenUsableMs?: number;
}

const NO_PINGS = { parse: [] as [] };

/** True when the token of `target` should no longer be used. */
export function interactionTokenExpired(target: DiscordTarget, nowMs: number, usableMs = INTERACTION_TOKEN_USABLE_MS): boolean {
  return nowMs - target.receivedAt > usableMs;
}

function tokenGone(err: unknown): boolean {
  return err instanceof DiscordAPIError && TOKEN_GONE.has(err.code);
}

/**
 * A discord.js Client used for REST only (never logs in): the bot token set on its REST manager for channel
 * posts, its API base from DISCORD_API_URL. Call `destroy()` when done.
 */
export function createDiscordRestClient(config: Pick<DiscordConfig, 'DISCORD_TOKEN' | 'DISCORD_API_URL'>): Client {
  const client = createDiscordClient(config);
  if (config.DISCORD_TOKEN) client.rest.setToken(config.DISCORD_TOKEN);
  return client;
}

/** Builds the Discord delivery over a client's REST; see the module comment. */
export function createDiscordReplyDelivery(opts: DiscordWebhookDeliveryOptions): DiscordReplyDelivery {
  const { client } = opts;
  const now = opts.now ?? Date.now;
  const usableMs = opts.tokenUsableMs ?? INTERACTION_TOKEN_USABLE_MS;

  const webhook = (target: DiscordTarget) => new InteractionWebhook(client as Client<true>, target.applicationId, target.interactionToken);
  const expired = (target: DiscordTarget) => interactionTokenExpired(target, now(), usableMs);

  async function postInChannel(target: DiscordTarget, message: DiscordMessage): Promise<string> {
    // allowUnknownGuild: a REST-only client has no guilds cached.
    const channel = await client.channels.fetch(target.channelId, { allowUnknownGuild: true });
    if (!channel || !channel.isSendable()) throw new Error(`channel ${target.channelId} is not a channel the bot can post in`);
    const sent = await channel.send({
      content: message.content ?? undefined, files: message.files, components: message.components, allowedMentions: NO_PINGS,
    });
    return sent.id;
  }

  async function show(target: DiscordTarget, message: DiscordMessage): Promise<string> {
    if (!expired(target)) {
      try {
        const edited = await webhook(target).editMessage('@original', { ...message, allowedMentions: NO_PINGS });
        return edited.id;
      } catch (err) {
        if (!tokenGone(err)) throw err;
        log.info({ channelId: target.channelId, err: safeError(err) }, 'interaction token no longer valid: posting in the channel');
      }
    }
    return postInChannel(target, message);
  }

  async function followUpPrivately(target: DiscordTarget, text: string): Promise<void> {
    if (expired(target)) return;
    await webhook(target).send({ content: text, flags: MessageFlags.Ephemeral, allowedMentions: NO_PINGS });
  }

  return {
    show,
    followUpPrivately,

    async deliver(target, reply, posted) {
      const messageRef = await show(target, generationMessage(reply));
      await posted?.();
      return [{ messageRef }];
    },

    async apologise(target, text) {
      if (!expired(target)) {
        try {
          // The public "thinking…" (or "Queued") placeholder goes; the apology is for who asked only.
          await client.rest.delete(Routes.webhookMessage(target.applicationId, target.interactionToken, '@original'), { auth: false })
            .catch((err: unknown) => { if (tokenGone(err)) throw err; });
          await followUpPrivately(target, text);
          return;
        } catch (err) {
          if (!tokenGone(err)) throw err;
        }
      }
      await postInChannel(target, { content: text });
    },
  };
}
