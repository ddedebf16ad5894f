/**
 * The bot process (`npm start`): validates the environment, serves /healthz and /metrics on HOST:PORT, starts
 * the configured chat platforms (with no chat tokens: the local playground instead), and shuts down cleanly on
 * SIGINT/SIGTERM (queued requests fail with a message, a running training run saves a checkpoint first, exit 0).
 */
import { isUserError } from './errors.js';
import { scriptArgsOrExit } from './util/script-args.js';
import { logger } from './log.js';
import { startApp, type RunningApp } from './app.js';

const USAGE = `Usage: npm start   (under a supervisor: node --import tsx src/main.ts)

Starts the bot: /healthz and /metrics on HOST:PORT (default 127.0.0.1:8787), Discord and Slack when their
tokens are set, and the local playground when none is (or PLAYGROUND=1). It takes no flags: every setting is
an environment variable, listed with its meaning in .env.example and the README's Configuration table.`;

async function main(): Promise<void> {
  scriptArgsOrExit(USAGE, {});
  let app: RunningApp | null = null;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    if (!app) process.exit(0);
    app.stop().then(() => process.exit(0), (err) => { logger.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  app = await startApp();
  const running = app;
  running.ready.catch((err) => {
    if (isUserError(err)) process.stderr.write(`${err.message}\n`);
    else logger.fatal({ err }, 'bot failed to start');
    running.stop().finally(() => process.exit(1));
  });
}

main().catch((err) => {
  if (isUserError(err)) process.stderr.write(`${err.message}\n`);
  else logger.fatal({ err }, 'bot failed to start');
  process.exit(1);
});
