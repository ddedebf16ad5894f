/**
 * Buttons under a generation: Reroll, Variations, and one per image. Custom ids encode the generation id:
 * `gen:reroll:<id>`, `gen:vary:<id>`, `gen:image:<id>:<index>` (Discord allows 100 characters).
 */
import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';

export type GenerationButton =
  | { action: 'reroll'; generationId: string }
  | { action: 'vary'; generationId: string }
  | { action: 'image'; generationId: string; index: number };

/** Encodes a button's custom id. */
export function encodeCustomId(b: GenerationButton): string {
  return b.action === 'image' ? `gen:image:${b.generationId}:${b.index}` : `gen:${b.action}:${b.generationId}`;
}

/** Decodes a custom id made by {@link encodeCustomId}; null for anything else. */
export function decodeCustomId(customId: string): GenerationButton | null {
  const m = /^gen:(reroll|vary|image):([A-Za-z0-9_-]{1,64})(?::(\d{1,2}))?$/.exec(customId);
  if (!m) return null;
  const [, action, generationId, index] = m;
  if (action === 'image') return index === undefined ? null : { action, generationId, index: Number(index) };
  if (index !== undefined) return null;
  return { action: action as 'reroll' | 'vary', generationId };
}

/** The button rows for a generation with `count` images. */
export function generationButtons(generationId: string, count: number): ActionRowBuilder<ButtonBuilder>[] {
  const main = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(encodeCustomId({ action: 'reroll', generationId })).setLabel('Reroll').setEmoji('🎲').setStyle(ButtonStyle.Primary),
    new ButtonBuilder().setCustomId(encodeCustomId({ action: 'vary', generationId })).setLabel('Variations').setEmoji('🌀').setStyle(ButtonStyle.Secondary),
  );
  const images = new ActionRowBuilder<ButtonBuilder>().addComponents(
    Array.from({ length: Math.min(count, 5) }, (_, index) =>
      new ButtonBuilder().setCustomId(encodeCustomId({ action: 'image', generationId, index })).setLabel(`Image ${index + 1}`).setStyle(ButtonStyle.Secondary)),
  );
  return [main, images];
}

/**
 * The Cancel button on a "Queued" notice (scaled mode): `job:cancel:<requestId>`. Request ids are the job
 * queue's (random, URL-safe); anything else is not a cancel button.
 */
export function encodeCancelCustomId(requestId: string): string {
  return `job:cancel:${requestId}`;
}

/** The request id of a Cancel button's custom id, or null. */
export function decodeCancelCustomId(customId: string): string | null {
  return /^job:cancel:([A-Za-z0-9_-]{1,80})$/.exec(customId)?.[1] ?? null;
}

/** The row with the Cancel button for a queued request. */
export function cancelButtonRow(requestId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(encodeCancelCustomId(requestId)).setLabel('Cancel').setStyle(ButtonStyle.Danger),
  );
}
