import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import { childLogger } from '../../log.js';

/**
 * Bolt's logger interface on top of the project's pino logger (module `slack-bolt`), so Bolt's own lines are
 * structured like ours and go through the same redaction. Bolt's level follows the pino level.
 */
export function boltLogger(): BoltLogger {
  const log = childLogger('slack-bolt');
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug(text(msg)),
    info: (...msg: unknown[]) => log.info(text(msg)),
    warn: (...msg: unknown[]) => log.warn(text(msg)),
    error: (...msg: unknown[]) => log.error(text(msg)),
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
