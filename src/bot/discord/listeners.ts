/** The Discord event listeners: interactions (commands, buttons) and reactions (feedback). */
import {
  Events, type Client, type Interaction, type MessageReaction, type PartialMessageReaction, type PartialUser, type User,
} from 'discord.js';
import { childLogger } from '../../log.js';
import { safeError } from './log-safe.js';
import { commands } from './commands/index.js';
import { handleGenerationButton } from './buttons.js';
import { replyWithError } from './replies.js';
import type { DiscordContext } from './context.js';

const log = childLogger('discord');

/** Routes an interaction to its command or button handler. */
export async function onInteraction(interaction: Interaction, ctx: DiscordContext): Promise<void> {
  try {
    if (interaction.isChatInputCommand()) {
      const command = commands.get(interaction.commandName);
      if (!command) {
        await interaction.reply({ content: 'I do not know that command any more; an admin may need to run `register-commands`.', flags: 64 });
        return;
      }
      log.debug({ command: interaction.commandName, userId: interaction.user.id, guildId: interaction.guildId }, 'command');
      await command.execute(interaction, ctx);
    } else if (interaction.isButton()) {
      if (!(await handleGenerationButton(interaction, ctx))) log.debug({ customId: interaction.customId }, 'unknown button');
    }
  } catch (err) {
    if (interaction.isRepliable()) await replyWithError(interaction, err);
    else log.error({ err: safeError(err) }, 'interaction failed');
  }
}

/** The reaction as stored: the unicode emoji, or `name:id` for a custom one. */
export function reactionName(reaction: MessageReaction | PartialMessageReaction): string {
  const e = reaction.emoji;
  return e.id ? `${e.name ?? 'emoji'}:${e.id}` : (e.name ?? '?');
}

/**
 * Records a reaction added or removed on any message (works for uncached messages through partials). Never
 * rejects: a failure (the database is down) is logged.
 */
export async function onReaction(client: Client, ctx: DiscordContext, reaction: MessageReaction | PartialMessageReaction, user: User | PartialUser, added: boolean): Promise<void> {
  if (user.id === client.user?.id) return;
  try {
    await ctx.core.recordReaction({ platform: 'discord', messageRef: reaction.message.id, userId: user.id, reaction: reactionName(reaction), added });
  } catch (err) {
    log.error({ err: safeError(err) }, 'could not record a reaction');
  }
}

/** Attaches the listeners to a client. */
export function attachListeners(client: Client, ctx: DiscordContext): void {
  client.on(Events.InteractionCreate, (interaction) => { void onInteraction(interaction, ctx); });
  client.on(Events.MessageReactionAdd, (reaction, user) => { void onReaction(client, ctx, reaction, user, true); });
  client.on(Events.MessageReactionRemove, (reaction, user) => { void onReaction(client, ctx, reaction, user, false); });
  client.on(Events.Error, (err) => log.error({ err: safeError(err) }, 'discord client error'));
  client.on(Events.ShardDisconnect, (event, shardId) => log.warn({ code: event.code, shardId }, 'gateway disconnected'));
}
