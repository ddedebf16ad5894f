import pino from 'pino';

/** Paths that must never reach a log line. */
const REDACT = [
  'token', '*.token', 'secret', '*.secret', 'password', '*.password', 'authorization', '*.authorization',
  'headers.authorization', 'config.DISCORD_TOKEN', 'config.SLACK_BOT_TOKEN', 'config.SLACK_SIGNING_SECRET',
  'config.SLACK_APP_TOKEN', 'DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN',
];

/**
 * The process-wide structured logger. Level from LOG_LEVEL (default `info`; tests run with `silent`
 * unless LOG_LEVEL is set). Logs go to stderr so that CLI commands can print JSON on stdout.
 */
export const logger = pino(
  {
    level: process.env.LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info'),
    redact: { paths: REDACT, censor: '[redacted]' },
    base: undefined,
  },
  pino.destination(2),
);

/** A child logger tagged with the module it belongs to. */
export function childLogger(module: string, bindings: Record<string, unknown> = {}) {
  return logger.child({ module, ...bindings });
}

export type Logger = typeof logger;
