/**
 * Parsing of command text typed as one line, shared by the adapters that get free text (Slack's slash commands,
 * the web playground's chat box): `/imagine <prompt> --count N --seed N --model NAME`, the training verbs
 * (`start preset:NAME epochs:N dataset:DIR`, `status`, `stop`) and the model verbs (`list`, `use NAME`); and
 * the one mapping of a parsed training or model command to the core's calls ({@link runTrainCommand},
 * {@link runModelCommand}). Platform text (Slack's escaping, its `/cvae-*` command names) is the adapter's:
 * it unescapes before parsing and passes its own usage lines.
 */
import { UserError } from '../../errors.js';
import type { Actor, BotCore, TrainingProgressSink } from './types.js';

/** Usage of `/imagine`, shown when the command text cannot be understood. */
export const IMAGINE_USAGE =
  'Usage: `/imagine <prompt> [--count 1-4] [--seed N] [--model NAME]`\n' +
  'Example: `/imagine sheep on a green hill --count 4 --seed 7`';

/** Usage of `/train` (an adapter whose command has another name passes its own). */
export const TRAIN_USAGE =
  'Usage: `/train start preset:<name> [epochs:N] [dataset:DIR]`, `/train status`, `/train stop`';

/** Usage of `/model` (an adapter whose command has another name passes its own). */
export const MODEL_USAGE = 'Usage: `/model list`, `/model use <name>`, `/model publish <name>`, `/model unpublish <name>`';

/** What `/imagine <text>` asks for. */
export interface ImagineCommand {
  prompt: string;
  count?: number;
  seed?: number;
  model?: string;
}

/** What `/train <text>` asks for. */
export type TrainCommand =
  | { verb: 'start'; preset: string; epochs?: number; dataset?: string }
  | { verb: 'status' }
  | { verb: 'stop' };

/** What `/model <text>` asks for. */
export type ModelCommand = { verb: 'list' } | { verb: 'use' | 'publish' | 'unpublish'; name: string };

/**
 * Split command text on whitespace, shell-like: `"double quoted"` and `'single quoted'` runs (also inside a
 * word, as in `dataset:"my data"`) stay in one token without their quotes; a lone quote is kept as is.
 */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (const m of text.matchAll(/(?:[^\s"']+|"[^"]*"|'[^']*'|["'])+/g)) {
    tokens.push(m[0].replace(/"([^"]*)"|'([^']*)'/g, (_all, d: string | undefined, s: string | undefined) => d ?? s ?? ''));
  }
  return tokens;
}

interface ParsedOptions {
  positional: string[];
  options: Map<string, string>;
}

/**
 * Separate `--name value`, `--name=value` and (when `colonForm`) `name:value` options from the other words.
 * Only names in `known` count as options; an unknown `--name` is an error, an unknown `word:thing` stays a word.
 */
function parseOptions(tokens: string[], known: readonly string[], usage: string, colonForm: boolean): ParsedOptions {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    let name: string | undefined;
    let value: string | undefined;
    if (tok.startsWith('--') && tok.length > 2) {
      const eq = tok.indexOf('=');
      name = (eq >= 0 ? tok.slice(2, eq) : tok.slice(2)).toLowerCase();
      if (!known.includes(name)) {
        throw new UserError(`Unknown option \`--${name}\`.\n${usage}`);
      }
      if (eq >= 0) value = tok.slice(eq + 1);
      else {
        value = tokens[i + 1];
        if (value === undefined || value.startsWith('--')) {
          throw new UserError(`Option \`--${name}\` needs a value.\n${usage}`);
        }
        i++;
      }
    } else if (colonForm) {
      const colon = tok.indexOf(':');
      const candidate = colon > 0 ? tok.slice(0, colon).toLowerCase() : '';
      if (known.includes(candidate)) {
        name = candidate;
        value = tok.slice(colon + 1);
      }
    }
    if (name === undefined) {
      positional.push(tok);
      continue;
    }
    if (value === undefined || value === '') throw new UserError(`Option \`${name}\` needs a value.\n${usage}`);
    if (options.has(name)) throw new UserError(`Option \`${name}\` is given twice.\n${usage}`);
    options.set(name, value);
  }
  return { positional, options };
}

function parseInteger(name: string, value: string | undefined, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) throw new UserError(`\`${name}\` must be a whole number, not \`${value}\`.\n${usage}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new UserError(`\`${name}\` is too large.\n${usage}`);
  return n;
}

