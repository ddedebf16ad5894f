/** What every Discord command and listener gets: the core and helpers to turn Discord objects into core types. */
import { PermissionFlagsBits, type Interaction } from 'discord.js';
import type { Actor, BotCore } from '../core/types.js';
import type { ReplyTarget } from '../core/jobs-types.js';

export interface DiscordContext {
  core: BotCore;
}

/** The core's Actor for an interaction; `platformAdmin` is Manage Server in the guild. */
export function actorOf(interaction: Interaction): Actor {
  return {
    platform: 'discord',
    workspaceId: interaction.guildId ?? 'dm',
    channelId: interaction.channelId ?? 'unknown',
    userId: interaction.user.id,
    platformAdmin: interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) ?? false,
  };
}

/** Where a worker delivers the reply to this (deferred) interaction: its webhook, or its channel once the token expired. */
export function jobTargetOf(interaction: Interaction): ReplyTarget {
  return {
    platform: 'discord', applicationId: interaction.applicationId, interactionToken: interaction.token,
    channelId: interaction.channelId ?? 'unknown', receivedAt: interaction.createdTimestamp,
  };
}
