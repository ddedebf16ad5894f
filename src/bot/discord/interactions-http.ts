/**
 * Discord interactions over HTTP (`POST /discord/interactions` on the process's HTTP server): slash commands and
 * buttons without the gateway, so ingress replicas can sit behind a load balancer. Each request is checked
 * (Ed25519 signature over timestamp + raw body, fresh timestamp, bounded body), parsed into typed values
 * (interaction-payload.ts), and answered at once: PONG to a PING, a deferred response (type 5; 6 for the Cancel
 * button, which updates its own message) to everything that does work. The work then runs in the background and
 * its result goes out through the interaction webhook (webhook-delivery.ts), as a worker's would.
 *
 * Embedded mode: the core generates here and the reply is delivered by the same DiscordReplyDelivery a worker
 * uses. Scaled mode (a JobSubmitter): `/imagine`, Reroll and Variations become jobs keyed by the interaction id;
 * the deferred reply shows "Queued, position N (about S s)" with a Cancel button, and a worker edits it with the
 * images.
 */
import type http from 'node:http';
import { AttachmentBuilder, InteractionResponseType, MessageFlags } from 'discord.js';
import { childLogger } from '../../log.js';
import { HttpError, readBody, sendJson, type Route } from '../../http/server.js';
import { runModelCommand, runTrainCommand } from '../core/command-text.js';
import { isUserError, userMessageOf } from '../core/errors.js';
import type { GenerationAsk, JobReceipt, JobSubmitter } from '../core/jobs-types.js';
import type { Actor, BotCore, ImagineReply, TrainingProgressSink } from '../core/types.js';
import {
  actorOfSource, MalformedInteractionError, parseInteraction, type InteractionButton, type InteractionCommand, type InteractionSource,
} from './interaction-payload.js';
import { createInteractionVerifier } from './interaction-signature.js';
import { safeError } from './log-safe.js';
import { QUEUED_NOTICE_MIN_WAIT_S, queuedNotice } from './replies.js';
import { channelProgressSink } from './progress-sink.js';
import { createDiscordReplyDelivery, createDiscordRestClient, type DiscordReplyDelivery, type DiscordTarget } from './webhook-delivery.js';

const log = childLogger('discord-http');

/** Where Discord posts interactions ("Interactions Endpoint URL" in the developer portal: https://HOST/discord/interactions). */
export const DISCORD_INTERACTIONS_PATH = '/discord/interactions';

/** Largest interaction body read (256 KiB, as for Slack); real interactions are a few KB. */
export const DISCORD_MAX_BODY_BYTES = 256 * 1024;


const UNKNOWN_COMMAND = 'I do not know that command any more; an admin may need to run `register-commands`.';
const UNKNOWN_BUTTON = 'This button does not work any more.';
const STARTING = 'The bot is still starting (loading CLIP and the model); try again in a moment.';
const NO_JOBS_TO_CANCEL = 'There is nothing to cancel: requests here are not queued as jobs.';

export interface DiscordInteractionsDeps {
  /** The application's public key (DISCORD_PUBLIC_KEY, 64 hex digits). */
  publicKey: string;
  /** The bot core, or null while it is loading (commands then get a "still starting" note). */
  core: () => BotCore | null;
  /** Scaled mode: generations are submitted as jobs (absent or null: the core generates in this process). */
  jobs?: () => JobSubmitter | null | undefined;
  /** Answers go out through this (the same delivery a worker uses). */
  delivery: DiscordReplyDelivery;
  /** Where `/train start` reports progress: the channel it was typed in. */
  progressSink: (channelId: string) => TrainingProgressSink;
  /** Clock (tests). */
  now?: () => number;
  /** Default {@link DISCORD_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Default {@link QUEUED_NOTICE_MIN_WAIT_S}. */
  queuedNoticeMinWaitS?: number;
}

