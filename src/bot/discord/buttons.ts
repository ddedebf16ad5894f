/** Button presses under a generation: Reroll, Variations, one image alone. */
import { AttachmentBuilder, MessageFlags, type ButtonInteraction } from 'discord.js';
import { UserError, userMessageOf } from '../core/errors.js';
import { actorOf, jobTargetOf, type DiscordContext } from './context.js';
import { decodeCancelCustomId, decodeCustomId } from './components.js';
import { generationMessage, queuedNotice, queuePositionHooks, replyWithError } from './replies.js';

/** Cancel on a "Queued" notice (scaled mode): the notice becomes the outcome; a refusal goes privately to who clicked. */
async function handleCancel(interaction: ButtonInteraction, { core }: DiscordContext, requestId: string): Promise<void> {
  await interaction.deferUpdate();
  try {
    if (!core.jobs) throw new UserError('There is nothing to cancel: this bot does not queue jobs.');
    const text = await core.jobs.cancel(actorOf(interaction), requestId);
    await interaction.editReply({ content: text, components: [], allowedMentions: { parse: [] } });
  } catch (err) {
    await interaction.followUp({ content: userMessageOf(err), flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } }).catch(() => undefined);
  }
}

/** True if this module handled the button. */
export async function handleGenerationButton(interaction: ButtonInteraction, ctx: DiscordContext): Promise<boolean> {
  const { core } = ctx;
  const cancelId = decodeCancelCustomId(interaction.customId);
  if (cancelId) {
    await handleCancel(interaction, ctx, cancelId);
    return true;
  }
  const button = decodeCustomId(interaction.customId);
  if (!button) return false;
  await interaction.deferReply();
  try {
    if (button.action !== 'image' && core.jobs) {
      // Scaled mode: a job keyed by the click (a double click is one interaction id), delivered by a worker.
      const receipt = await core.jobs.submit(actorOf(interaction), { kind: button.action === 'reroll' ? 'reroll' : 'variations', generationId: button.generationId },
        jobTargetOf(interaction), `discord:${interaction.id}`);
      const notice = queuedNotice(receipt);
      if (notice) await interaction.editReply(notice);
      return true;
    }
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
