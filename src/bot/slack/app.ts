import { App, HTTPReceiver, SocketModeReceiver } from '@slack/bolt';
import { childLogger } from '../../log.js';
import { GENERIC_APOLOGY } from '../core/errors.js';
import type { BotCore } from '../core/types.js';
import { boltLogger } from './bolt-logger.js';
import { SLACK_EVENTS_PATH, type SlackConfig } from './config.js';
import { limitRequestBodies } from './request-limit.js';
import * as actions from './listeners/actions/index.js';
import * as commands from './listeners/commands/index.js';
import * as events from './listeners/events/index.js';

const log = childLogger('slack');

/** The Bolt app and the receiver it runs on. */
export interface BuiltSlackApp {
  app: App;
  receiver: HTTPReceiver | SocketModeReceiver;
}

/**
 * Build the Bolt app with every listener registered, and the receiver it runs on (for connection state):
 * Socket Mode when `appToken` is set, else the HTTP receiver (requests to `/slack/events`, signatures checked
 * with the signing secret). Initialisation is deferred: call `await app.init()` (it runs auth.test against the
 * Web API) before `app.start()`.
 */
export function buildSlackApp(core: BotCore, config: SlackConfig): BuiltSlackApp {
  const logger = boltLogger();
  const clientOptions = {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    retryConfig: { retries: config.apiRetries ?? 2 },
    // A request error would otherwise carry the axios error, whose config holds the bot token: keep it out of logs.
    attachOriginalToWebAPIRequestError: false,
  };
  const receiver = config.appToken
    ? new SocketModeReceiver({ appToken: config.appToken, logger, installerOptions: { clientOptions } })
    : new HTTPReceiver({ signingSecret: config.signingSecret, endpoints: SLACK_EVENTS_PATH, logger, port: config.port ?? 3000 });
  // Bolt reads a whole body before checking its signature: refuse large ones while reading (413).
  if (receiver instanceof HTTPReceiver) limitRequestBodies(receiver, [SLACK_EVENTS_PATH]);
  const app = new App({
    token: config.botToken,
    receiver,
    socketMode: Boolean(config.appToken),
    logger,
    clientOptions,
    deferInitialization: true,
  });
  commands.register(app, core, config.shareLookup);
  actions.register(app, core, config.shareLookup);
  events.register(app, core);
  app.error(async (err) => {
    log.error({ err }, `unhandled error in a Slack listener (users saw: "${GENERIC_APOLOGY}" or nothing)`);
  });
  return { app, receiver };
}
