/**
 * The raw JSON of a Discord interaction (as it arrives over HTTP, already signature-checked) turned into typed
 * values: a PING, one of the bot's slash commands with its options, or a button press under a generation or a
 * queued notice. Pure: no I/O, no discord.js objects. Anything structurally wrong throws
 * {@link MalformedInteractionError} (the route answers 400); a command or button this bot does not know parses
 * to an `unknown` value (the route tells the user).
 */
import {
  ApplicationCommandOptionType, ComponentType, InteractionType, PermissionFlagsBits,
} from 'discord.js';
import type { ModelCommand, TrainCommand } from '../core/command-text.js';
import type { Actor, ImagineOptions } from '../core/types.js';
import { decodeCancelCustomId, decodeCustomId, type GenerationButton } from './components.js';

/** A payload that is not a Discord interaction of the shape the API documents. */
export class MalformedInteractionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedInteractionError';
  }
}

/** Who sent an interaction, where, and how to answer it. */
export interface InteractionSource {
  id: string;
  applicationId: string;
  /** The interaction token: its webhook edits the reply for 15 minutes. */
  token: string;
  /** null in a DM. */
  guildId: string | null;
  channelId: string;
  userId: string;
  /** Manage Server (or Administrator, which implies it) in the member's permissions in this guild. */
  manageGuild: boolean;
}

/** One of the bot's slash commands. */
export type InteractionCommand =
  | { name: 'imagine'; options: ImagineOptions }
  | { name: 'train'; command: TrainCommand }
  | { name: 'model'; command: ModelCommand }
  /** A command (or subcommand) this version does not have: commands may need registering again. */
  | { name: 'unknown'; commandName: string };

/** A button press. */
export type InteractionButton =
  | GenerationButton
  | { action: 'cancel'; requestId: string }
  | { action: 'unknown'; customId: string };

/** A parsed interaction. */
export type ParsedInteraction =
  | { type: 'ping' }
  | { type: 'command'; source: InteractionSource; command: InteractionCommand }
  | { type: 'button'; source: InteractionSource; button: InteractionButton }
  /** Autocomplete, modal submits, select menus: nothing of this bot sends them. */
  | { type: 'unsupported'; source: InteractionSource; interactionType: number };

type Json = Record<string, unknown>;

const SNOWFLAKE = /^\d{1,20}$/;
/** Interaction tokens go into webhook URL paths: only URL-safe characters are accepted. */
const TOKEN = /^[A-Za-z0-9._-]{1,512}$/;
const MANAGE_GUILD = PermissionFlagsBits.ManageGuild | PermissionFlagsBits.Administrator;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(obj: Json, name: string, pattern: RegExp, where = 'interaction'): string {
  const v = obj[name];
  if (typeof v !== 'string' || !pattern.test(v)) throw new MalformedInteractionError(`${where}.${name} is missing or malformed`);
  return v;
}

/** Manage Server from a permission bitfield sent as a decimal string; false when absent or malformed. */
export function hasManageGuild(permissions: unknown): boolean {
  if (typeof permissions !== 'string' || !/^\d{1,40}$/.test(permissions)) return false;
  return (BigInt(permissions) & MANAGE_GUILD) !== 0n;
}

function sourceOf(raw: Json): InteractionSource {
  const member = isObject(raw.member) ? raw.member : null;
  const user = member && isObject(member.user) ? member.user : isObject(raw.user) ? raw.user : null;
  if (!user) throw new MalformedInteractionError('interaction has neither member.user nor user');
  const channelId = typeof raw.channel_id === 'string' ? raw.channel_id : isObject(raw.channel) ? raw.channel.id : undefined;
  if (typeof channelId !== 'string' || !SNOWFLAKE.test(channelId)) throw new MalformedInteractionError('interaction.channel_id is missing or malformed');
  const guildId = raw.guild_id === undefined || raw.guild_id === null ? null : field(raw, 'guild_id', SNOWFLAKE);
  return {
    id: field(raw, 'id', SNOWFLAKE),
    applicationId: field(raw, 'application_id', SNOWFLAKE),
    token: field(raw, 'token', TOKEN),
    guildId,
    channelId,
    userId: field(user, 'id', SNOWFLAKE, 'user'),
    // Permissions count only in a guild (a DM has no Manage Server).
    manageGuild: guildId !== null && member !== null && hasManageGuild(member.permissions),
  };
}

interface CommandOption {
  name: string;
  type: number;
  value?: unknown;
  options?: CommandOption[];
}

function optionsOf(v: unknown, where: string): CommandOption[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new MalformedInteractionError(`${where}.options is not a list`);
  return v.map((o, i) => {
    if (!isObject(o) || typeof o.name !== 'string' || typeof o.type !== 'number') {
      throw new MalformedInteractionError(`${where}.options[${i}] has no name or type`);
    }
    return { name: o.name, type: o.type, value: o.value, options: optionsOf(o.options, `${where}.options[${i}]`) };
  });
}

/** Reads typed option values; wrong types are malformed (Discord checks them before sending). */
class OptionReader {
  constructor(private readonly options: CommandOption[], private readonly where: string) {}

