import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { downloadImages, backoffDelay, writeDownloadReport, type DownloadItem } from '../../../src/training/data/download.js';

async function noiseJpeg(seed: number): Promise<Buffer> {
  const w = 48, h = 40;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919 + seed * 104729) % 251;
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

interface Server {
  base: string;
  requests: Map<string, number>;
  maxInFlight: number;
  close(): Promise<void>;
}

/**
 * Routes: ok-*.jpg good; flaky503 (503 once, then OK); flaky429 (429 + Retry-After once, then OK);
 * dropfirst (first body cut short, then OK); missing (404); short (always Content-Length > body);
 * cut (JPEG cut in half, consistent Content-Length).
 */
async function startServer(images: Map<string, Buffer>): Promise<Server> {
  const requests = new Map<string, number>();
  let inFlight = 0;
  const state = { maxInFlight: 0 };
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    const n = (requests.get(name) ?? 0) + 1;
    requests.set(name, n);
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const body = images.get(name.replace(/^(flaky503|flaky429|dropfirst|short|cut)-/, 'ok-'));
    setTimeout(() => {
      if (name.startsWith('missing') || !body) {
        res.writeHead(404).end('not found');
      } else if (name.startsWith('flaky503') && n === 1) {
        res.writeHead(503).end('busy');
      } else if (name.startsWith('flaky429') && n === 1) {
        res.writeHead(429, { 'Retry-After': '0' }).end('slow down');
      } else if (name.startsWith('short') || (name.startsWith('dropfirst') && n === 1)) {
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(body.length) });
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      } else if (name.startsWith('cut')) {
        const half = body.subarray(0, body.length >> 1);
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(half.length) }).end(half);
      } else {
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(body.length) }).end(body);
      }
    }, 5);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('downloads good images, retries transient failures, reports the rest, and resumes without refetching', async () => {
  const images = new Map<string, Buffer>();
  for (let i = 0; i < 6; i++) images.set(`ok-${i}.jpg`, await noiseJpeg(i));
  const server = await startServer(images);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dl-test-'));
  try {
    const names = [
      'ok-0.jpg', 'ok-1.jpg', 'ok-2.jpg', 'flaky503-3.jpg', 'flaky429-4.jpg', 'dropfirst-5.jpg',
      'missing-6.jpg', 'short-0.jpg', 'cut-1.jpg',
    ];
    const items: DownloadItem[] = names.map((n, i) => ({ id: 100 + i, url: `${server.base}/${n}`, fileName: n }));
    // A stale temp file from a killed run, and a corrupt file under a final name.
    await fs.writeFile(path.join(dir, 'ok-0.jpg.part-99-abc'), 'half');
    await fs.writeFile(path.join(dir, 'ok-2.jpg'), (await noiseJpeg(2)).subarray(0, 100));
    const progress: number[] = [];
    const opts = { outDir: dir, concurrency: 3, retries: 2, baseDelayMs: 1, maxDelayMs: 5, onProgress: (p: { done: number }) => progress.push(p.done) };
    const report = await downloadImages(items, opts);

    assert.deepEqual([...report.downloaded].sort(), [100, 101, 102, 103, 104, 105]);
    assert.deepEqual(report.skipped, []);
    const failed = Object.fromEntries(report.failed.map((f) => [f.id, f]));
    assert.deepEqual(Object.keys(failed).map(Number).sort(), [106, 107, 108]);
    assert.equal(failed[106].status, 404);
    assert.equal(failed[106].attempts, 1, '404 is not retried');
    assert.equal(failed[106].url, `${server.base}/missing-6.jpg`);
    assert.match(failed[107].reason, /cut short|terminated/);
    assert.equal(failed[107].attempts, 3, 'a short body is retried up to the limit');
    assert.match(failed[108].reason, /does not decode/);
    assert.equal(failed[108].attempts, 1);
    const retried = Object.fromEntries(report.retried.map((r) => [r.id, r.attempts]));
    assert.deepEqual(retried, { 103: 2, 104: 2, 105: 2, 107: 3 });
    assert.equal(progress.length, items.length);
    assert.equal(progress.at(-1), items.length);
    assert.ok(server.maxInFlight <= 3, `at most 3 requests in flight, saw ${server.maxInFlight}`);

    // Files: the good ones are byte-identical, nothing else (no temp files, no failed images).
    const files = (await fs.readdir(dir)).sort();
    assert.deepEqual(files, ['dropfirst-5.jpg', 'flaky429-4.jpg', 'flaky503-3.jpg', 'ok-0.jpg', 'ok-1.jpg', 'ok-2.jpg']);
    assert.deepEqual(await fs.readFile(path.join(dir, 'ok-2.jpg')), images.get('ok-2.jpg'));
    assert.deepEqual(await fs.readFile(path.join(dir, 'dropfirst-5.jpg')), images.get('ok-5.jpg'));

    // Rerun: good files are not fetched again; only the failures are retried.
    const before = new Map(server.requests);
    const again = await downloadImages(items, opts);
    assert.deepEqual([...again.skipped].sort(), [100, 101, 102, 103, 104, 105]);
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(again.failed.map((f) => f.id).sort(), [106, 107, 108]);
    for (const n of names) {
      const extra = (server.requests.get(n) ?? 0) - (before.get(n) ?? 0);
      const expected = n.startsWith('missing') || n.startsWith('cut') ? 1 : n.startsWith('short') ? 3 : 0;
      assert.equal(extra, expected, `requests for ${n} on rerun`);
    }

    const reportFile = path.join(dir, '..', `${path.basename(dir)}-report.json`);
    await writeDownloadReport(reportFile, again);
    const saved = JSON.parse(await fs.readFile(reportFile, 'utf8'));
    assert.deepEqual(saved.failed.map((f: { id: number }) => f.id).sort(), [106, 107, 108]);
    await fs.rm(reportFile);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('backoff grows exponentially, is capped, and jitters within [half, full]', () => {
  assert.equal(backoffDelay(1, 100, 10_000, () => 0), 50);
  assert.equal(backoffDelay(1, 100, 10_000, () => 1), 100);
  assert.equal(backoffDelay(4, 100, 10_000, () => 0.5), 600);
  assert.equal(backoffDelay(20, 100, 10_000, () => 1), 10_000);
});

test('a network error (connection refused) is retried, then reported', async () => {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dl-test-'));
  try {
    const report = await downloadImages([{ id: 1, url: `http://127.0.0.1:${port}/a.jpg`, fileName: 'a.jpg' }], {
      outDir: dir, retries: 1, baseDelayMs: 1, maxDelayMs: 2,
    });
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0].attempts, 2);
    assert.match(report.failed[0].reason, /network error/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
