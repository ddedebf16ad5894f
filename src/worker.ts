/**
 * The generation worker process (`npm run worker`; also `npm run cli -- worker`): with DATABASE_URL set, takes
 * generation jobs from PostgreSQL, decodes them in micro-batches, replies through the platforms' REST APIs and
 * records the generations. SIGINT/SIGTERM stop it gracefully (exit 0): no new jobs, the ones held are finished.
 * With `--train`, a training worker instead (src/jobs/training-worker.ts): it takes `/train start` runs one at a
 * time; SIGINT/SIGTERM stop the run going (the trainer saves a checkpoint first) before it exits.
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
  --train   take training jobs instead (/train start from chat), one run at a time, on the training host:
            checkpoints are written and registered under DATA_DIR/checkpoints (a volume the bot shares)
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
