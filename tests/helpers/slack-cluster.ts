/**
 * The bot as an operator runs it, in child processes, against the fake Slack: either one `npm start` process
 * (embedded: in-memory queue, SQLite) or an ingress (`npm start` with DATABASE_URL) plus generation workers
 * (`npm run worker`), all serving the shipped demo model with its scene CLIP. `burst()` makes many distinct
 * Slack users type `/imagine` at once and reports what each one got. Used by the scale-out end-to-end test
 * and by `npm run bench -- --scale`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { sendSlashCommand, startFakeSlack, type FakeSlack } from '../fakes/slack-server.js';
import { freePort } from './postgres.js';

const SECRET = 'cluster-signing-secret';
const REPO = path.resolve(import.meta.dirname, '../..');

export interface SlackClusterOptions {
  /** `embedded`: one process; `scaled`: an ingress and `workers` worker processes on `databaseUrl`. */
  mode: 'embedded' | 'scaled';
  workers?: number;
  databaseUrl?: string;
  /** Extra environment for every process. */
  env?: Record<string, string>;
}

export interface SlackCluster {
  slack: FakeSlack;
  /** Bolt's request URL on the ingress. */
  eventsUrl: string;
  /** The ingress's HTTP server (healthz, metrics). */
  httpUrl: string;
  dataDir: string;
  workers: ChildProcess[];
  ingress: ChildProcess;
  /** Starts one more worker and waits until it beats. */
  startWorker(): Promise<ChildProcess>;
  /** Live generation workers in worker_heartbeats (scaled mode). */
  liveWorkers(): Promise<number>;
  /** Requests not finished yet (scaled mode: queued or running rows). */
  pending(): Promise<number>;
  /** The last lines the processes wrote to stderr (for failure messages). */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** What one user got from a burst. */
export interface UserOutcome {
  userId: string;
  ackStatus: number;
  ackMs: number;
  /** Images posted for this user (files shared with a comment that mentions them). */
  images: number;
  /** The private refusal they were shown, if any. */
  refusal: string | null;
  /** From sending the command to the image's upload completing. */
  latencyMs: number | null;
}

function nodeArgs(script: string): string[] {
  return ['--import', 'tsx', path.join(REPO, script)];
}

async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | null | undefined | false>, logs: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts the fake Slack and the bot's processes; resolves once the ingress is ready and the workers beat. */
export async function startSlackCluster(opts: SlackClusterOptions): Promise<SlackCluster> {
  const slack = await startFakeSlack({ sharesVisibleAfter: 1 });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-'));
  const [httpPort, slackPort] = [await freePort(), await freePort()];
  const logs: string[] = [];
  const children: ChildProcess[] = [];
  const keepLog = (name: string, child: ChildProcess) => {
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) logs.push(`[${name}] ${line}`);
      if (logs.length > 400) logs.splice(0, logs.length - 400);
    });
    child.stdout?.resume();
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', DATA_DIR: dataDir,
    SLACK_BOT_TOKEN: slack.token, SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl,
    ...(opts.mode === 'scaled' ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...opts.env,
  };
  const logTail = (n = 60) => logs.slice(-n).join('\n');
  const pool = opts.mode === 'scaled' ? new pg.Pool({ connectionString: opts.databaseUrl, max: 2 }) : null;
  pool?.on('error', () => undefined);

  const ingress = spawn(process.execPath, nodeArgs('src/main.ts'), {
    cwd: REPO, env: { ...env, HOST: '127.0.0.1', PORT: String(httpPort), SLACK_PORT: String(slackPort), PLAYGROUND: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  keepLog('ingress', ingress);
  children.push(ingress);
  const httpUrl = `http://127.0.0.1:${httpPort}`;

  const liveWorkers = async () => {
    if (!pool) return 0;
    const { rows } = await pool.query<{ n: string }>(
      "select count(*) as n from worker_heartbeats where role = 'generate' and seen_at > now() - interval '10 seconds'");
    return Number(rows[0].n);
  };
  const workers: ChildProcess[] = [];
  async function startWorker(): Promise<ChildProcess> {
    if (opts.mode !== 'scaled') throw new Error('workers run in scaled mode only');
    const before = await liveWorkers().catch(() => 0);
    const w = spawn(process.execPath, nodeArgs('src/worker.ts'), { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Workers run on other machines in production; on this one they yield the CPU to the ingress, whose acks
    // Slack waits for (3 s), as a separate machine would let it.
    if (w.pid) try { os.setPriority(w.pid, 10); } catch { /* not permitted: run at the same priority */ }
    keepLog(`worker-${workers.length + 1}`, w);
    workers.push(w);
    children.push(w);
    await waitUntil('a worker to beat', 120_000, async () => (await liveWorkers()) > before, logTail);
    return w;
  }

  try {
    await waitUntil('the ingress to be ready', 120_000, async () => (await fetch(`${httpUrl}/healthz`)).status === 200, logTail);
    for (let i = 0; i < (opts.workers ?? 0); i++) await startWorker();
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    await slack.close();
    await pool?.end();
    throw err;
  }

  return {
    slack, eventsUrl: `http://127.0.0.1:${slackPort}/slack/events`, httpUrl, dataDir, workers, ingress, startWorker, liveWorkers,
    async pending() {
      if (!pool) return 0;
      const { rows } = await pool.query<{ n: string }>("select count(*) as n from generation_requests where status in ('queued', 'running')");
      return Number(rows[0].n);
    },
    logTail,
    async stop() {
      await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise<void>((resolve) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
        c.once('exit', () => { clearTimeout(t); resolve(); });
        c.kill('SIGTERM');
      })));
      await pool?.end().catch(() => undefined);
      await slack.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Slack user id for user `i` (a real-looking one, so posts mention them). */
export function userIdOf(i: number): string {
  return `U${String(i).padStart(7, '0')}`;
}

/** Private responses that are progress, not an answer. */
const PROGRESS = /Queued|in the queue|in line/;

/**
 * `users` distinct users send `/imagine <prompt>` at once; resolves when every one has an image or a refusal,
 * or after `timeoutMs` (those left have neither). Then waits `settleMs` more so a second image would show.
 */
export async function burst(cluster: SlackCluster, users: number,
  opts: { prompt?: string; timeoutMs: number; settleMs?: number; firstUser?: number; afterAcks?: () => Promise<void> }): Promise<UserOutcome[]> {
  const { slack } = cluster;
  const first = opts.firstUser ?? 0;
  const ids = Array.from({ length: users }, (_, i) => userIdOf(first + i));
  const responseIds = new Map<string, string>();
  const sentAt = new Map<string, number>();
  const acks = await Promise.all(ids.map(async (userId) => {
    const responseUrl = slack.responseUrl();
    responseIds.set(userId, responseUrl.slice(responseUrl.lastIndexOf('/') + 1));
    const t0 = Date.now();
    sentAt.set(userId, t0);
    const res = await sendSlashCommand(cluster.eventsUrl, SECRET, { command: '/imagine', text: opts.prompt ?? 'cows in snow', userId, channelId: 'C0GENERAL', responseUrl });
    return { status: res.status, ms: Date.now() - t0 };
  }));
  await opts.afterAcks?.();
  const outcome = (): UserOutcome[] => ids.map((userId, i) => {
    const mention = `<@${userId}>`;
    const files = [...slack.files.values()].filter((f) => f.completedAt && f.initialComment?.includes(mention));
    const refusal = slack.responses.find((r) => r.id === responseIds.get(userId) && typeof r.body.text === 'string' && !PROGRESS.test(r.body.text as string));
    return {
      userId, ackStatus: acks[i].status, ackMs: acks[i].ms, images: files.length,
      refusal: refusal ? String(refusal.body.text) : null,
      latencyMs: files.length ? Math.min(...files.map((f) => f.completedAt!)) - sentAt.get(userId)! : null,
    };
  });
  await slack.waitFor(() => outcome().every((o) => o.images > 0 || o.refusal !== null), opts.timeoutMs, 'every user to get an image or a refusal').catch(() => undefined);
  await new Promise((r) => setTimeout(r, opts.settleMs ?? 1000));
  return outcome();
}

/** Percentile (0..1) of numbers, nearest rank. */
export function percentile(values: number[], p: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** The figures of a burst (images/s: images delivered over the time until the last one arrived). */
export function summarise(outcomes: UserOutcome[]) {
  const latencies = outcomes.flatMap((o) => (o.latencyMs === null ? [] : [o.latencyMs]));
  const images = outcomes.filter((o) => o.images > 0).length;
  return {
    users: outcomes.length,
    images,
    refused: outcomes.filter((o) => o.refusal !== null && o.images === 0).length,
    lost: outcomes.filter((o) => o.images === 0 && o.refusal === null).length,
    twice: outcomes.filter((o) => o.images > 1 || (o.images > 0 && o.refusal !== null)).length,
    ackMaxMs: Math.max(...outcomes.map((o) => o.ackMs)),
    p50Ms: percentile(latencies, 0.5),
    p95Ms: percentile(latencies, 0.95),
    imagesPerS: latencies.length ? images / (Math.max(...latencies) / 1000) : 0,
  };
}
