/**
 * Helpers for the playground and HTTP tests: a temp data dir with a tiny checkpoint (buildCvae(tiny) +
 * saveCheckpoint, conditioned on the tiny CLIP fixture) in its registry, the real app (startApp) on port 0,
 * and small HTTP helpers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/model/backend.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { buildCvae } from '../../src/model/cvae.js';
import { getPreset } from '../../src/model/presets.js';
import { CheckpointRegistry } from '../../src/model/registry.js';
import { startApp, type AppOptions, type RunningApp } from '../../src/app.js';
import type { ChatMessage } from '../../src/bot/web/chat-log.js';

export const TINY_CLIP_DIR = path.resolve('tests/fixtures/tiny-clip');
export const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A fresh temp data dir. */
export function tempDataDir(prefix = 'web-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Builds and saves an (untrained) tiny-preset checkpoint in `dir`, conditioned on `clipModel` (default: the tiny CLIP). */
export async function saveTinyCheckpoint(dir: string, name: string, clipModel: string = TINY_CLIP_DIR): Promise<void> {
  await initBackend(); // the backend the app uses
  const preset = getPreset('tiny');
  const cvae = buildCvae(preset, { seed: 5 });
  try {
    await saveCheckpoint(dir, cvae, {
      name, preset: 'tiny', resolution: preset.resolution, conditioning: preset.conditioning, clipModel,
      datasetFingerprint: 'test', epoch: 0, step: 0, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
    });
  } finally {
    cvae.dispose();
  }
}

/** Saves a tiny checkpoint under `<dataDir>/checkpoints/<name>`, registers it and (by default) activates it. */
export async function addTinyModel(dataDir: string, name: string, opts: { clipModel?: string; activate?: boolean } = {}): Promise<string> {
  const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
  const dir = path.join(registry.root, name);
  await saveTinyCheckpoint(dir, name, opts.clipModel);
  await registry.register(name, dir);
  if (opts.activate ?? true) await registry.activate(name);
  return dir;
}

/**
 * Starts the real app on 127.0.0.1:0 with the tiny CLIP (unless `env` says otherwise), the playground on, no
 * shipped demo (unless given), and waits until it has loaded.
 */
export async function startTestApp(dataDir: string, env: Record<string, string> = {}, runtime?: AppOptions['runtime'],
  opts: Pick<AppOptions, 'shippedCheckpoint'> = { shippedCheckpoint: null }): Promise<RunningApp> {
  const app = await startApp({
    env: { DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP_DIR, HOST: '127.0.0.1', PORT: '0', ...env },
    runtime: { clipQuantized: false, ...runtime },
    ...opts,
  });
  await app.ready;
  return app;
}

/**
 * GET or POST (JSON) against the app; returns status, headers and the parsed JSON (or raw body). A POST carries
 * the app's own Origin, as a browser's does (the playground refuses state-changing requests without it).
 */
export async function request(app: RunningApp, method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const h = method === 'GET' || method === 'HEAD' ? headers : { origin: app.url, ...headers };
  const res = await fetch(app.url + p, {
    method,
    headers: body === undefined ? h : { 'content-type': 'application/json', ...h },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any = null;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, body: buf };
}

/** Polls until `fn` returns a truthy value. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until a message is no longer queued or working; returns it. */
export async function settled(app: RunningApp, messageId: string, timeoutMs = 60_000): Promise<ChatMessage> {
  return waitFor(async () => {
    const r = await request(app, 'GET', `/api/messages/${messageId}`);
    const m = r.json as ChatMessage;
    return m && m.state !== 'queued' && m.state !== 'working' ? m : null;
  }, `message ${messageId} to settle`, timeoutMs);
}

/** Types a command into the playground and waits for its reply to settle. */
export async function command(app: RunningApp, text: string): Promise<ChatMessage> {
  const r = await request(app, 'POST', '/api/command', { text });
  if (r.status !== 202) throw new Error(`/api/command answered ${r.status}: ${r.body.toString()}`);
  return settled(app, r.json.messageId);
}
