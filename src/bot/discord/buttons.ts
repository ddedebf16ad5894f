/** Button presses under a generation: Reroll, Variations, one image alone. */
import { AttachmentBuilder, type ButtonInteraction } from 'discord.js';
import { actorOf, type DiscordContext } from './context.js';
import { decodeCustomId } from './components.js';
import { generationMessage, queuePositionHooks, replyWithError } from './replies.js';

/** True if this module handled the button. */
export async function handleGenerationButton(interaction: ButtonInteraction, { core }: DiscordContext): Promise<boolean> {
  const button = decodeCustomId(interaction.customId);
  if (!button) return false;
  await interaction.deferReply();
  try {
    if (button.action === 'image') {
      const { png, text } = await core.singleImage(button.generationId, button.index);
      const message = await interaction.editReply({
        content: text, files: [new AttachmentBuilder(png, { name: `cvae-${button.generationId}-${button.index + 1}.png` })],
        allowedMentions: { parse: [] },
      });
      await core.attachMessage(button.generationId, message.id, button.index);
    } else {
      const actor = actorOf(interaction);
      const reply = button.action === 'reroll'
        ? await core.reroll(actor, button.generationId, queuePositionHooks(interaction))
        : await core.variations(actor, button.generationId, queuePositionHooks(interaction));
      const message = await interaction.editReply(generationMessage(reply));
      await core.attachMessage(reply.generationId, message.id);
    }
  } catch (err) {
    await replyWithError(interaction, err, { publicDeferred: true });
  }
  return true;
}
