/**
 * The bot's configuration from environment variables, validated with zod at start-up. Each missing or
 * malformed value gives one clear line; secrets never appear in messages or logs.
 */
import { z } from 'zod';
import { UserError } from '../errors.js';

const snowflake = z.string().regex(/^\d{17,20}$/, 'must be a Discord id (17 to 20 digits)');
const url = z.string().url('must be a URL like https://example.com/api').refine((u) => /^https?:\/\//.test(u), 'must start with http:// or https://');
const nonEmpty = (what: string) => z.string().min(1, `must not be empty (${what})`);

/** `discord:123,slack:U456` → ['discord:123', 'slack:U456']. */
const adminIds = z.string().transform((raw, ctx) => {
  const ids = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!/^(discord:\d{5,20}|slack:[A-Z0-9]{3,20}|web:[A-Za-z0-9._-]{1,64})$/.test(id)) {
      ctx.addIssue({ code: 'custom', message: `"${id.slice(0, 40)}" is not a platform-prefixed user id like discord:123456789012345678 or slack:U0123ABC` });
      return z.NEVER;
    }
  }
  return ids;
});

/** `123,456` → ['123', '456']: Discord guild ids. */
const guildIds = z.string().transform((raw, ctx) => {
  const ids = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!/^\d{17,20}$/.test(id)) {
      ctx.addIssue({ code: 'custom', message: `"${id.slice(0, 40)}" is not a Discord guild id (17 to 20 digits; Server Settings → Widget, or Copy Server ID in developer mode)` });
      return z.NEVER;
    }
  }
  return ids;
});