/**
 * Parse the text of `/imagine`: a prompt with optional `--count N`, `--seed N`, `--model NAME` flags anywhere.
 * The prompt's words are kept as typed (quotes included), joined by single spaces.
 * Throws a UserError with the usage when the text holds no prompt or a flag is malformed. Range checks
 * (count 1-4, prompt length, mentions only) are the core's.
 */
export function parseImagineText(text: string): ImagineCommand {
  const words = text.split(/\s+/).filter(Boolean);
  const { positional, options } = parseOptions(words, ['count', 'seed', 'model'], IMAGINE_USAGE, false);
  const prompt = positional.join(' ').trim();
  if (!prompt) throw new UserError(`Tell me what to draw.\n${IMAGINE_USAGE}`);
  const cmd: ImagineCommand = { prompt };
  const count = parseInteger('count', options.get('count'), IMAGINE_USAGE);
  const seed = parseInteger('seed', options.get('seed'), IMAGINE_USAGE);
  if (count !== undefined) cmd.count = count;
  if (seed !== undefined) cmd.seed = seed;
  const model = options.get('model');
  if (model !== undefined) cmd.model = model;
  return cmd;
}

/**
 * Parse the text of `/train`: `start preset:NAME [epochs:N] [dataset:DIR]` (or `--preset NAME`,
 * or the preset as the first word after `start`), `status`, `stop`. Errors end with `usage`.
 */
export function parseTrainText(text: string, usage: string = TRAIN_USAGE): TrainCommand {
  const { positional, options } = parseOptions(tokenize(text), ['preset', 'epochs', 'dataset'], usage, true);
  const verb = (positional.shift() ?? '').toLowerCase();
  if (verb === 'status' || verb === 'stop') {
    if (positional.length || options.size) throw new UserError(`\`${verb}\` takes no options.\n${usage}`);
    return { verb };
  }
  if (verb !== 'start') {
    throw new UserError(verb ? `Unknown action \`${verb}\`.\n${usage}` : usage);
  }
  let preset = options.get('preset');
  if (preset === undefined && positional.length) preset = positional.shift();
  if (positional.length) throw new UserError(`I did not understand \`${positional.join(' ')}\`.\n${usage}`);
  if (!preset) throw new UserError(`Which preset? \n${usage}`);
  const cmd: TrainCommand = { verb: 'start', preset };
  const epochs = parseInteger('epochs', options.get('epochs'), usage);
  if (epochs !== undefined) cmd.epochs = epochs;
  const dataset = options.get('dataset');
  if (dataset !== undefined) cmd.dataset = dataset;
  return cmd;
}

/**
 * Parse the text of `/model`: `list` (also the default when empty), `use NAME`, `publish NAME` or
 * `unpublish NAME`. Errors end with `usage`.
 */
export function parseModelText(text: string, usage: string = MODEL_USAGE): ModelCommand {
  const words = tokenize(text);
  const verb = (words.shift() ?? 'list').toLowerCase();
  if (verb === 'list' && words.length === 0) return { verb: 'list' };
  const named = verb === 'use' || verb === 'publish' || verb === 'unpublish';
  if (named && words.length === 1) return { verb, name: words[0] };
  if (named && words.length === 0) throw new UserError(`Which model? \n${usage}`);
  throw new UserError(`I did not understand \`${[verb, ...words].join(' ')}\`.\n${usage}`);
}

/**
 * Runs a parsed `/train` command through the core; resolves with the reply text.
 * @param sink makes the progress sink of a started run (called only for `start`)
 */
export function runTrainCommand(core: BotCore, actor: Actor, cmd: TrainCommand, sink: () => TrainingProgressSink): Promise<string> {
  switch (cmd.verb) {
    case 'start':
      return core.trainStart(actor, { preset: cmd.preset, epochs: cmd.epochs, dataset: cmd.dataset }, sink());
    case 'status':
      return core.trainStatus(actor);
    case 'stop':
      return core.trainStop(actor);
  }
}

/** Runs a parsed `/model` command (list, use, publish, unpublish) through the core; resolves with the reply text. */
export function runModelCommand(core: BotCore, actor: Actor, cmd: ModelCommand): Promise<string> {
  if (cmd.verb === 'list') return core.modelList(actor);
  if (cmd.verb === 'use') return core.modelUse(actor, cmd.name);
  if (!core.modelPublish) return Promise.reject(new UserError('Publishing models is not available here.'));
  return core.modelPublish(actor, cmd.name, cmd.verb === 'publish');
}
