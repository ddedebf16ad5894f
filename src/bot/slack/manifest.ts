/**
 * The Slack app manifest of this bot: paste it at https://api.slack.com/apps → Create New App → From a manifest
 * to get the slash commands, scopes, event subscriptions and interactivity set up in one step.
 */
import { SLACK_EVENTS_PATH } from './config.js';
import { SLASH_COMMANDS } from './listeners/commands/index.js';

/** Bot token scopes the adapter needs. `files:read` lets it find the message of an uploaded grid (files.info). */
export const SLACK_BOT_SCOPES = ['commands', 'chat:write', 'files:write', 'files:read', 'reactions:read'] as const;

/** Events the adapter subscribes to. */
export const SLACK_BOT_EVENTS = ['reaction_added', 'reaction_removed'] as const;

export interface ManifestOptions {
  /** Public base URL of the bot's HTTP receiver, e.g. https://bot.example.com (omit for Socket Mode). */
  baseUrl?: string;
  /** App name shown in Slack (default "CVAE Imagine"). */
  name?: string;
}

/**
 * The app manifest (JSON). With `baseUrl` the slash commands, events and interactivity point at
 * `<baseUrl>/slack/events` (HTTP mode, SLACK_PORT); without it Socket Mode is enabled and no URL is needed.
 */
export function slackAppManifest(opts: ManifestOptions = {}): Record<string, unknown> {
  const name = opts.name ?? 'CVAE Imagine';
  const requestUrl = opts.baseUrl ? `${opts.baseUrl.replace(/\/+$/, '')}${SLACK_EVENTS_PATH}` : undefined;
  const withUrl = <T extends object>(o: T) => (requestUrl ? { ...o, url: requestUrl } : o);
  return {
    display_information: {
      name,
      description: 'Pictures from a CLIP-conditioned VAE: /imagine a prompt, react to rate them.',
      background_color: '#2f5d1e',
    },
    features: {
      bot_user: { display_name: name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').slice(0, 80), always_online: true },
      slash_commands: [
        withUrl({ command: SLASH_COMMANDS.imagine, description: 'Draw pictures from a text prompt', usage_hint: 'sheep on a green hill --count 4 --seed 7 --model NAME', should_escape: true }),
        withUrl({ command: SLASH_COMMANDS.train, description: 'Admins: start, watch or stop a training run', usage_hint: 'start preset:64-image epochs:25 | status | stop', should_escape: false }),
        withUrl({ command: SLASH_COMMANDS.model, description: 'Admins: list the models or switch the served one', usage_hint: 'list | use NAME | publish NAME | unpublish NAME', should_escape: false }),
      ],
    },
    oauth_config: { scopes: { bot: [...SLACK_BOT_SCOPES] } },
    settings: {
      event_subscriptions: { ...(requestUrl ? { request_url: requestUrl } : {}), bot_events: [...SLACK_BOT_EVENTS] },
      interactivity: { is_enabled: true, ...(requestUrl ? { request_url: requestUrl } : {}) },
      org_deploy_enabled: false,
      socket_mode_enabled: !requestUrl,
      token_rotation_enabled: false,
    },
  };
}
