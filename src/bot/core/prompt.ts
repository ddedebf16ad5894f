/**
 * Prompt validation: what a user typed becomes a clean prompt or a helpful UserError.
 * Mentions (Discord `<@123>`, `<@!123>`, `<#123>`, `<@&123>`, Slack `<@U123>`, `<#C123|name>`, `<!here>`,
 * `<!subteam^S123|@group>`, `<!date^...>`) and
 * control characters are stripped; whitespace is collapsed. Prompts only ever go to the CLIP tokenizer,
 * the database (bound parameters) and structured logs (JSON-escaped); never to a shell or a path.
 */
import { MAX_SEED } from '../../model/latent.js';
import { isValidName, NAME_RULE } from '../../util/names.js';
import { UserError } from './errors.js';

/** Longest prompt accepted, in characters (after cleaning). */
export const MAX_PROMPT_LENGTH = 500;

const MENTION = /<(?:@[!&]?|#|!)[A-Za-z0-9_^{}.-]+(?:\|[^>]*)?>/g;
// C0/C1 controls, zero-width and bidi controls; newlines and tabs become spaces first.
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;
const EMOJI_OR_SPACE = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\p{Emoji_Modifier}|\uFE0F|\u200D|\s|:[a-z0-9_+-]+:)*$/u;

/** Strips mentions and control characters and collapses whitespace (no validation). */
export function cleanPrompt(raw: string): string {
  return raw
    .normalize('NFC')
    .replace(MENTION, ' ')
    .replace(/[\r\n\t]/g, ' ')
    .replace(CONTROL, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Cleans a prompt and checks it: throws a UserError saying what to do when it is empty, longer than
 * {@link MAX_PROMPT_LENGTH} characters, or only mentions/emoji.
 */
export function validatePrompt(raw: string | null | undefined): string {
  const original = (raw ?? '').trim();
  if (!original) {
    throw new UserError('Please describe the image you want, e.g. `/imagine cows grazing on a green hill`.');
  }
  const prompt = cleanPrompt(original);
  if (!prompt || EMOJI_OR_SPACE.test(prompt)) {
    throw new UserError('Your prompt has only mentions or emoji. Please describe the image in words, e.g. `sheep on a mountain at sunset`.');
  }
  if ([...prompt].length > MAX_PROMPT_LENGTH) {
    throw new UserError(`Your prompt is ${[...prompt].length} characters long; please keep it to ${MAX_PROMPT_LENGTH} or fewer.`);
  }
  return prompt;
}

/** Checks the image count (1..max, default 1). */
export function validateCount(count: number | undefined, max = 4): number {
  if (count === undefined || count === null) return 1;
  if (!Number.isInteger(count) || count < 1 || count > max) {
    throw new UserError(`The number of images must be a whole number from 1 to ${max}.`);
  }
  return count;
}

/** Checks a seed (a whole number 0..2^31-1); undefined stays undefined. */
export function validateSeed(seed: number | undefined): number | undefined {
  if (seed === undefined || seed === null) return undefined;
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new UserError(`The seed must be a whole number from 0 to ${MAX_SEED}.`);
  }
  return seed;
}

/** Checks a model (checkpoint) name: letters, digits, dot, dash, underscore, at most 64 characters. */
export function validateModelName(name: string): string {
  const n = name.trim();
  if (!isValidName(n)) {
    throw new UserError(`Model names use ${NAME_RULE}. Try \`/model list\`.`);
  }
  return n;
}
