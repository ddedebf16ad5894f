import pino from 'pino';
import pretty from 'pino-pretty';
import { redactionOptions } from './log-redact.js';

/**
 * Where log lines go: stderr (so that CLI commands can print JSON on stdout). JSON lines, for log collectors
 * and files; when stderr is a terminal, human-readable lines through pino-pretty instead (synchronously, in
 * this thread, so nothing is lost at exit).
 */
export function logDestination(tty: boolean = Boolean(process.stderr.isTTY), fd = 2): pino.DestinationStream {
  if (tty) return pretty({ destination: fd, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' });
  return pino.destination({ dest: fd, sync: true });
}

/**
 * The process-wide structured logger. Level from LOG_LEVEL (default `info`; tests run with `silent`
 * unless LOG_LEVEL is set). See {@link logDestination} for the format. Secrets are censored at any depth, in
 * objects, errors and strings (log-redact.ts).
 */
export const logger = pino(
  {
    level: process.env.LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info'),
    ...redactionOptions(),
    base: undefined,
  },
  logDestination(),
);

/** A child logger tagged with the module it belongs to. */
export function childLogger(module: string, bindings: Record<string, unknown> = {}) {
  return logger.child({ module, ...bindings });
}

export type Logger = typeof logger;
