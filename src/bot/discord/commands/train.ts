/** `/train start preset:<name> [epochs] [dataset]`, `/train status`, `/train stop` (admins only). */
import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder, type ChatInputCommandInteraction } from 'discord.js';
import { actorOf, type DiscordContext } from '../context.js';
import { replyWithError } from '../replies.js';
import { channelProgressSink } from '../progress-sink.js';

export const data = new SlashCommandBuilder()
  .setName('train')
  .setDescription('Start, watch or stop a training run (bot admins)')
  // Hidden from members without Manage Server (server admins can grant it per role in Integrations);
  // the core still checks every call (AdminPolicy).
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
  .addSubcommand((s) => s.setName('start').setDescription('Start a training run')
    .addStringOption((o) => o.setName('preset').setDescription('Model preset, e.g. 64-image').setRequired(true).setMaxLength(64))
    .addIntegerOption((o) => o.setName('epochs').setDescription('Number of epochs').setMinValue(1).setMaxValue(1000))
    .addStringOption((o) => o.setName('dataset').setDescription('Dataset name under the data dir').setMaxLength(64)))
  .addSubcommand((s) => s.setName('status').setDescription('Show the current run'))
  .addSubcommand((s) => s.setName('stop').setDescription('Stop the current run (saves a checkpoint first)'));

/** Handles /train; replies are private, progress goes to the channel. */
export async function execute(interaction: ChatInputCommandInteraction, { core }: DiscordContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  try {
    const actor = actorOf(interaction);
    const sub = interaction.options.getSubcommand(true);
    let text: string;
    if (sub === 'start') {
      const sink = channelProgressSink(interaction.client, interaction.channelId);
      text = await core.trainStart(actor, {
        preset: interaction.options.getString('preset', true),
        epochs: interaction.options.getInteger('epochs') ?? undefined,
        dataset: interaction.options.getString('dataset') ?? undefined,
      }, sink);
    } else if (sub === 'status') {
      text = await core.trainStatus(actor);
    } else {
      text = await core.trainStop(actor);
    }
    await interaction.editReply({ content: text, allowedMentions: { parse: [] } });
  } catch (err) {
    await replyWithError(interaction, err);
  }
}
