/**
 * A generation worker in a child process for the kill -9 test (tests/jobs/worker-kill.test.ts): fake CLIP and
 * sampler, `web` deliveries, short heartbeats. With HANG=1 its sampler never returns, so the jobs it takes stay
 * mid-batch until the test kills it. Prints `ready` once started and `sampling` when its first batch starts.
 */
import { createBatchSampler } from '../../src/bot/core/batch-sampler.js';
import { startGenerationWorker } from '../../src/jobs/generation-worker.js';
import { createPgPool } from '../../src/util/postgres.js';
import { FakeSamplers, HashEmbedder, sharpRenderer } from '../bot/core/helpers.js';
import { MemoryRecorder } from './worker-helpers.js';

const pool = createPgPool(process.env.DATABASE_URL!, { applicationName: 'test-worker-child', max: 12 });
const samplers = new FakeSamplers();
if (process.env.HANG === '1') samplers.gate = new Promise<void>(() => undefined);
const worker = await startGenerationWorker({
  pool, runBatch: createBatchSampler({ embedder: new HashEmbedder(), samplers }).runBatch, renderer: sharpRenderer,
  recorder: new MemoryRecorder(), deliveries: {}, concurrency: 8, workerId: process.env.WORKER_ID,
  pollIntervalMs: 200, heartbeat: { intervalMs: 200, sweepMs: 300, staleMs: 1500 },
});
process.stdout.write('ready\n');
void samplers.waitForCalls(1).then(() => process.stdout.write('sampling\n'));
process.on('SIGTERM', () => { void worker.stop().then(() => pool.end()).then(() => process.exit(0)); });
