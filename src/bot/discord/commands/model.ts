/** `/model list`, `/model use name:<name>`, `/model publish name:<name>`, `/model unpublish name:<name>` (admins only). */
import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder, type ChatInputCommandInteraction } from 'discord.js';
import { actorOf, type DiscordContext } from '../context.js';
import { replyWithError } from '../replies.js';
import { runModelCommand } from '../../core/command-text.js';

export const data = new SlashCommandBuilder()
  .setName('model')
  .setDescription('List models or switch the served one (bot admins)')
  // Hidden from members without Manage Server (server admins can grant it per role in Integrations);
  // the core still checks every call (AdminPolicy).
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
  .addSubcommand((s) => s.setName('list').setDescription('List registered models'))
  .addSubcommand((s) => s.setName('use').setDescription('Serve another model without a restart')
    .addStringOption((o) => o.setName('name').setDescription('Model name from /model list').setRequired(true).setMaxLength(64)))
  .addSubcommand((s) => s.setName('publish').setDescription('Let everyone pick a model with /imagine model:')
    .addStringOption((o) => o.setName('name').setDescription('Model name from /model list').setRequired(true).setMaxLength(64)))
  .addSubcommand((s) => s.setName('unpublish').setDescription('Only admins may pick the model again')
    .addStringOption((o) => o.setName('name').setDescription('Model name from /model list').setRequired(true).setMaxLength(64)));

/** Handles /model; replies are private. */
export async function execute(interaction: ChatInputCommandInteraction, { core }: DiscordContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  try {
    const actor = actorOf(interaction);
    const sub = interaction.options.getSubcommand(true);
    const text = await runModelCommand(core, actor, sub === 'list'
      ? { verb: 'list' }
      : { verb: sub === 'publish' || sub === 'unpublish' ? sub : 'use', name: interaction.options.getString('name', true) });
    await interaction.editReply({ content: text, allowedMentions: { parse: [] } });
  } catch (err) {
    await replyWithError(interaction, err);
  }
}
