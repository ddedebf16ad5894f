/**
 * The Slack side of scaled mode: a generation worker posts a finished job into its Slack channel (or thread)
 * with the Web API and the bot token, the way the adapter does in-process ({@link publishGeneration}: the grid
 * as a file share, then the buttons), and reports the messages that show it so the worker can record them.
 */
import { webApi } from '@slack/bolt';
import { childLogger } from '../../log.js';
import type { DeliveredMessage, ReplyDelivery, ReplyTarget } from '../core/jobs-types.js';
import type { ImagineReply } from '../core/types.js';
import { boltLogger } from './bolt-logger.js';
import { explainSlackError, publishGeneration, type ShareLookupOptions } from './publish.js';

const log = childLogger('slack-job-delivery');

export interface SlackJobDeliveryOptions {
  /** SLACK_BOT_TOKEN (xoxb-...). */
  botToken: string;
  /** SLACK_API_URL: Web API base (default https://slack.com/api/). */
  apiUrl?: string;
  /** Retries of a failed Web API call (default 2; tests use 0). */
  apiRetries?: number;
  /** How long to poll files.info for the message of a file share. */
  shareLookup?: ShareLookupOptions;
}

type SlackTarget = Extract<ReplyTarget, { platform: 'slack' }>;

function slackTarget(target: ReplyTarget): SlackTarget {
  if (target.platform !== 'slack') throw new Error(`the Slack delivery got a ${target.platform} reply target`);
  return target;
}

/** A {@link ReplyDelivery} that posts to Slack through the Web API. */
export function createSlackJobDelivery(opts: SlackJobDeliveryOptions): ReplyDelivery {
  const client = new webApi.WebClient(opts.botToken, {
    ...(opts.apiUrl ? { slackApiUrl: opts.apiUrl } : {}),
    retryConfig: { retries: opts.apiRetries ?? 2 },
    logger: boltLogger(),
    // A request error would otherwise carry the axios error, whose config holds the bot token: keep it out of logs.
    attachOriginalToWebAPIRequestError: false,
  });

  return {
    async deliver(target: ReplyTarget, reply: ImagineReply, posted?: () => Promise<void>): Promise<DeliveredMessage[]> {
      const { channelId, threadTs } = slackTarget(target);
      const delivered: DeliveredMessage[] = [];
      // publishGeneration reports the file share message (what reactions attach to) through attachMessage.
      const collector = {
        async attachMessage(_generationId: string, messageRef: string, imageIndex?: number): Promise<void> {
          delivered.push(imageIndex === undefined ? { messageRef } : { messageRef, imageIndex });
        },
      };
      await publishGeneration(client, collector, channelId, reply, { ...opts.shareLookup, threadTs, onUploaded: posted });
      return delivered;
    },

    async apologise(target: ReplyTarget, text: string): Promise<void> {
      const { channelId, threadTs } = slackTarget(target);
      try {
        await client.chat.postMessage({ channel: channelId, text, ...(threadTs ? { thread_ts: threadTs } : {}) });
      } catch (err) {
        throw explainSlackError(err);
      }
      log.info({ channel: channelId }, 'apology posted');
    },
  };
}
