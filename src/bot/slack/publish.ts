/**
 * Posting generations into Slack: the grid as a file share (files.uploadV2) with the summary as its initial
 * comment, then the buttons as a Block Kit message. The file share message is the one reactions attach to.
 */
import type { webApi } from '@slack/bolt';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';
import type { BotCore, ImagineReply } from '../core/types.js';
import { slackMessageRef } from './actor.js';
import { generationActionBlocks, generationActionText, generationComment } from './blocks.js';

const log = childLogger('slack-publish');

type WebClient = webApi.WebClient;

/** How long to wait for Slack to report a file's share message (sharing is asynchronous). */
export interface ShareLookupOptions {
  /** Delays before each files.info call, in ms. Default 0, 300, 700, 1500, 3000 (about 5.5 s in all). */
  delaysMs?: number[];
}

const DEFAULT_DELAYS = [0, 300, 700, 1500, 3000];

/** Where a generation landed in Slack. */
export interface PublishedGeneration {
  fileId: string;
  /** ts of the file share message (what reactions attach to), when Slack reported it. */
  messageTs?: string;
  /** ts of the message with the buttons. */
  buttonsTs?: string;
}

interface UploadedFile { id?: string }
interface CompletedUpload { files?: UploadedFile[] }

/** Slack error codes that mean the bot cannot post in the channel, with what the user can do about it. */
const CHANNEL_ERRORS: Record<string, string> = {
  not_in_channel: 'I am not a member of this channel. Invite me with `/invite @<bot name>` and try again.',
  channel_not_found: 'I cannot see this channel. Invite me with `/invite @<bot name>`, or use me in a channel I am in.',
  is_archived: 'This channel is archived, so I cannot post here.',
  restricted_action: 'This workspace does not let me post here.',
};

/** The Slack Web API error code of an error thrown by @slack/web-api, if any. */
export function slackErrorCode(err: unknown): string | undefined {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

/** Turn Slack errors a user can fix (bot not in channel, ...) into UserErrors; other errors pass through. */
export function explainSlackError(err: unknown): unknown {
  const code = slackErrorCode(err);
  if (code && CHANNEL_ERRORS[code]) return new UserError(CHANNEL_ERRORS[code], { cause: err });
  return err;
}

/**
 * Upload a PNG into a channel (or a thread) with files.uploadV2 and return the file id.
 * @slack/web-api runs files.getUploadURLExternal, the upload POST and files.completeUploadExternal.
 */
export async function uploadPng(
  client: WebClient,
  args: { channel: string; png: Buffer; filename: string; title: string; comment: string; altText: string; threadTs?: string },
): Promise<string> {
  const common = { file: args.png, filename: args.filename, title: args.title, alt_text: args.altText, initial_comment: args.comment };
  const res = (await (args.threadTs
    ? client.files.uploadV2({ ...common, channel_id: args.channel, thread_ts: args.threadTs })
    : client.files.uploadV2({ ...common, channel_id: args.channel }))) as { files?: CompletedUpload[] };
  const id = res.files?.[0]?.files?.[0]?.id;
  if (!id) throw new Error('files.uploadV2 answered without a file id');
  return id;
}

/**
 * The ts of the message that shares `fileId` in `channel`. files.completeUploadExternal does not report it,
 * and Slack shares the file asynchronously, so this polls files.info for `file.shares.public|private[channel]`.
 * Needs the `files:read` scope. Undefined when Slack has not reported the share in time or files.info fails
 * (the picture is posted all the same; only reactions on it go unrecorded, which is logged).
 */
export async function findShareTs(client: WebClient, fileId: string, channel: string, opts: ShareLookupOptions = {}): Promise<string | undefined> {
  for (const delay of opts.delaysMs ?? DEFAULT_DELAYS) {
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    let info: Awaited<ReturnType<WebClient['files']['info']>>;
    try {
      info = await client.files.info({ file: fileId });
    } catch (err) {
      const code = slackErrorCode(err);
      log.error({ fileId, channel, code: code ?? (err as Error).message },
        code === 'missing_scope'
          ? 'files.info needs the files:read scope: add it to the Slack app, or reactions on generated images are not recorded'
          : 'files.info failed; reactions on this image will not be recorded');
      return undefined;
    }
    const shares = info.file?.shares;
    const share = shares?.public?.[channel]?.[0] ?? shares?.private?.[channel]?.[0];
    if (share?.ts) return share.ts;
  }
  log.warn({ fileId, channel }, 'Slack did not report the share message of an upload in time; reactions on it will not be recorded');
  return undefined;
}

/**
 * Post a generation: upload the grid with the summary (prompt, seeds, model) as the file's comment, record the
 * share message with core.attachMessage (`channel:ts`, so reactions on it count), then post the buttons.
 */
export async function publishGeneration(
  client: WebClient,
  core: Pick<BotCore, 'attachMessage'>,
  channel: string,
  reply: ImagineReply,
  opts: ShareLookupOptions & { threadTs?: string; onUploaded?: () => Promise<void> } = {},
): Promise<PublishedGeneration> {
  try {
    const fileId = await uploadPng(client, {
      channel,
      png: reply.grid,
      filename: `cvae-${reply.generationId}.png`,
      title: reply.prompt.slice(0, 200),
      comment: generationComment(reply),
      altText: `Generated from the prompt: ${reply.prompt}`.slice(0, 1000),
      threadTs: opts.threadTs,
    });
    await opts.onUploaded?.();
    const messageTs = await findShareTs(client, fileId, channel, opts);
    if (messageTs) await core.attachMessage(reply.generationId, slackMessageRef(channel, messageTs));
    const posted = await client.chat.postMessage({
      channel,
      text: generationActionText(reply),
      blocks: generationActionBlocks(reply),
      ...(opts.threadTs ? { thread_ts: opts.threadTs } : {}),
    });
    log.info({ generationId: reply.generationId, channel, fileId, messageTs }, 'generation posted');
    return { fileId, messageTs, buttonsTs: posted.ts };
  } catch (err) {
    throw explainSlackError(err);
  }
}