  private find(name: string, type: ApplicationCommandOptionType): CommandOption | undefined {
    const o = this.options.find((x) => x.name === name);
    if (o && o.type !== type) throw new MalformedInteractionError(`${this.where} option ${name} has type ${o.type}, expected ${type}`);
    return o;
  }

  string(name: string): string | undefined {
    const o = this.find(name, ApplicationCommandOptionType.String);
    if (!o) return undefined;
    if (typeof o.value !== 'string') throw new MalformedInteractionError(`${this.where} option ${name} is not a string`);
    return o.value;
  }

  requiredString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new MalformedInteractionError(`${this.where} option ${name} is required`);
    return v;
  }

  integer(name: string): number | undefined {
    const o = this.find(name, ApplicationCommandOptionType.Integer);
    if (!o) return undefined;
    if (typeof o.value !== 'number' || !Number.isSafeInteger(o.value)) throw new MalformedInteractionError(`${this.where} option ${name} is not a whole number`);
    return o.value;
  }
}

/** The one subcommand of a command with subcommands, or null when there is none. */
function subcommandOf(options: CommandOption[]): { name: string; options: CommandOption[] } | null {
  const sub = options.find((o) => o.type === ApplicationCommandOptionType.Subcommand);
  return sub ? { name: sub.name, options: sub.options ?? [] } : null;
}

function commandOf(data: Json): InteractionCommand {
  const name = data.name;
  if (typeof name !== 'string' || !name) throw new MalformedInteractionError('interaction.data.name is missing');
  const options = optionsOf(data.options, 'data');
  if (name === 'imagine') {
    const o = new OptionReader(options, '/imagine');
    const opts: ImagineOptions = { prompt: o.requiredString('prompt') };
    const count = o.integer('count');
    const seed = o.integer('seed');
    const model = o.string('model');
    if (count !== undefined) opts.count = count;
    if (seed !== undefined) opts.seed = seed;
    if (model !== undefined) opts.model = model;
    return { name, options: opts };
  }
  if (name === 'train' || name === 'model') {
    const sub = subcommandOf(options);
    if (!sub) throw new MalformedInteractionError(`/${name} has no subcommand`);
    const o = new OptionReader(sub.options, `/${name} ${sub.name}`);
    if (name === 'train') {
      if (sub.name === 'status' || sub.name === 'stop') return { name, command: { verb: sub.name } };
      if (sub.name === 'start') {
        const command: TrainCommand = { verb: 'start', preset: o.requiredString('preset') };
        const epochs = o.integer('epochs');
        const dataset = o.string('dataset');
        if (epochs !== undefined) command.epochs = epochs;
        if (dataset !== undefined) command.dataset = dataset;
        return { name, command };
      }
    } else {
      if (sub.name === 'list') return { name, command: { verb: 'list' } };
      if (sub.name === 'use' || sub.name === 'publish' || sub.name === 'unpublish') {
        return { name, command: { verb: sub.name, name: o.requiredString('name') } };
      }
    }
    return { name: 'unknown', commandName: `${name} ${sub.name}` };
  }
  return { name: 'unknown', commandName: name };
}

function buttonOf(data: Json): InteractionButton {
  const customId = data.custom_id;
  if (typeof customId !== 'string' || customId.length > 100) throw new MalformedInteractionError('interaction.data.custom_id is missing or malformed');
  const generation = decodeCustomId(customId);
  if (generation) return generation;
  const requestId = decodeCancelCustomId(customId);
  if (requestId) return { action: 'cancel', requestId };
  return { action: 'unknown', customId };
}

/**
 * Parses an interaction's JSON (the request body, already verified).
 * @throws MalformedInteractionError when a field the bot needs is missing or has the wrong type
 */
export function parseInteraction(json: unknown): ParsedInteraction {
  if (!isObject(json)) throw new MalformedInteractionError('the body is not a JSON object');
  const type = json.type;
  if (typeof type !== 'number') throw new MalformedInteractionError('interaction.type is missing');
  if (type === InteractionType.Ping) return { type: 'ping' };
  const source = sourceOf(json);
  if (type === InteractionType.ApplicationCommand) {
    if (!isObject(json.data)) throw new MalformedInteractionError('interaction.data is missing');
    return { type: 'command', source, command: commandOf(json.data) };
  }
  if (type === InteractionType.MessageComponent) {
    if (!isObject(json.data)) throw new MalformedInteractionError('interaction.data is missing');
    if (json.data.component_type !== ComponentType.Button) return { type: 'unsupported', source, interactionType: type };
    return { type: 'button', source, button: buttonOf(json.data) };
  }
  return { type: 'unsupported', source, interactionType: type };
}

/** The core's Actor for an interaction (as actorOf in context.ts does for gateway interactions). */
export function actorOfSource(source: InteractionSource): Actor {
  return {
    platform: 'discord',
    workspaceId: source.guildId ?? 'dm',
    channelId: source.channelId,
    userId: source.userId,
    platformAdmin: source.manageGuild,
  };
}
