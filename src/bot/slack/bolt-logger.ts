import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import { childLogger } from '../../log.js';

/**
 * Bolt's arguments as one pino call: the strings joined as the message; an Error as `err`, other objects as
 * `detail` (one object, or the list). Objects stay objects, so the logger's redaction reaches every key
 * (a JSON string would hide an `Authorization` header from it).
 */
export function boltLogArgs(msg: unknown[]): [Record<string, unknown>, string] {
  const strings: string[] = [];
  const objects: unknown[] = [];
  let err: Error | undefined;
  for (const m of msg) {
    if (typeof m === 'string') strings.push(m);
    else if (m instanceof Error && !err) err = m;
    else objects.push(m);
  }
  const fields: Record<string, unknown> = {};
  if (err) fields.err = err;
  if (objects.length) fields.detail = objects.length === 1 ? objects[0] : objects;
  return [fields, strings.join(' ') || err?.message || ''];
}

/**
 * Bolt's logger interface on top of the project's pino logger (module `slack-bolt`), so Bolt's own lines are
 * structured like ours and go through the same redaction. Bolt's level follows the pino level.
 */
export function boltLogger(): BoltLogger {
  const log = childLogger('slack-bolt');
  return {
    debug: (...msg: unknown[]) => log.debug(...boltLogArgs(msg)),
    info: (...msg: unknown[]) => log.info(...boltLogArgs(msg)),
    warn: (...msg: unknown[]) => log.warn(...boltLogArgs(msg)),
    error: (...msg: unknown[]) => log.error(...boltLogArgs(msg)),
    setLevel: () => { /* the level is LOG_LEVEL's */ },
    getLevel: () => {
      switch (log.level) {
        case 'trace':
        case 'debug':
          return LogLevel.DEBUG;
        case 'info':
          return LogLevel.INFO;
        case 'warn':
          return LogLevel.WARN;
        default:
          return LogLevel.ERROR;
      }
    },
    setName: () => { /* the name is the module binding */ },
  };
}
