/**
 * Block Kit builders for the Slack adapter: pure functions from core replies to Slack message payloads.
 */
import type { types } from '@slack/bolt';

type ActionsBlock = types.ActionsBlock;
type Button = types.Button;
type KnownBlock = types.KnownBlock;
type SectionBlock = types.SectionBlock;
import type { ImagineReply } from '../core/types.js';
import type { JobReceipt } from '../core/jobs-types.js';
import { queuedText } from '../core/job-receipt-text.js';

/** action_id of the Reroll button (value: generation id). */
export const REROLL_ACTION = 'imagine_reroll';
/** action_id of the Variations button (value: generation id). */
export const VARIATIONS_ACTION = 'imagine_variations';
/** action_id prefix of the per-image buttons: `imagine_image_<index>` (value: `<generation id>:<index>`). */
export const IMAGE_ACTION_PREFIX = 'imagine_image_';
/** Matches every per-image button's action_id. */
export const IMAGE_ACTION_PATTERN = /^imagine_image_\d+$/;
/** action_id of the Cancel button on a "queued" notice in scaled mode (value: the job's request id). */
export const CANCEL_ACTION = 'imagine_cancel';
/** block_id of the actions block under a generation. */
export const IMAGINE_ACTIONS_BLOCK = 'imagine_actions';

/**
 * THE escape for user text in anything Slack renders (message text, fallback text, file comments, block
 * texts): `&`, `<` and `>` become entities, so `<!subteam^S0123|@oncall>`, `<!here>`, `<@U123>` and
 * `<https://evil.example|click here>` show as text instead of pinging people or hiding a link. Escape once, at
 * the point of posting; text from the core is plain (Slack's own escaping is undone when commands are parsed).
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `<@U123>` for a Slack user id, or '' for anything that is not one (never a way to inject markup). */
export function slackUserMention(userId: string | undefined): string {
  return userId && /^[UW][A-Z0-9]{2,20}$/.test(userId) ? `<@${userId}>` : '';
}

/**
 * Text from the core for Slack: mrkdwn-escaped, and the core's platform-neutral command names (`/train`,
 * `/model`) spelled as this app's slash commands (`/cvae-train`, `/cvae-model`).
 */
export function slackText(text: string): string {
  return escapeMrkdwn(text).replace(/(^|[\s`(“"'])\/(train|model)\b/g, '$1/cvae-$2');
}

/**
 * The text that introduces a generated grid (the file's initial comment): the core's summary (prompt, seeds,
 * model), escaped, and who asked (a slash command is shown to nobody but its author, so the public post says
 * it; only a real Slack user id becomes a mention).
 */
export function generationComment(reply: ImagineReply): string {
  const who = slackUserMention(reply.userId);
  return who ? `${slackText(reply.text)} · asked by ${who}` : slackText(reply.text);
}

function button(actionId: string, text: string, value: string, style?: 'primary'): Button {
  const b: Button = { type: 'button', action_id: actionId, text: { type: 'plain_text', text, emoji: true }, value };
  if (style) b.style = style;
  return b;
}

/**
 * The message with the buttons under a generation: a short context line and an actions block with
 * Reroll (new seeds), Variations (same seed neighbourhood) and, when there are several images, one button
 * per image to post it alone at full display size.
 */
export function generationActionBlocks(reply: ImagineReply): KnownBlock[] {
  const elements: Button[] = [
    button(REROLL_ACTION, '🎲 Reroll', reply.generationId, 'primary'),
    button(VARIATIONS_ACTION, '🔀 Variations', reply.generationId),
  ];
  if (reply.images.length > 1) {
    reply.images.forEach((_, i) => elements.push(button(`${IMAGE_ACTION_PREFIX}${i}`, `🖼 ${i + 1}`, `${reply.generationId}:${i}`)));
  }
  const section: SectionBlock = {
    type: 'section',
    text: { type: 'mrkdwn', text: `Seeds ${reply.seeds.join(', ')} · model \`${escapeMrkdwn(reply.model)}\` · react to tell me what you think` },
  };
  const actions: ActionsBlock = { type: 'actions', block_id: IMAGINE_ACTIONS_BLOCK, elements };
  return [section, actions];
}

/** Plain-text fallback of the buttons message (notifications, screen readers). */
export function generationActionText(reply: ImagineReply): string {
  return `Reroll, variations or single images of "${escapeMrkdwn(reply.prompt)}"`;
}

/** Parse the value of a per-image button back into generation id and image index. */
export function parseImageActionValue(value: string): { generationId: string; index: number } | null {
  const m = /^(.+):(\d+)$/.exec(value);
  if (!m) return null;
  return { generationId: m[1], index: Number(m[2]) };
}

/** An ephemeral response body (only the user who asked sees it). */
export function ephemeral(text: string): { response_type: 'ephemeral'; text: string } {
  return { response_type: 'ephemeral', text };
}

/**
 * The private "queued" notice of scaled mode: where the request stands, with a Cancel button (value: the
 * request id). It replaces the "Drawing…" acknowledgement; the worker posts the images in the channel.
 */
export function queuedNotice(receipt: JobReceipt): { response_type: 'ephemeral'; replace_original: true; text: string; blocks: KnownBlock[] } {
  const text = `:hourglass_flowing_sand: ${slackText(queuedText(receipt))}`;
  return {
    response_type: 'ephemeral',
    replace_original: true,
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'actions', block_id: 'imagine_queued', elements: [button(CANCEL_ACTION, 'Cancel', receipt.requestId)] },
    ],
  };
}