/** A 0/1 switch (also true/false, yes/no, on/off). */
const flag = z.string().transform((raw, ctx) => {
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be 1 or 0 (true/false)' });
  return z.NEVER;
});
const whole = (what: string, min: number, max: number) => z.coerce.number({ message: `must be a number (${what})` })
  .int('must be a whole number').min(min, `must be ${min} to ${max}`).max(max, `must be ${min} to ${max}`);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const envSchema = z.object({
  DISCORD_TOKEN: nonEmpty('the bot token from the Discord developer portal').optional(),
  DISCORD_APPLICATION_ID: snowflake.optional(),
  DISCORD_GUILD_ID: snowflake.optional(),
  DISCORD_API_URL: url.optional(),
  /** Guilds where Manage Server makes a member a bot admin; unset: DISCORD_GUILD_ID if set, else none. */
  DISCORD_ADMIN_GUILD_IDS: guildIds.optional(),
  SLACK_BOT_TOKEN: z.string().regex(/^xoxb-/, 'must be a bot token starting with xoxb-').optional(),
  SLACK_SIGNING_SECRET: nonEmpty('the signing secret from the Slack app\'s Basic Information page').optional(),
  SLACK_APP_TOKEN: z.string().regex(/^xapp-/, 'must be an app-level token starting with xapp- (Socket Mode)').optional(),
  SLACK_PORT: z.coerce.number({ message: 'must be a port number' }).int('must be a whole number').min(1, 'must be 1 to 65535').max(65535, 'must be 1 to 65535').default(3000),
  SLACK_API_URL: url.optional(),
  ADMIN_USER_IDS: adminIds.default([]),
  DATA_DIR: nonEmpty('a folder for the database, checkpoints and caches').default('data'),
  CLIP_MODEL: nonEmpty('a Hugging Face id like Xenova/clip-vit-base-patch32 or a local folder').default('Xenova/clip-vit-base-patch32'),
  ONNX_RUN_TIMEOUT_MS: z.coerce.number({ message: 'must be a number of milliseconds' }).int('must be a whole number of milliseconds')
    .min(100, 'must be 100 to 3600000 (milliseconds)').max(3_600_000, 'must be 100 to 3600000 (milliseconds)').optional(),
  RETENTION_KEEP_RUNS: z.coerce.number({ message: 'must be a number of runs' }).int('must be a whole number').min(0, 'must be 0 or more').max(10_000, 'must be at most 10000').optional(),
  RETENTION_GENERATION_DAYS: z.coerce.number({ message: 'must be a number of days' }).int('must be a whole number').min(1, 'must be 1 or more').max(100_000, 'must be at most 100000').optional(),
  RETENTION_PRUNE_EVERY_HOURS: z.coerce.number({ message: 'must be a number of hours' }).int('must be a whole number').min(0, 'must be 0 (off) or more').max(8760, 'must be at most 8760').optional(),
  /** Scaled mode: generations, feedback, runs and the job queue in this PostgreSQL database (unset: one process, SQLite). */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a PostgreSQL URL like postgres://cvae:password@db-host:5432/cvae').optional(),
  /** Scaled mode: the ingress (`npm start`) also runs a generation worker in its own process. */
  LOCAL_WORKER: flag.default(false),
  /** Scaled mode: generation jobs one worker process holds at once; they are decoded together (micro-batches). */
  WORKER_CONCURRENCY: whole('jobs', 1, 256).default(16),
  /** Scaled mode: refuse a request politely when its predicted wait is longer than this many seconds. */
  ADMISSION_MAX_WAIT_S: whole('seconds', 1, 3600).default(60),
  /** Discord HTTP interactions (POST /discord/interactions): the application's public key, 64 hex digits. */
  DISCORD_PUBLIC_KEY: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of the Public Key (Discord developer portal → General Information)').optional(),
  /** Hold the Discord gateway in this process (reactions need it; slash commands can come over HTTP instead). */
  DISCORD_GATEWAY: flag.optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

export type BotConfig = Omit<z.infer<typeof envSchema>, 'DISCORD_ADMIN_GUILD_IDS'> & {
  /** DISCORD_ADMIN_GUILD_IDS, defaulting to DISCORD_GUILD_ID when that is set, else no guild. */
  DISCORD_ADMIN_GUILD_IDS: string[];
  /** Discord is configured (token + application id). */
  discord: boolean;
  /** Slack is configured (bot token + signing secret). */
  slack: boolean;
};

/**
 * Parses and checks the environment. Throws a UserError listing one line per bad or missing value.
 * Empty strings count as unset. `require` lists platforms that must be configured (default: at least one).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: { require?: ('discord' | 'slack' | 'any')[] } = {}): BotConfig {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v.trim();
  }
  const parsed = envSchema.safeParse(input);
  const problems: string[] = [];
  if (!parsed.success) {
    const seen = new Set<string>();
    for (const issue of parsed.error.issues) {
      const key = issue.path.join('.');
      if (seen.has(key)) continue; // one line per variable
      seen.add(key);
      problems.push(`${key}: ${issue.message}`);
    }
  }
  const cfg = parsed.success ? parsed.data : null;
  const has = (k: string) => input[k] !== undefined;
  const discord = has('DISCORD_TOKEN') && has('DISCORD_APPLICATION_ID');
  const slack = has('SLACK_BOT_TOKEN') && has('SLACK_SIGNING_SECRET');
  if (has('DISCORD_TOKEN') !== has('DISCORD_APPLICATION_ID')) {
    problems.push(has('DISCORD_TOKEN')
      ? 'DISCORD_APPLICATION_ID: is missing (Discord developer portal → your application → General Information → Application ID)'
      : 'DISCORD_TOKEN: is missing (Discord developer portal → your application → Bot → Reset Token)');
  }
  if (has('SLACK_BOT_TOKEN') !== has('SLACK_SIGNING_SECRET')) {
    problems.push(has('SLACK_BOT_TOKEN')
      ? 'SLACK_SIGNING_SECRET: is missing (Slack app → Basic Information → Signing Secret)'
      : 'SLACK_BOT_TOKEN: is missing (Slack app → OAuth & Permissions → Bot User OAuth Token)');
  }
  for (const need of opts.require ?? ['any']) {
    if (need === 'discord' && !discord && has('DISCORD_TOKEN') === has('DISCORD_APPLICATION_ID')) problems.push('DISCORD_TOKEN and DISCORD_APPLICATION_ID: are needed for Discord');
    if (need === 'slack' && !slack && has('SLACK_BOT_TOKEN') === has('SLACK_SIGNING_SECRET')) problems.push('SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: are needed for Slack');
    if (need === 'any' && !discord && !slack && !problems.length) {
      problems.push('no platform configured: set DISCORD_TOKEN + DISCORD_APPLICATION_ID for Discord and/or SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET for Slack');
    }
  }
  if (problems.length || !cfg) {
    throw new UserError(`The configuration has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  const adminGuilds = cfg.DISCORD_ADMIN_GUILD_IDS ?? (cfg.DISCORD_GUILD_ID ? [cfg.DISCORD_GUILD_ID] : []);
  return { ...cfg, DISCORD_ADMIN_GUILD_IDS: adminGuilds, discord, slack };
}
