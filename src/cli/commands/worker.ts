/**
 * `worker [--train]`: runs a generation worker of the scaled-out bot until SIGINT/SIGTERM, like
 * `npm run worker` (see src/worker.ts): needs DATABASE_URL.
 */
import type { Command } from 'commander';
import { startWorkerApp } from '../../app.js';
import { stopOnSignals } from '../../jobs/worker-signals.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('take generation jobs from the PostgreSQL queue in DATABASE_URL, decode them and reply in chat (scaled mode)')
    .option('--train', 'take training jobs instead (one run at a time; checkpoints under DATA_DIR/checkpoints)')
    .action(async (opts: { train?: boolean }) => {
      const app = await startWorkerApp({ train: Boolean(opts.train) });
      await stopOnSignals(app);
    });
}
