/** One Discord slash command: its definition (registered with `register-commands`) and its handler. */
import type { ChatInputCommandInteraction, SlashCommandOptionsOnlyBuilder, SlashCommandSubcommandsOnlyBuilder } from 'discord.js';
import type { DiscordContext } from '../context.js';

export interface SlashCommand {
  data: SlashCommandOptionsOnlyBuilder | SlashCommandSubcommandsOnlyBuilder;
  execute(interaction: ChatInputCommandInteraction, ctx: DiscordContext): Promise<void>;
}
