/**
 * `register-commands [--guild ID]`: registers the bot's slash commands with Discord (globally, or in one
 * guild, which takes effect at once — handy while developing). Separate from start-up because Discord
 * rate-limits command creation. Needs DISCORD_TOKEN and DISCORD_APPLICATION_ID (DISCORD_API_URL optional).
 */
import type { Command } from 'commander';
import { REST, Routes } from 'discord.js';
import { UserError } from '../../errors.js';
import { loadConfig } from '../../config/env.js';
import { commandDefinitions } from '../../bot/discord/commands/index.js';

export interface CommandOutput {
  write(text: string): void;
}

/** Registers the commands; returns their names. */
export async function registerCommands(opts: { guild?: string; env?: NodeJS.ProcessEnv }, out: CommandOutput = { write: (t) => void process.stdout.write(t) }): Promise<string[]> {
  const config = loadConfig(opts.env ?? process.env, { require: ['discord'] });
  const guild = opts.guild ?? config.DISCORD_GUILD_ID;
  if (guild !== undefined && !/^\d{17,20}$/.test(guild)) throw new UserError('--guild must be a Discord server id (17 to 20 digits).');
  const rest = new REST({ ...(config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {}), retries: 1 }).setToken(config.DISCORD_TOKEN!);
  const body = commandDefinitions();
  const route = guild
    ? Routes.applicationGuildCommands(config.DISCORD_APPLICATION_ID!, guild)
    : Routes.applicationCommands(config.DISCORD_APPLICATION_ID!);
  const result = (await rest.put(route, { body })) as { name: string }[];
  const names = result.map((c) => c.name);
  out.write(`registered ${names.length} commands (${names.map((n) => `/${n}`).join(', ')}) ${guild ? `in guild ${guild} (available now)` : 'globally (may take up to an hour to appear)'}\n`);
  return names;
}

/** Adds `register-commands`. */
export function register(program: Command): void {
  program
    .command('register-commands')
    .description('register the Discord slash commands (globally, or in one guild with --guild)')
    .option('--guild <id>', 'guild (server) id for instant, guild-only registration (default DISCORD_GUILD_ID)')
    .action(async (opts: { guild?: string }) => { await registerCommands(opts); });
}
