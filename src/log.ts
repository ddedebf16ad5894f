import pino from 'pino';
import { redactionOptions } from './log-redact.js';

/**
 * The process-wide structured logger. Level from LOG_LEVEL (default `info`; tests run with `silent`
 * unless LOG_LEVEL is set). Logs go to stderr so that CLI commands can print JSON on stdout. Secrets are
 * censored at any depth, in objects, errors and strings (log-redact.ts).
 */
export const logger = pino(
  {
    level: process.env.LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info'),
    ...redactionOptions(),
    base: undefined,
  },
  pino.destination(2),
);

/** A child logger tagged with the module it belongs to. */
export function childLogger(module: string, bindings: Record<string, unknown> = {}) {
  return logger.child({ module, ...bindings });
}

export type Logger = typeof logger;
