/**
 * `npm start`'s entry as a child process with no chat tokens: it serves the playground, /healthz turns 200
 * once the tiny model and CLIP are loaded, and SIGTERM makes it stop cleanly (exit 0): a running training
 * child saves a checkpoint and the run is recorded as stopped, the lock is released and SQLite is closed
 * (its WAL checkpointed away). SIGTERM while still loading exits 0 too.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { TINY_CLIP_DIR, addTinyModel, tempDataDir, waitFor } from './helpers.js';

interface Started {
  child: ChildProcess;
  port: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

/** Starts `node --import tsx src/main.ts` (what `npm start` and the images run) with a clean environment. */
function startMain(dataDir: string): Started {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(DISCORD_|SLACK_|NODE_TEST_CONTEXT$|PLAYGROUND$|ADMIN_USER_IDS$)/.test(k)) env[k] = v;
  }
  Object.assign(env, { DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP_DIR, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let resolvePort!: (p: number) => void;
  const port = new Promise<number>((resolve) => { resolvePort = resolve; });
  const onData = (b: Buffer) => {
    out += b.toString();
    const m = /"port":(\d+),"msg":"HTTP server listening"/.exec(out);
    if (m) resolvePort(Number(m[1]));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, port, exited, output: () => out.split('\n').slice(-30).join('\n') };
}

async function get(port: number, p: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, text: await res.text() };
}

describe('npm start: playground without tokens, clean SIGTERM', { timeout: 240_000 }, () => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('serves, trains, and on SIGTERM stops the run with a checkpoint, closes SQLite and exits 0', async () => {
    const dataDir = tempDataDir('web-sigterm-');
    dirs.push(dataDir);
    await addTinyModel(dataDir, 'tiny-main');
    const app = startMain(dataDir);
    children.push(app.child);
    const port = await Promise.race([app.port, app.exited.then((e) => { throw new Error(`exited early ${JSON.stringify(e)}:\n${app.output()}`); })]);

    await waitFor(async () => (await get(port, '/healthz')).status === 200, 'healthz 200', 120_000);
    const page = await get(port, '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /CLIP-CVAE playground/);

    const post = (p: string, body: unknown) => fetch(`http://127.0.0.1:${port}${p}`, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` }, body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, json: await r.json() as { text?: string; error?: string } }));
    const start = await post('/api/train/start', { preset: 'tiny', epochs: 500, dataset: 'synthetic' });
    assert.equal(start.status, 200, JSON.stringify(start.json));
    const runId = /`(tiny-[\w-]+)`/.exec(start.json.text ?? '')![1];
    await waitFor(async () => /step \d+/.test(JSON.parse((await get(port, '/api/train/status')).text).text), 'a training step', 120_000);

    app.child.kill('SIGTERM');
    const exit = await Promise.race([app.exited, new Promise<null>((r) => setTimeout(() => r(null), 120_000).unref())]);
    assert.ok(exit, `exited within 120 s of SIGTERM:\n${app.output()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, app.output());
    assert.match(app.output(), /"msg":"bot stopped"/);

    const db = new Database(path.join(dataDir, 'bot.sqlite'), { readonly: true });
    const run = db.prepare('SELECT status, checkpoint_dir AS dir FROM runs WHERE id = ?').get(runId) as { status: string; dir: string | null };
    db.close();
    assert.equal(run.status, 'stopped');
    assert.ok(run.dir && fs.existsSync(path.join(run.dir, 'meta.json')), 'the checkpoint the trainer saved on SIGTERM');
    assert.ok(!fs.existsSync(path.join(dataDir, 'training.lock')), 'the training lock is released');
    const wal = path.join(dataDir, 'bot.sqlite-wal');
    assert.ok(!fs.existsSync(wal) || fs.statSync(wal).size === 0, 'SQLite was closed (WAL checkpointed)');
  });

  it('exits 0 on SIGTERM while it is still loading', async () => {
    const dataDir = tempDataDir('web-sigterm-early-');
    dirs.push(dataDir);
    const app = startMain(dataDir);
    children.push(app.child);
    await Promise.race([app.port, app.exited.then((e) => { throw new Error(`exited early ${JSON.stringify(e)}:\n${app.output()}`); })]);
    app.child.kill('SIGTERM');
    const exit = await Promise.race([app.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000).unref())]);
    assert.deepEqual(exit, { code: 0, signal: null }, app.output());
  });
});
