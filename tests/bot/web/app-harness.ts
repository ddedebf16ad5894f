/**
 * A small harness for the hardening tests (tests/bot/web, tests/model/onnx, tests/http): a temp data dir with
 * a tiny checkpoint (conditioned on the tiny CLIP fixture) registered and active, the real app (startApp) on a
 * free loopback port, and JSON requests that name the app's own origin the way a browser does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../src/model/backend.js';
import { saveCheckpoint } from '../../../src/model/checkpoint.js';
import { buildCvae } from '../../../src/model/cvae.js';
import { getPreset } from '../../../src/model/presets.js';
import { CheckpointRegistry } from '../../../src/model/registry.js';
import { startApp, type AppOptions, type RunningApp } from '../../../src/bot/web/app.js';
import type { ChatMessage } from '../../../src/bot/web/chat-log.js';

export const TINY_CLIP = path.resolve('tests/fixtures/tiny-clip');

/** A fresh temp data dir. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Saves a tiny checkpoint under `<dataDir>/checkpoints/<name>`, registers it and (by default) activates it. */
export async function addTiny(dataDir: string, name: string, opts: { activate?: boolean; seed?: number } = {}): Promise<string> {
  await initBackend();
  const registry = new CheckpointRegistry(path.join(dataDir, 'checkpoints'));
  const dir = path.join(registry.root, name);
  const preset = getPreset('tiny');
  const cvae = buildCvae(preset, { seed: opts.seed ?? 5 });
  try {
    await saveCheckpoint(dir, cvae, {
      name, preset: 'tiny', resolution: preset.resolution, conditioning: preset.conditioning, clipModel: TINY_CLIP,
      datasetFingerprint: 'test', epoch: 0, step: 0, losses: {}, createdAt: new Date().toISOString(), presetConfig: preset,
    });
  } finally {
    cvae.dispose();
  }
  await registry.register(name, dir);
  if (opts.activate ?? true) await registry.activate(name);
  return dir;
}

/** Starts the real app on 127.0.0.1:0 with the tiny CLIP and no shipped demo; waits until it has loaded. */
export async function startHarnessApp(dataDir: string, env: Record<string, string> = {}, runtime?: AppOptions['runtime']): Promise<RunningApp> {
  const app = await startApp({
    env: { DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP, HOST: '127.0.0.1', PORT: '0', ...env },
    runtime: { clipQuantized: false, ...runtime },
    shippedCheckpoint: null,
  });
  await app.ready;
  return app;
}

/** A request to `base` (JSON body when given); POSTs carry `Origin: base` like a browser's unless headers say otherwise. */
export async function call(base: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const h: Record<string, string> = { ...(method !== 'GET' && method !== 'HEAD' ? { origin: base } : {}), ...headers };
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const res = await fetch(base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any = null;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch { /* not JSON */ }
  return { status: res.status, json, body: buf };
}

/** Polls until `fn` returns a truthy value. */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Types a command into the playground and waits for its reply to settle. */
export async function command(app: RunningApp, text: string): Promise<ChatMessage> {
  const r = await call(app.url, 'POST', '/api/command', { text });
  if (r.status !== 202) throw new Error(`/api/command answered ${r.status}: ${r.body.toString()}`);
  return until(async () => {
    const m = (await call(app.url, 'GET', `/api/messages/${r.json.messageId}`)).json as ChatMessage;
    return m && m.state !== 'queued' && m.state !== 'working' ? m : null;
  }, `reply to ${text}`, 60_000);
}
