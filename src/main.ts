/**
 * The bot process (`npm start`): validates the environment, starts the configured platforms, and shuts down
 * cleanly on SIGINT/SIGTERM (a running training run saves a checkpoint first).
 */
import { loadConfig } from './config/env.js';
import { isUserError } from './errors.js';
import { logger } from './log.js';
import { startBot } from './bot/run.js';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!process.env.DATA_DIR) process.env.DATA_DIR = config.DATA_DIR;
  const bot = await startBot(config);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    bot.stop().then(() => process.exit(0), (err) => { logger.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err) => {
  if (isUserError(err)) process.stderr.write(`${err.message}\n`);
  else logger.fatal({ err }, 'bot failed to start');
  process.exit(1);
});
