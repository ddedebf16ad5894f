import type { AllMiddlewareArgs, BlockButtonAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import { childLogger } from '../../../../log.js';
import { UserError } from '../../../../errors.js';
import type { BotCore } from '../../../core/types.js';
import { slackActor, slackMessageRef } from '../../actor.js';
import { escapeMrkdwn, parseImageActionValue, queuedNotice, slackText } from '../../blocks.js';
import { explainSlackError, findShareTs, publishGeneration, uploadPng, type ShareLookupOptions } from '../../publish.js';
import { queuePositionHooks } from '../../queue-notice.js';
import { respondWithError } from '../../respond-error.js';

const log = childLogger('slack-buttons');

/** What the button handlers use of Bolt's listener arguments (tests pass fakes). */
export type ButtonArgs = Pick<SlackActionMiddlewareArgs<BlockButtonAction>, 'ack' | 'body' | 'action' | 'respond'> & Pick<AllMiddlewareArgs, 'client'>;

function actorOf(body: BlockButtonAction) {
  return slackActor(body.team?.id ?? body.user.team_id, body.channel?.id ?? body.container?.channel_id, body.user.id);
}

function channelOf(body: BlockButtonAction): string {
  const channel = body.channel?.id ?? (body.container?.channel_id as string | undefined);
  if (!channel) throw new UserError('I cannot tell which channel this button is in. Please run /imagine again.');
  return channel;
}

/**
 * Reroll (same prompt, new seeds) or Variations (same seed neighbourhood): a new grid in the channel. In scaled
 * mode a job keyed by the click's trigger id (a double click makes one job) and a private "queued" notice.
 */
export function regenerateButton(core: BotCore, kind: 'reroll' | 'variations', opts: ShareLookupOptions = {}) {
  return async function handleRegenerate({ ack, body, action, respond, client }: ButtonArgs): Promise<void> {
    await ack();
    try {
      const channel = channelOf(body);
      const actor = actorOf(body);
      if (core.jobs) {
        const receipt = await core.jobs.submit(actor, { kind, generationId: action.value ?? '' }, { platform: 'slack', channelId: channel },
          `slack:${body.trigger_id}:${kind}`);
        await respond({ ...queuedNotice(receipt), replace_original: false });
        return;
      }
      const hooks = queuePositionHooks(respond, log);
      const reply = kind === 'reroll' ? await core.reroll(actor, action.value ?? '', hooks) : await core.variations(actor, action.value ?? '', hooks);
      await publishGeneration(client, core, channel, reply, opts);
    } catch (err) {
      await respondWithError(respond, err, log, kind);
    }
  };
}

/**
 * One image of a grid alone at full display size, posted in the thread of the buttons message. The post is
 * attached to the generation with the image's index, so reactions on it count for that image.
 */
export function singleImageButton(core: BotCore, opts: ShareLookupOptions = {}) {
  return async function handleSingleImage({ ack, body, action, respond, client }: ButtonArgs): Promise<void> {
    await ack();
    try {
      const target = parseImageActionValue(action.value ?? '');
      if (!target) throw new UserError('This button is broken; please run /imagine again.');
      const channel = channelOf(body);
      const { png, text } = await core.singleImage(target.generationId, target.index);
      const threadTs = (body.message?.thread_ts as string | undefined) ?? body.message?.ts;
      const fileId = await uploadPng(client, {
        channel,
        png,
        filename: `cvae-${target.generationId}-${target.index + 1}.png`,
        title: `Image ${target.index + 1}`,
        comment: escapeMrkdwn(text),
        altText: text.slice(0, 1000),
        threadTs,
      }).catch((err: unknown) => { throw explainSlackError(err); });
      const ts = await findShareTs(client, fileId, channel, opts);
      if (ts) await core.attachMessage(target.generationId, slackMessageRef(channel, ts), target.index);
      log.info({ generationId: target.generationId, index: target.index, channel, fileId }, 'single image posted');
    } catch (err) {
      await respondWithError(respond, err, log, 'single image');
    }
  };
}

/** Cancel on a "queued" notice (scaled mode): withdraws the job if no worker has started it. */
export function cancelButton(core: BotCore) {
  return async function handleCancel({ ack, body, action, respond }: ButtonArgs): Promise<void> {
    await ack();
    try {
      if (!core.jobs) throw new UserError('There is nothing to cancel: this bot does not queue jobs.');
      const text = await core.jobs.cancel(actorOf(body), action.value ?? '');
      await respond({ response_type: 'ephemeral', replace_original: true, text: slackText(text) });
    } catch (err) {
      await respondWithError(respond, err, log, 'cancel');
    }
  };
}
