/**
 * Downloads the selected COCO images by their `coco_url`: bounded concurrency, retries with exponential backoff
 * and jitter (network errors, 5xx, 429, 408), no retry on other 4xx, resume (a file already there that decodes is
 * skipped), atomic writes (temp file + rename: a killed process never leaves a half file under the final name),
 * and every body is checked to decode completely before it is kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { childLogger } from '../../log.js';
import { checkDecodes } from './images.js';
import { TEMP_MARK, writeFileAtomic } from '../../util/durable-write.js';
import { runPool } from './pool.js';

const log = childLogger('coco-download');

/** One image to fetch. */
export interface DownloadItem {
  id: number | string;
  url: string;
  /** File name under the output folder (a plain name, no folders). */
  fileName: string;
}

/** Progress after each image. */
export interface DownloadProgress {
  done: number;
  total: number;
  downloaded: number;
  skipped: number;
  failed: number;
}

export interface DownloadOptions {
  /** Folder the images are written to (created if missing). */
  outDir: string;
  /** Requests in flight at most (default 8). */
  concurrency?: number;
  /** Extra attempts after the first for retryable failures (default 4). */
  retries?: number;
  /** First backoff delay (default 500 ms); doubles each attempt, capped by `maxDelayMs`, with jitter. */
  baseDelayMs?: number;
  /** Longest backoff delay, also the cap on a server's Retry-After (default 30 s). */
  maxDelayMs?: number;
  /** Per-request timeout (default 60 s). */
  timeoutMs?: number;
  /** The fetch to use (default: the global fetch of Node). */
  fetch?: typeof fetch;
  /** Random source in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** An image that could not be fetched. */
export interface DownloadFailure {
  id: number | string;
  url: string;
  reason: string;
  /** HTTP status of the last response, if there was one. */
  status?: number;
  attempts: number;
}

export interface DownloadReport {
  total: number;
  /** Fetched in this run. */
  downloaded: (number | string)[];
  /** Already present and decodable: not fetched again. */
  skipped: (number | string)[];
  /** Images that needed more than one attempt (whatever the outcome). */
  retried: { id: number | string; attempts: number }[];
  failed: DownloadFailure[];
  bytes: number;
}

class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** Backoff before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with equal jitter. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return exp / 2 + (exp / 2) * random();
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Removes temp files left by a killed run. */
async function removeStaleTemps(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.includes(TEMP_MARK)).map((n) => fs.rm(path.join(dir, n), { force: true })));
}

async function fetchOnce(item: DownloadItem, opts: Required<Pick<DownloadOptions, 'timeoutMs'>> & DownloadOptions) {
  const doFetch = opts.fetch ?? fetch;
  const signals = [AbortSignal.timeout(opts.timeoutMs)];
  if (opts.signal) signals.push(opts.signal);
  let res: Response;
  try {
    res = await doFetch(item.url, { signal: AbortSignal.any(signals), redirect: 'follow' });
  } catch (err) {
    throw new AttemptError(`network error: ${errorText(err)}`, !opts.signal?.aborted);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new AttemptError(
      `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
      isRetryableStatus(res.status),
      res.status,
      parseRetryAfter(res.headers.get('retry-after')),
    );
  }
  let body: Buffer;
  try {
    body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new AttemptError(`body cut short: ${errorText(err)}`, !opts.signal?.aborted, res.status);
  }
  const expected = Number(res.headers.get('content-length'));
  if (Number.isFinite(expected) && expected > 0 && !res.headers.get('content-encoding') && body.length !== expected) {
    throw new AttemptError(`body cut short: ${body.length} of ${expected} bytes`, true, res.status);
  }
  const bad = await checkDecodes(body);
  // Complete bytes that do not decode: asking again gives the same bytes, so this is not retried.
  if (bad) throw new AttemptError(`does not decode: ${bad}`, false, res.status);
  return body;
}

function errorText(err: unknown): string {
  const e = err as Error & { cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}

/**
 * Fetches the images that are not already in `outDir` (or are there but do not decode).
 * Never throws for a bad image or server: failures are collected in the report.
 */
export async function downloadImages(items: readonly DownloadItem[], options: DownloadOptions): Promise<DownloadReport> {
  const opts = {
    concurrency: 8,
    retries: 4,
    baseDelayMs: 500,
    maxDelayMs: 30_000,
    timeoutMs: 60_000,
    random: Math.random,
    ...options,
  };
  await fs.mkdir(opts.outDir, { recursive: true });
  await removeStaleTemps(opts.outDir);
  const report: DownloadReport = { total: items.length, downloaded: [], skipped: [], retried: [], failed: [], bytes: 0 };
  let done = 0;
  const progress = () =>
    opts.onProgress?.({
      done,
      total: items.length,
      downloaded: report.downloaded.length,
      skipped: report.skipped.length,
      failed: report.failed.length,
    });

  const one = async (item: DownloadItem) => {
    const file = path.join(opts.outDir, path.basename(item.fileName));
    const exists = await fs.stat(file).then((s) => s.isFile(), () => false);
    if (exists) {
      if ((await checkDecodes(file)) === null) {
        report.skipped.push(item.id);
        return;
      }
      log.warn({ id: item.id, file }, 'existing image does not decode; downloading it again');
      await fs.rm(file, { force: true });
    }
    const maxAttempts = 1 + Math.max(0, opts.retries);
    for (let attempt = 1; ; attempt++) {
      try {
        const body = await fetchOnce(item, opts);
        await writeFileAtomic(file, body);
        report.downloaded.push(item.id);
        report.bytes += body.length;
        if (attempt > 1) report.retried.push({ id: item.id, attempts: attempt });
        return;
      } catch (err) {
        const e = err instanceof AttemptError ? err : new AttemptError(errorText(err), false);
        if (!e.retryable || attempt >= maxAttempts || opts.signal?.aborted) {
          report.failed.push({ id: item.id, url: item.url, reason: e.message, status: e.status, attempts: attempt });
          if (attempt > 1) report.retried.push({ id: item.id, attempts: attempt });
          log.debug({ id: item.id, url: item.url, reason: e.message, attempt }, 'image download failed');
          return;
        }
        const backoff = backoffDelay(attempt, opts.baseDelayMs, opts.maxDelayMs, opts.random);
        const delay = e.retryAfterMs !== undefined ? Math.min(opts.maxDelayMs, Math.max(backoff, e.retryAfterMs)) : backoff;
        log.debug({ id: item.id, reason: e.message, attempt, delayMs: Math.round(delay) }, 'retrying image download');
        await sleep(delay, opts.signal);
      }
    }
  };

  await runPool(
    items,
    opts.concurrency,
    async (item) => {
      try {
        await one(item);
      } catch (err) {
        // Disk errors and the like: report, keep going with the other images.
        report.failed.push({ id: item.id, url: item.url, reason: errorText(err), attempts: 1 });
      }
      done++;
      progress();
    },
    opts.signal,
  );
  log.info(
    { total: items.length, downloaded: report.downloaded.length, skipped: report.skipped.length, failed: report.failed.length },
    'image download finished',
  );
  return report;
}

/** Writes the download report as JSON (atomically). */
export async function writeDownloadReport(file: string, report: DownloadReport): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(report, null, 2));
}
