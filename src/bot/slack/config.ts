import { UserError } from '../../errors.js';
import type { BotConfig } from '../../config/env.js';
import type { ShareLookupOptions } from './publish.js';

/** Settings of the Slack adapter (from SLACK_* environment variables; see src/config/env.ts). */
export interface SlackConfig {
  /** SLACK_BOT_TOKEN (xoxb-...). */
  botToken: string;
  /** SLACK_SIGNING_SECRET: verifies that HTTP requests come from Slack. Not used in Socket Mode. */
  signingSecret: string;
  /** SLACK_APP_TOKEN (xapp-...): when set, the app connects with Socket Mode and opens no port. */
  appToken?: string;
  /** SLACK_PORT: where the HTTP receiver listens without Socket Mode (default 3000; 0 = any free port). */
  port?: number;
  /** Interface the HTTP receiver binds to (default: all). */
  host?: string;
  /** SLACK_API_URL: Web API base for Bolt's client (default https://slack.com/api/). */
  apiUrl?: string;
  /** Retries of a failed Web API call (default 2; tests use 0). */
  apiRetries?: number;
  /** How long to poll files.info for the message of a file share. */
  shareLookup?: ShareLookupOptions;
}

/** The request URL path of the HTTP receiver: slash commands, interactivity and events all go here. */
export const SLACK_EVENTS_PATH = '/slack/events';

/**
 * The Slack adapter's settings from the validated bot configuration (src/config/env.ts): SLACK_BOT_TOKEN,
 * SLACK_SIGNING_SECRET, SLACK_APP_TOKEN (Socket Mode), SLACK_PORT, SLACK_API_URL.
 * Throws a UserError when Slack is not configured.
 */
export function slackConfigFrom(cfg: Pick<BotConfig, 'SLACK_BOT_TOKEN' | 'SLACK_SIGNING_SECRET' | 'SLACK_APP_TOKEN' | 'SLACK_PORT' | 'SLACK_API_URL'>): SlackConfig {
  if (!cfg.SLACK_BOT_TOKEN || !cfg.SLACK_SIGNING_SECRET) {
    throw new UserError('Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (see the README, "Creating the Slack app").');
  }
  const config: SlackConfig = { botToken: cfg.SLACK_BOT_TOKEN, signingSecret: cfg.SLACK_SIGNING_SECRET, port: cfg.SLACK_PORT };
  if (cfg.SLACK_APP_TOKEN) config.appToken = cfg.SLACK_APP_TOKEN;
  if (cfg.SLACK_API_URL) config.apiUrl = cfg.SLACK_API_URL;
  return config;
}
