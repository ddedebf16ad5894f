/**
 * Keeping secrets out of logs, at any depth. Three layers, because each misses something alone:
 * - pino `redact` paths with wildcards for the known shapes (`err.config.headers.Authorization` of an axios
 *   error, `req.headers.authorization`, `*.token`...): cheap, but a path has a fixed depth;
 * - {@link scrubSecrets} on every log object (pino `formatters.log`) and in the `err` serializer: walks the
 *   object (Errors through pino's standard serializer first) and censors every value whose key names a secret
 *   (`authorization`, `*token`, `*secret`, `password`, `cookie`, ...) whatever its depth;
 * - {@link scrubText} on every string logged, messages included: Slack tokens (`xoxb-`, `xapp-`...), bearer
 *   and bot authorization values, Discord bot tokens and Slack response URLs (anyone holding one can post).
 */
import pino from 'pino';

export const CENSOR = '[redacted]';

/** Known shapes, for pino's own redaction (wildcards: any key at that level). */
export const REDACT_PATHS = [
  'token', '*.token', '*.*.token', 'secret', '*.secret', 'password', '*.password',
  'authorization', '*.authorization', '*.Authorization',
  'headers.authorization', 'headers.Authorization', '*.headers.authorization', '*.headers.Authorization',
  '*.*.headers.authorization', '*.*.headers.Authorization', '*.*.*.headers.authorization', '*.*.*.headers.Authorization',
  'req.headers.cookie', '*.headers.cookie', 'err.config.data', 'err.config.headers', 'err.response.config.headers',
  'err.request.headers', 'config.DISCORD_TOKEN', 'config.SLACK_BOT_TOKEN', 'config.SLACK_SIGNING_SECRET',
  'config.SLACK_APP_TOKEN', 'config.PLAYGROUND_ADMIN_TOKEN', 'DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET',
  'SLACK_APP_TOKEN', 'PLAYGROUND_ADMIN_TOKEN', 'DATABASE_URL', 'config.DATABASE_URL',
];

/** Keys whose values are secrets, compared lower case without `-` and `_`. */
const SECRET_KEY = /(token|secret|password|passwd|authorization|cookie|signature|apikey|credentials?|responseurl|databaseurl|connectionstring)$/;
/** Keys that end like a secret's but are not (counts, names of tokenizers...). */
const NOT_SECRET_KEY = /^(maxtokens|tokens|tokenizer|ntokens|numtokens)$/;

/** True when a key names a secret (`Authorization`, `bot_token`, `signingSecret`, `x-slack-signature`...). */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  return SECRET_KEY.test(k) && !NOT_SECRET_KEY.test(k);
}

const SECRET_TEXT: [RegExp, string][] = [
  [/\bxox[abeoprs]-[A-Za-z0-9-]{6,}/g, CENSOR], // Slack bot/user/refresh tokens
  [/\bxapp-[A-Za-z0-9-]{6,}/g, CENSOR], // Slack app-level tokens
  [/\b(Bearer|Bot|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${CENSOR}`], // authorization header values
  [/\b[MNO][A-Za-z\d_-]{23,27}\.[\w-]{6,7}\.[\w-]{27,40}\b/g, CENSOR], // Discord bot tokens
  [/https:\/\/hooks\.slack\.com\/[^\s"'<>]+/g, `https://hooks.slack.com/${CENSOR}`], // response_url: lets anyone post
  [/(\/(?:webhooks|interactions)\/\d+\/)[^/?\s"'<>]+/g, `$1${CENSOR}`], // Discord interaction tokens in URLs
  [/\b(postgres(?:ql)?:\/\/[^:/@\s"'<>]*:)[^@\s"'<>]+@/g, `$1${CENSOR}@`], // the password in a DATABASE_URL
];

/** Censors secrets that appear inside a string. */
export function scrubText(text: string): string {
  let out = text;
  for (const [rx, by] of SECRET_TEXT) out = out.replace(rx, by);
  return out;
}

const MAX_DEPTH = 10;

/**
 * A copy of `value` with every secret-named key censored and every string scrubbed, at any depth (up to 10
 * levels; deeper is cut). Errors become pino's serialized form first (type, message, stack, own properties
 * such as axios's `config`, `request`, `response`). Never mutates `value`.
 */
export function scrubSecrets(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    if (value instanceof Error) return scrubSecrets(pino.stdSerializers.err(value), depth, seen);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.constructor.name} ${(value as Uint8Array).byteLength} bytes]`;
    if (Array.isArray(value)) return value.map((v) => scrubSecrets(v, depth + 1, seen));
    if (value instanceof Map) return scrubSecrets(Object.fromEntries(value), depth, seen);
    if (value instanceof Date) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretKey(k) && v !== undefined && v !== null && v !== '' ? CENSOR : scrubSecrets(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** pino's `err` serializer, then scrubbed. */
export function errSerializer(err: unknown): unknown {
  return scrubSecrets(err instanceof Error ? pino.stdSerializers.err(err) : err);
}

/** pino options that apply all of the above. */
export function redactionOptions(): Pick<pino.LoggerOptions, 'redact' | 'serializers' | 'formatters' | 'hooks'> {
  return {
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    serializers: { err: errSerializer, error: errSerializer },
    formatters: { log: (obj) => scrubSecrets(obj) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        // Strings passed to a log call (the message, printf arguments) are scrubbed too.
        const clean = args.map((a: unknown) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>;
        return method.apply(this, clean);
      },
    },
  };
}
