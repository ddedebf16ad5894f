/**
 * `slack-manifest [--url BASE]`: prints the Slack app manifest (JSON) to paste into Slack's "Create New App →
 * From a manifest". With --url the requests go to BASE/slack/events (HTTP receiver on SLACK_PORT); without it
 * the app uses Socket Mode (then create an app-level token with connections:write for SLACK_APP_TOKEN).
 */
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { slackAppManifest } from '../../bot/slack/manifest.js';

/** Builds the manifest text; `url` must be an http(s) URL when given. */
export function slackManifestText(opts: { url?: string; name?: string }): string {
  if (opts.url !== undefined && !/^https?:\/\/[^\s/]+/.test(opts.url)) {
    throw new UserError('--url must be the public base URL of the bot, like https://bot.example.com');
  }
  return `${JSON.stringify(slackAppManifest({ baseUrl: opts.url, name: opts.name }), null, 2)}\n`;
}

/** Adds `slack-manifest`. */
export function register(program: Command): void {
  program
    .command('slack-manifest')
    .description('print the Slack app manifest (slash commands, scopes, events, interactivity) to create the app from')
    .option('--url <base>', 'public base URL of the HTTP receiver (omit for Socket Mode)')
    .option('--name <name>', 'app name shown in Slack', 'CVAE Imagine')
    .action((opts: { url?: string; name?: string }) => { process.stdout.write(slackManifestText(opts)); });
}
