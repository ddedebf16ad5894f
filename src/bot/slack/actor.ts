import type { Actor } from '../core/types.js';

/** The core's Actor for a Slack user in a channel of a workspace (team). */
export function slackActor(teamId: string | undefined, channelId: string | undefined, userId: string): Actor {
  return { platform: 'slack', workspaceId: teamId ?? '', channelId: channelId ?? '', userId };
}

/** messageRef of a Slack message as the core stores it: `channel:ts`. */
export function slackMessageRef(channel: string, ts: string): string {
  return `${channel}:${ts}`;
}