/** The HTTP interactions endpoint. */
export interface DiscordInteractions {
  /** The route for the HTTP server. */
  route(): Route;
  /** Resolves when the work started by earlier requests has been answered (for a graceful stop). */
  idle(): Promise<void>;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The body of an interaction response. */
type InteractionResponse =
  | { type: InteractionResponseType.Pong }
  | { type: InteractionResponseType.ChannelMessageWithSource; data: { content: string; flags: number; allowed_mentions: { parse: [] } } }
  | { type: InteractionResponseType.DeferredChannelMessageWithSource; data?: { flags: number } }
  | { type: InteractionResponseType.DeferredMessageUpdate };

const privately = (content: string): InteractionResponse => ({
  type: InteractionResponseType.ChannelMessageWithSource, data: { content, flags: MessageFlags.Ephemeral, allowed_mentions: { parse: [] } },
});
const deferPublic: InteractionResponse = { type: InteractionResponseType.DeferredChannelMessageWithSource };
const deferPrivate: InteractionResponse = { type: InteractionResponseType.DeferredChannelMessageWithSource, data: { flags: MessageFlags.Ephemeral } };
const deferUpdate: InteractionResponse = { type: InteractionResponseType.DeferredMessageUpdate };

/** What to answer now, and the work to run once the answer is out. */
interface Plan {
  response: InteractionResponse;
  work?: () => Promise<void>;
}

/** Builds the endpoint; see the module comment. */
export function createDiscordInteractions(deps: DiscordInteractionsDeps): DiscordInteractions {
  const verify = createInteractionVerifier(deps.publicKey);
  const now = deps.now ?? Date.now;
  const maxBody = deps.maxBodyBytes ?? DISCORD_MAX_BODY_BYTES;
  const minWaitS = deps.queuedNoticeMinWaitS ?? QUEUED_NOTICE_MIN_WAIT_S;
  const { delivery } = deps;
  const inFlight = new Set<Promise<void>>();

  const targetOf = (source: InteractionSource, receivedAt: number): DiscordTarget => ({
    platform: 'discord', applicationId: source.applicationId, interactionToken: source.token, channelId: source.channelId, receivedAt,
  });

  function logFailure(err: unknown, source: InteractionSource, what: string): void {
    if (!isUserError(err)) log.error({ err: safeError(err), interactionId: source.id, what }, 'discord interaction failed');
  }

  /** After a public deferral: the placeholder goes and who asked is told privately. */
  async function failPublic(target: DiscordTarget, source: InteractionSource, what: string, err: unknown): Promise<void> {
    logFailure(err, source, what);
    await delivery.apologise(target, userMessageOf(err));
  }

  async function showQueued(target: DiscordTarget, receipt: JobReceipt): Promise<void> {
    const notice = queuedNotice(receipt, minWaitS);
    if (notice) await delivery.show(target, notice);
  }

  /**
   * A generation (imagine, reroll, variations) after a public deferral: a job in scaled mode, else generated here
   * with the queue position shown while it waits (edits serialised so the images are always the last edit).
   */
  async function generate(core: BotCore, source: InteractionSource, target: DiscordTarget, ask: GenerationAsk): Promise<void> {
    const actor = actorOfSource(source);
    try {
      const jobs = deps.jobs?.();
      if (jobs) {
        await showQueued(target, await jobs.submit(actor, ask, target, `discord:${source.id}`));
        return;
      }
      let edits: Promise<unknown> = Promise.resolve();
      const hooks = {
        onQueued: (position: number) => {
          edits = edits.then(() => delivery.show(target, { content: `Queued, position ${position}. Your images are coming…` }))
            .catch((err: unknown) => log.warn({ err: safeError(err), interactionId: source.id }, 'could not show the queue position'));
        },
      };
      const reply = await runAsk(core, actor, ask, hooks);
      await edits;
      for (const m of await delivery.deliver(target, reply)) await core.attachMessage(reply.generationId, m.messageRef, m.imageIndex);
    } catch (err) {
      await failPublic(target, source, ask.kind, err);
    }
  }

  function runAsk(core: BotCore, actor: Actor, ask: GenerationAsk, hooks: { onQueued(position: number): void }): Promise<ImagineReply> {
    switch (ask.kind) {
      case 'imagine': return core.imagine(actor, ask.options, hooks);
      case 'reroll': return core.reroll(actor, ask.generationId, hooks);
      case 'variations': return core.variations(actor, ask.generationId, hooks);
    }
  }

  async function singleImage(core: BotCore, source: InteractionSource, target: DiscordTarget, generationId: string, index: number): Promise<void> {
    try {
      const { png, text } = await core.singleImage(generationId, index);
      const messageRef = await delivery.show(target, {
        content: text, files: [new AttachmentBuilder(png, { name: `cvae-${generationId}-${index + 1}.png` })],
      });
      await core.attachMessage(generationId, messageRef, index);
    } catch (err) {
      await failPublic(target, source, 'image', err);
    }
  }

  /** `/train` and `/model` after a private deferral: the reply (or the refusal) edits it. */
  async function adminCommand(core: BotCore, source: InteractionSource, target: DiscordTarget, command: InteractionCommand): Promise<void> {
    const actor = actorOfSource(source);
    let content: string;
    try {
      if (command.name === 'train') content = await runTrainCommand(core, actor, command.command, () => deps.progressSink(source.channelId));
      else if (command.name === 'model') content = await runModelCommand(core, actor, command.command);
      else content = UNKNOWN_COMMAND;
    } catch (err) {
      logFailure(err, source, `/${command.name}`);
      content = userMessageOf(err);
    }
    await delivery.show(target, { content, components: [] });
  }

  /** Cancel on a "Queued" notice: the notice becomes the outcome; a refusal goes privately to who clicked. */
  async function cancel(source: InteractionSource, target: DiscordTarget, requestId: string): Promise<void> {
    const jobs = deps.jobs?.();
    if (!jobs) {
      await delivery.followUpPrivately(target, NO_JOBS_TO_CANCEL);
      return;
    }
    let text: string;
    try {
      text = await jobs.cancel(actorOfSource(source), requestId);
    } catch (err) {
      logFailure(err, source, 'cancel');
      await delivery.followUpPrivately(target, userMessageOf(err));
      return;
    }
    await delivery.show(target, { content: text, components: [] });
  }

  function planCommand(core: BotCore, source: InteractionSource, target: DiscordTarget, command: InteractionCommand): Plan {
    log.debug({ command: command.name, userId: source.userId, guildId: source.guildId }, 'command over HTTP');
    if (command.name === 'imagine') {
      return { response: deferPublic, work: () => generate(core, source, target, { kind: 'imagine', options: command.options }) };
    }
    if (command.name === 'unknown') return { response: privately(UNKNOWN_COMMAND) };
    return { response: deferPrivate, work: () => adminCommand(core, source, target, command) };
  }

  function planButton(core: BotCore, source: InteractionSource, target: DiscordTarget, button: InteractionButton): Plan {
    switch (button.action) {
      case 'reroll':
        return { response: deferPublic, work: () => generate(core, source, target, { kind: 'reroll', generationId: button.generationId }) };
      case 'vary':
        return { response: deferPublic, work: () => generate(core, source, target, { kind: 'variations', generationId: button.generationId }) };
      case 'image':
        return { response: deferPublic, work: () => singleImage(core, source, target, button.generationId, button.index) };
      case 'cancel':
        return { response: deferUpdate, work: () => cancel(source, target, button.requestId) };
      case 'unknown':
        log.debug({ customId: button.customId }, 'unknown button');
        return { response: privately(UNKNOWN_BUTTON) };
    }
  }

  /** Decides the immediate answer from the parsed interaction (and the work to run after it). */
  function plan(body: unknown, receivedAt: number): Plan {
    const interaction = parseInteraction(body);
    if (interaction.type === 'ping') return { response: { type: InteractionResponseType.Pong } };
    const core = deps.core();
    if (!core) return { response: privately(STARTING) };
    const target = targetOf(interaction.source, receivedAt);
    if (interaction.type === 'command') return planCommand(core, interaction.source, target, interaction.command);
    if (interaction.type === 'button') return planButton(core, interaction.source, target, interaction.button);
    return { response: privately('This kind of interaction is not supported by this bot.') };
  }

  function track(work: () => Promise<void>): void {
    const p = work()
      .catch((err: unknown) => log.error({ err: safeError(err) }, 'could not answer a discord interaction'))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const receivedAt = now();
    const raw = await readBody(req, maxBody);
    const problem = verify(header(req, 'x-signature-ed25519'), header(req, 'x-signature-timestamp'), raw, receivedAt);
    if (problem) {
      log.warn({ reason: problem, remote: req.socket.remoteAddress }, 'discord interaction refused: signature check failed');
      sendJson(res, 401, { error: 'invalid request signature' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'The request body is not valid JSON.');
    }
    let decided: Plan;
    try {
      decided = plan(body, receivedAt);
    } catch (err) {
      if (!(err instanceof MalformedInteractionError)) throw err;
      log.warn({ reason: err.message }, 'discord interaction refused: malformed');
      throw new HttpError(400, 'Malformed interaction.');
    }
    sendJson(res, 200, decided.response);
    if (decided.work) track(decided.work);
  }

  return {
    route(): Route {
      return async (req, res, url) => {
        if (url.pathname !== DISCORD_INTERACTIONS_PATH) return false;
        if (req.method !== 'POST') sendJson(res, 405, { error: 'Use POST.' });
        else await handle(req, res);
        return true;
      };
    },
    async idle() {
      while (inFlight.size) await Promise.all([...inFlight]);
    },
  };
}

/** The endpoint as the app runs it, with its REST client. */
export interface RunningDiscordInteractions extends DiscordInteractions {
  /** Waits for the answers in flight, then closes the REST client. */
  stop(): Promise<void>;
}

/**
 * The endpoint wired for the app: a REST-only discord.js client (bot token for channel posts and training
 * progress, DISCORD_API_URL as its base), the webhook delivery over it, and progress posted to the channel.
 * `jobs` is read from the core when it has one (scaled mode).
 */
export function startDiscordInteractions(
  config: { DISCORD_PUBLIC_KEY: string; DISCORD_TOKEN?: string; DISCORD_API_URL?: string },
  core: () => (BotCore & { jobs?: JobSubmitter | null }) | null,
): RunningDiscordInteractions {
  const client = createDiscordRestClient(config);
  if (!config.DISCORD_TOKEN) log.warn('DISCORD_TOKEN is not set: replies past the 15-minute interaction token and training progress cannot be posted');
  const endpoint = createDiscordInteractions({
    publicKey: config.DISCORD_PUBLIC_KEY, core, jobs: () => core()?.jobs,
    delivery: createDiscordReplyDelivery({ client }),
    progressSink: (channelId) => channelProgressSink(client, channelId),
  });
  log.info({ path: DISCORD_INTERACTIONS_PATH }, 'Discord interactions endpoint ready (set it as Interactions Endpoint URL in the developer portal)');
  return {
    ...endpoint,
    async stop() {
      await endpoint.idle();
      await client.destroy();
    },
  };
}
