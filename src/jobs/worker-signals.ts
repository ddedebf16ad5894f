/**
 * Signal handling of a worker process (`npm run worker`, `cvae worker`): the first SIGINT or SIGTERM stops it
 * gracefully (no new jobs; the jobs it holds are decoded, delivered and recorded); a second one while stopping
 * exits at once (its jobs go back to the queue when the heartbeat sweeper frees them).
 */
import { childLogger } from '../log.js';

const log = childLogger('worker');

/** Resolves with the signal's name once `target.stop()` has finished after the first SIGINT or SIGTERM. */
export function stopOnSignals(target: { stop(): Promise<void> }): Promise<string> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal while stopping: exiting now; the jobs held are retried by another worker');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping: taking no new jobs, finishing the ones held');
      target.stop().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve(signal);
      }, reject);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
