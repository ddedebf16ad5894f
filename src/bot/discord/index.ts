/**
 * The Discord adapter (discord.js v14): a thin layer that parses interactions, defers at once, renders core
 * results, and forwards reactions. Intents: Guilds, GuildMessageReactions; partials for reactions on
 * messages the client has not cached.
 */
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, Partials } from 'discord.js';
import { childLogger } from '../../log.js';
import type { BotCore } from '../core/types.js';
import { attachListeners } from './listeners.js';

const log = childLogger('discord');

export interface DiscordConfig {
  DISCORD_TOKEN?: string;
  /** REST API base (default Discord's); the gateway URL comes from its `/gateway/bot`. */
  DISCORD_API_URL?: string;
}

export interface RunningDiscord {
  client: Client<true>;
  /** For health checks: connected to the gateway and ready. */
  status(): { ready: boolean; guilds: number; pingMs: number };
  stop(): Promise<void>;
}

/**
 * Whether this process logs into the Discord gateway. Reactions (feedback) arrive only there, so one process
 * should hold it; slash commands and buttons can come over HTTP instead (DISCORD_PUBLIC_KEY). Default: on;
 * off only with `DISCORD_GATEWAY=0` where DISCORD_PUBLIC_KEY is set (without it, commands would have no way in).
 */
export function discordGatewayEnabled(config: { discord: boolean; DISCORD_PUBLIC_KEY?: string; DISCORD_GATEWAY?: boolean }): boolean {
  if (!config.discord) return false;
  if (config.DISCORD_GATEWAY === false && !config.DISCORD_PUBLIC_KEY) {
    log.warn('DISCORD_GATEWAY=0 is ignored: without DISCORD_PUBLIC_KEY the gateway is the only way Discord commands arrive');
    return true;
  }
  return config.DISCORD_GATEWAY !== false;
}

/** Builds the discord.js client with the bot's intents, partials and API base. */
export function createDiscordClient(config: Pick<DiscordConfig, 'DISCORD_API_URL'>): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions],
    partials: [Partials.Message, Partials.Channel, Partials.Reaction, Partials.User],
    rest: config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {},
    allowedMentions: { parse: [] },
  });
}

/** Logs in and resolves once the client is ready. */
export async function startDiscord(core: BotCore, config: DiscordConfig): Promise<RunningDiscord> {
  if (!config.DISCORD_TOKEN) throw new Error('DISCORD_TOKEN is not set');
  const client = createDiscordClient(config);
  attachListeners(client, { core });
  const ready = once(client, Events.ClientReady);
  await client.login(config.DISCORD_TOKEN);
  await ready;
  log.info({ user: client.user?.tag, guilds: client.guilds.cache.size }, 'discord ready');
  return {
    client: client as Client<true>,
    status: () => ({ ready: client.isReady(), guilds: client.guilds.cache.size, pingMs: client.ws.ping }),
    async stop() {
      await client.destroy();
    },
  };
}

export { commands, commandDefinitions } from './commands/index.js';
