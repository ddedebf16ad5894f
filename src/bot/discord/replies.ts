/** Rendering core results as Discord messages, and showing errors to the user. */
import { AttachmentBuilder, MessageFlags, type InteractionEditReplyOptions, type RepliableInteraction } from 'discord.js';
import { childLogger } from '../../log.js';
import { safeError } from './log-safe.js';
import { userMessageOf, isUserError } from '../core/errors.js';
import type { ImagineHooks, ImagineReply } from '../core/types.js';
import { cancelButtonRow, generationButtons } from './components.js';
import type { JobReceipt } from '../core/jobs-types.js';
import { queuedText } from '../core/job-receipt-text.js';

const log = childLogger('discord');

/** Message payload for a generation: text, grid PNG, buttons; never pings anyone. */
export function generationMessage(reply: ImagineReply): InteractionEditReplyOptions {
  return {
    // Says who asked with a mention that pings nobody (allowedMentions below).
    content: `${reply.text} · asked by <@${reply.userId}>`,
    files: [new AttachmentBuilder(reply.grid, { name: `cvae-${reply.generationId}.png`, description: reply.prompt.slice(0, 1000) })],
    components: generationButtons(reply.generationId, reply.images.length),
    allowedMentions: { parse: [] },
  };
}

/**
 * Scaled mode: below this predicted wait the "Queued" notice is not shown. A worker may finish a short job and
 * edit the reply with the images before the notice's edit lands, and Discord keeps the last edit: the notice
 * would hide the images. The "thinking…" placeholder stays instead.
 */
export const QUEUED_NOTICE_MIN_WAIT_S = 2;

/** The "Queued" notice with its Cancel button, or null when it is not worth the race (short wait, a duplicate). */
export function queuedNotice(receipt: JobReceipt, minWaitS = QUEUED_NOTICE_MIN_WAIT_S): { content: string; components: ReturnType<typeof cancelButtonRow>[]; allowedMentions: { parse: [] } } | null {
  if (receipt.duplicate || receipt.predictedWaitS < minWaitS) return null;
  return { content: queuedText(receipt), components: [cancelButtonRow(receipt.requestId)], allowedMentions: { parse: [] } };
}

/** Hooks that show the queue position in the deferred reply while a generation waits. */
export function queuePositionHooks(interaction: RepliableInteraction): ImagineHooks {
  return {
    onQueued: async (position) => {
      await interaction.editReply({ content: `Queued, position ${position}. Your images are coming…`, allowedMentions: { parse: [] } });
    },
  };
}

/**
 * Shows an error to the user: the UserError's message (ephemeral where possible) or a generic apology.
 * `publicDeferred`: the interaction was deferred visibly, so the placeholder is removed and the message sent privately.
 */
export async function replyWithError(interaction: RepliableInteraction, err: unknown, opts: { publicDeferred?: boolean } = {}): Promise<void> {
  if (!isUserError(err)) log.error({ err: safeError(err), interactionId: interaction.id }, 'interaction failed');
  const content = userMessageOf(err);
  try {
    if (interaction.deferred || interaction.replied) {
      if (opts.publicDeferred) {
        await interaction.deleteReply().catch(() => undefined);
        await interaction.followUp({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
      } else {
        await interaction.editReply({ content, files: [], components: [], allowedMentions: { parse: [] } });
      }
    } else {
      await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    }
  } catch (replyErr) {
    log.warn({ err: safeError(replyErr), interactionId: interaction.id }, 'could not show the error to the user');
  }
}
