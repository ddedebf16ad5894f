/**
 * The generation worker process (`npm run worker`; also `npm run cli -- worker`): with DATABASE_URL set, takes
 * generation jobs from PostgreSQL, decodes them in micro-batches, replies through the platforms' REST APIs and
 * records the generations. SIGINT/SIGTERM stop it gracefully (exit 0): no new jobs, the ones held are finished.
 */
import { isUserError } from './errors.js';
import { logger } from './log.js';
import { scriptArgsOrExit } from './util/script-args.js';
import { startWorkerApp } from './app.js';
import { stopOnSignals } from './jobs/worker-signals.js';

const USAGE = `Usage: npm run worker [-- --train]   (under a supervisor: node --import tsx src/worker.ts)

Starts a generation worker of the scaled-out bot: it takes /imagine jobs from the PostgreSQL database in
DATABASE_URL (the one the bot, \`npm start\`, queues them in), decodes them, and replies in Discord or Slack
itself. Run as many as you like, on as many hosts; WORKER_CONCURRENCY jobs are decoded together.
  --train   take training jobs instead (not available yet)
Settings are environment variables (.env.example): DATABASE_URL, DATA_DIR, CLIP_MODEL, WORKER_CONCURRENCY,
SAMPLER_ENGINE, SLACK_BOT_TOKEN, SLACK_API_URL, ...`;

async function main(): Promise<void> {
  const args = scriptArgsOrExit(USAGE, { train: { type: 'boolean' } });
  const app = await startWorkerApp({ train: Boolean(args.train) });
  await stopOnSignals(app);
  logger.info('worker stopped');
  process.exit(0);
}

main().catch((err) => {
  if (isUserError(err)) process.stderr.write(`${err.message}\n`);
  else logger.fatal({ err }, 'worker failed to start');
  process.exit(1);
});
