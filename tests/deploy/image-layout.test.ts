/**
 * What the CPU image would run, without Docker: the build context as `.dockerignore` filters it, laid out
 * like `COPY . .`, started with the image's CMD and ENV (no chat tokens: the playground), becomes healthy
 * by the image's own HEALTHCHECK command, listens on all interfaces as HOST=0.0.0.0 asks (so that a published
 * port reaches it), and exits cleanly on SIGTERM within compose's grace period.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { argsOf, copyBuildContext, durationSeconds, envOf, finalStage, healthcheckCommand, parseDockerfile, readRepoFile, repoRoot } from './helpers.js';

const DOCKERFILE = 'deploy/Dockerfile';
const STARTUP_LIMIT_MS = 150_000;

/** A TCP port that is free right now on this machine. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Local addresses with a TCP socket listening on `port` (Linux /proc/net/tcp{,6}), e.g. '0.0.0.0' or '::'. */
function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = LISTEN
      const [addr, portHex] = cols[1].split(':');
      if (parseInt(portHex, 16) !== port) continue;
      if (!v6) out.push(/^0+$/.test(addr) ? '0.0.0.0' : addr === '0100007F' ? '127.0.0.1' : addr);
      else out.push(/^0+$/.test(addr) ? '::' : addr === '00000000000000000000000001000000' ? '::1' : addr);
    }
  }
  return out;
}

test('the CPU image layout starts, turns healthy by its HEALTHCHECK, listens on 0.0.0.0 and stops on SIGTERM', { timeout: STARTUP_LIMIT_MS + 60_000 }, async (t) => {
  const df = parseDockerfile(DOCKERFILE);
  const last = finalStage(df);
  const cmd = last.filter((i) => i.getKeyword() === 'CMD').map(argsOf).at(-1)!;
  const check = healthcheckCommand(last.find((i) => i.getKeyword() === 'HEALTHCHECK')!)!;
  assert.equal(cmd[0], 'node');
  assert.equal(check[0], 'node');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cvae-image-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const app = path.join(tmp, 'app');
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  const files = copyBuildContext(app);
  assert.ok(files.includes('package.json') && !files.some((f) => f.startsWith('tests/deploy/')));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(app, 'node_modules'), 'dir');

  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DISCORD_|SLACK_|NODE_TEST_CONTEXT$|DATA_DIR$|PORT$|HOST$|CLIP_|HF_|TFJS_BACKEND$|SAMPLER_ENGINE$)/.test(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of envOf(last)) env[k] = v;
  Object.assign(env, { DATA_DIR: data, PORT: String(port), LOG_LEVEL: 'info' });
  assert.equal(env.HOST, '0.0.0.0', 'the image sets HOST=0.0.0.0');

  const child = spawn(process.execPath, cmd.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited.then((e) => (exitInfo = e));
  t.after(() => {
    if (exitInfo === null) child.kill('SIGKILL');
  });
  const tail = (): string => output.split('\n').slice(-40).join('\n');

  const runCheck = (): Promise<number> =>
    new Promise((resolve) => {
      execFile(process.execPath, check.slice(1), { env: { ...process.env, PORT: String(port) }, timeout: 10_000 }, (err) =>
        resolve(err ? ((err as { code?: number }).code ?? -1) : 0),
      );
    });

  const started = Date.now();
  let healthy = false;
  while (Date.now() - started < STARTUP_LIMIT_MS) {
    if (exitInfo !== null) assert.fail(`the app exited during start-up (${JSON.stringify(exitInfo)}):\n${tail()}`);
    if ((await runCheck()) === 0) {
      healthy = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(healthy, `the HEALTHCHECK command passed within ${STARTUP_LIMIT_MS / 1000} s:\n${tail()}`);

  if (fs.existsSync('/proc/net/tcp')) {
    const addrs = listeningAddresses(port);
    assert.ok(addrs.includes('0.0.0.0') || addrs.includes('::'), `listens on all interfaces (got ${addrs.join(', ') || 'nothing'})`);
  }

  const compose = parseDocument(readRepoFile('deploy/compose.cpu.yaml')).toJS() as { services: Record<string, { stop_grace_period?: string }> };
  const graceMs = durationSeconds(Object.values(compose.services)[0].stop_grace_period ?? '10s') * 1000;
  child.kill('SIGTERM');
  const result = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), graceMs))]);
  assert.ok(result, `exited within the ${graceMs / 1000} s stop grace after SIGTERM:\n${tail()}`);
  assert.equal(result.code, 0, `clean exit after SIGTERM (got ${JSON.stringify(result)}):\n${tail()}`);
});
