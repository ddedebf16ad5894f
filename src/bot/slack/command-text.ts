/**
 * Slack's side of command text: Slack escapes `&`, `<` and `>` in what people type, and names this app's
 * commands `/cvae-train` and `/cvae-model`. The text is unescaped here and then parsed by the core's shared
 * parsers, with usage lines that name the Slack commands.
 */
import { parseImagineText, parseModelText, parseTrainText, type ImagineCommand, type ModelCommand, type TrainCommand } from '../core/command-text.js';

/** Usage of `/cvae-train`. */
export const SLACK_TRAIN_USAGE =
  'Usage: `/cvae-train start preset:<name> [epochs:N] [dataset:DIR]`, `/cvae-train status`, `/cvae-train stop`';

/** Usage of `/cvae-model`. */
export const SLACK_MODEL_USAGE = 'Usage: `/cvae-model list`, `/cvae-model use <name>`, `/cvae-model publish <name>`, `/cvae-model unpublish <name>`';

/**
 * Undo Slack's escaping of command text: Slack sends `&`, `<` and `>` as `&amp;`, `&lt;`, `&gt;`
 * (mentions and links stay in their `<@U123>` / `<https://...>` form, which the core strips).
 */
export function unescapeSlackText(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The text of `/imagine` as Slack sends it. */
export function parseSlackImagine(text: string): ImagineCommand {
  return parseImagineText(unescapeSlackText(text));
}

/** The text of `/cvae-train` as Slack sends it. */
export function parseSlackTrain(text: string): TrainCommand {
  return parseTrainText(unescapeSlackText(text), SLACK_TRAIN_USAGE);
}

/** The text of `/cvae-model` as Slack sends it. */
export function parseSlackModel(text: string): ModelCommand {
  return parseModelText(unescapeSlackText(text), SLACK_MODEL_USAGE);
}
