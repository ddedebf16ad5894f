/**
 * Training progress in a Discord channel: one status message (sent with the bot token, so it outlives the
 * 15-minute interaction token) that is edited on each update, plus image posts.
 */
import { AttachmentBuilder, type Client, type Message, type SendableChannels } from 'discord.js';
import { formatTrainingProgress, trainingImageCaption, trainingImageName, type TrainingImage, type TrainingProgress } from '../core/training-progress.js';
import type { TrainingProgressSink } from '../core/types.js';

/** A sink that posts to channel `channelId`. */
export function channelProgressSink(client: Client, channelId: string): TrainingProgressSink {
  let status: Message | null = null;
  let sendable: SendableChannels | null = null;
  async function channel(): Promise<SendableChannels> {
    if (sendable) return sendable;
    // allowUnknownGuild: a REST-only client (HTTP interactions) has no guilds cached.
    const c = client.channels.cache.get(channelId) ?? (await client.channels.fetch(channelId, { allowUnknownGuild: true }));
    if (!c || !c.isSendable()) throw new Error(`channel ${channelId} is not a text channel the bot can post in`);
    sendable = c;
    return c;
  }
  return {
    async update(progress: TrainingProgress) {
      const text = formatTrainingProgress(progress);
      // Edited through the channel held here: a REST-only client does not cache the channel for Message.edit.
      if (status) status = await (await channel()).messages.edit(status.id, { content: text, allowedMentions: { parse: [] } });
      else status = await (await channel()).send({ content: text, allowedMentions: { parse: [] } });
    },
    async image(image: TrainingImage) {
      const files = [new AttachmentBuilder(image.png, { name: trainingImageName(image) })];
      await (await channel()).send({ content: trainingImageCaption(image), files, allowedMentions: { parse: [] } });
    },
  };
}
