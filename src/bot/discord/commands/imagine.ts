/** `/imagine prompt:<text> [count:1-4] [seed:<int>] [model:<name>]`: defer at once, then the grid with buttons. */
import { SlashCommandBuilder, type ChatInputCommandInteraction } from 'discord.js';
import { MAX_SEED } from '../../../model/latent.js';
import { MAX_PROMPT_LENGTH } from '../../core/prompt.js';
import { actorOf, jobTargetOf, type DiscordContext } from '../context.js';
import { generationMessage, queuedNotice, queuePositionHooks, replyWithError } from '../replies.js';

export const data = new SlashCommandBuilder()
  .setName('imagine')
  .setDescription('Generate images from a text prompt')
  .addStringOption((o) => o.setName('prompt').setDescription('What to draw, e.g. "sheep on a green hill"').setRequired(true).setMaxLength(MAX_PROMPT_LENGTH))
  .addIntegerOption((o) => o.setName('count').setDescription('Number of images (1-4)').setMinValue(1).setMaxValue(4))
  .addIntegerOption((o) => o.setName('seed').setDescription('Seed for reproducible images').setMinValue(0).setMaxValue(MAX_SEED))
  .addStringOption((o) => o.setName('model').setDescription('Model name (default: the served one)').setMaxLength(64));

/**
 * Handles /imagine. In scaled mode (`core.jobs`) it becomes a job keyed by the interaction id, and a worker edits
 * this deferred reply with the images through the interaction's webhook.
 */
export async function execute(interaction: ChatInputCommandInteraction, { core }: DiscordContext): Promise<void> {
  await interaction.deferReply();
  try {
    const options = {
      prompt: interaction.options.getString('prompt', true),
      count: interaction.options.getInteger('count') ?? undefined,
      seed: interaction.options.getInteger('seed') ?? undefined,
      model: interaction.options.getString('model') ?? undefined,
    };
    if (core.jobs) {
      const receipt = await core.jobs.submit(actorOf(interaction), { kind: 'imagine', options }, jobTargetOf(interaction), `discord:${interaction.id}`);
      const notice = queuedNotice(receipt);
      if (notice) await interaction.editReply(notice);
      return;
    }
    const reply = await core.imagine(actorOf(interaction), options, queuePositionHooks(interaction));
    const message = await interaction.editReply(generationMessage(reply));
    await core.attachMessage(reply.generationId, message.id);
  } catch (err) {
    await replyWithError(interaction, err, { publicDeferred: true });
  }
}
