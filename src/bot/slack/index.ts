/**
 * The Slack adapter: a thin Bolt app over the platform-neutral bot core.
 * `startSlack(core, config)` builds it, checks the token (auth.test) and starts listening.
 */
import type { AddressInfo } from 'node:net';
import { SocketModeReceiver, type App } from '@slack/bolt';
import type { BotConfig } from '../../config/env.js';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import type { BotCore } from '../core/types.js';
import { buildSlackApp } from './app.js';
import { SLACK_EVENTS_PATH, slackConfigFrom, type SlackConfig } from './config.js';

export type { SlackConfig } from './config.js';
export { SLACK_EVENTS_PATH, slackConfigFrom } from './config.js';
export { slackAppManifest, SLACK_BOT_SCOPES, SLACK_BOT_EVENTS } from './manifest.js';

const log = childLogger('slack');

/** A running Slack adapter. */
export interface SlackHandle {
  app: App;
  /** Port of the HTTP receiver (undefined in Socket Mode). */
  port?: number;
  /** Full URL of the request endpoint on this host (HTTP mode), e.g. http://127.0.0.1:3000/slack/events. */
  url?: string;
  /** For health checks: listening (HTTP) or connected (Socket Mode), with the reason when not. */
  status(): { ok: boolean; mode: 'http' | 'socket'; reason?: string };
  stop(): Promise<void>;
}

/**
 * Start the Slack adapter: checks the bot token with auth.test (a clear UserError when Slack refuses it), then
 * connects with Socket Mode (SLACK_APP_TOKEN) or listens for HTTP requests on `config.port`.
 * `settings` is the adapter's SlackConfig or the whole validated BotConfig (src/config/env.ts).
 */
export async function startSlack(core: BotCore, settings: SlackConfig | BotConfig): Promise<SlackHandle> {
  const config = 'SLACK_PORT' in settings ? slackConfigFrom(settings) : settings;
  const { app, receiver } = buildSlackApp(core, config);
  try {
    await app.init();
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error;
    throw new UserError(
      `Slack refused the bot token (${code ?? (err as Error).message}). Check SLACK_BOT_TOKEN` +
        `${config.apiUrl ? ` and SLACK_API_URL (${config.apiUrl})` : ''}.`,
      { cause: err },
    );
  }
  if (receiver instanceof SocketModeReceiver) {
    let state = 'connecting';
    for (const s of ['connecting', 'connected', 'reconnecting', 'disconnecting', 'disconnected']) {
      receiver.client.on(s, () => {
        state = s;
        if (s !== 'connected') log.info({ state: s }, 'Slack Socket Mode connection');
      });
    }
    await app.start();
    state = 'connected';
    log.info('Slack adapter connected with Socket Mode');
    return {
      app,
      status: () => (state === 'connected' ? { ok: true, mode: 'socket' } : { ok: false, mode: 'socket', reason: `Socket Mode ${state}` }),
      stop: () => app.stop().then(() => undefined),
    };
  }
  const listen = config.host !== undefined ? { port: config.port ?? 3000, host: config.host } : config.port ?? 3000;
  const server = await app.start(listen);
  const port = (server.address() as AddressInfo).port;
  const host = config.host && config.host !== '0.0.0.0' && config.host !== '::' ? config.host : '127.0.0.1';
  log.info({ port }, `Slack adapter listening for requests on ${SLACK_EVENTS_PATH}`);
  return {
    app,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}${SLACK_EVENTS_PATH}`,
    status: () => (server.listening ? { ok: true, mode: 'http' } : { ok: false, mode: 'http', reason: 'HTTP receiver not listening' }),
    stop: async () => {
      server.closeAllConnections();
      await app.stop();
    },
  };
}
