/**
 * deploy/cvae-bot.service: runs `npm start` from the checkout as a dedicated user with the .env file,
 * stops with SIGTERM and a grace that covers a training checkpoint, and is hardened without hiding the GPU.
 * Where systemd-analyze is installed (Debian has it), the unit is also verified by systemd itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { durationSeconds, parseUnit, readRepoFile, repoRoot } from './helpers.js';

const UNIT = 'deploy/cvae-bot.service';
const unit = parseUnit(readRepoFile(UNIT));
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string): string | undefined => service.get(key)?.at(-1);

test('cvae-bot.service: npm start\'s entry in the checkout, .env as EnvironmentFile, dedicated user', () => {
  assert.ok(unit.has('Unit') && unit.has('Install'));
  const pkg = JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> };
  const entry = /^(?:tsx|node\s+--import[=\s]tsx)\s+(\S+)$/.exec(pkg.scripts.start?.trim() ?? '')?.[1];
  assert.ok(entry, `package.json "start" runs one file through tsx (got "${pkg.scripts.start}")`);
  const exec = one('ExecStart') ?? '';
  const direct = new RegExp(`^(/usr/bin/env |/usr/(local/)?bin/)node --import tsx ${entry.replace(/[.]/g, '\\.')}$`);
  assert.ok(direct.test(exec) || /^(\/usr\/bin\/env |\/usr\/(local\/)?bin\/)?npm start$/.test(exec), `ExecStart runs ${entry} like npm start (got "${exec}")`);
  const workdir = one('WorkingDirectory') ?? '';
  assert.ok(path.isAbsolute(workdir), 'absolute WorkingDirectory');
  assert.equal(one('EnvironmentFile'), path.posix.join(workdir, '.env'), 'reads the checkout\'s .env');
  const user = one('User');
  assert.ok(user && user !== 'root', 'runs as a dedicated user');
  assert.equal(one('Restart'), 'on-failure');
  assert.deepEqual(unit.get('Install')?.get('WantedBy'), ['multi-user.target']);
});

test('cvae-bot.service: SIGTERM with the same grace as compose, data dir the only writable place', () => {
  assert.equal(one('KillSignal'), 'SIGTERM');
  if (/\bnode\b/.test(one('ExecStart') ?? '')) {
    // Only the bot gets SIGTERM; it stops the training child itself (a second signal would make it quit unsaved).
    assert.equal(one('KillMode'), 'mixed');
  }
  const grace = durationSeconds(one('TimeoutStopSec') ?? '90');
  assert.ok(grace >= 60, 'TimeoutStopSec leaves time for a training checkpoint');
  const compose = parseDocument(readRepoFile('deploy/compose.yaml')).toJS() as { services: Record<string, { stop_grace_period?: string }> };
  assert.equal(grace, durationSeconds(Object.values(compose.services)[0].stop_grace_period ?? '10s'), 'same grace as compose');

  const env = new Map((service.get('Environment') ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const dataDir = env.get('DATA_DIR');
  assert.ok(dataDir && path.isAbsolute(dataDir), 'DATA_DIR is set to an absolute path');
  assert.equal(env.get('TF_FORCE_GPU_ALLOW_GROWTH'), 'true');
  assert.ok(env.get('CUDA_CACHE_PATH')?.startsWith(dataDir + '/'), 'the CUDA JIT cache is under the data dir');
  assert.equal(env.get('HOME'), dataDir, 'HOME is writable (npm logs, caches)');
  assert.equal(one('StateDirectory'), path.basename(dataDir));
  assert.equal(path.dirname(dataDir), '/var/lib', 'StateDirectory creates DATA_DIR');

  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.ok((service.get('ReadWritePaths') ?? []).join(' ').split(/\s+/).includes(dataDir), 'ReadWritePaths has the data dir');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.notEqual(one('PrivateDevices'), 'yes', 'PrivateDevices would hide /dev/nvidia*');
  assert.notEqual(one('MemoryDenyWriteExecute'), 'yes', "MemoryDenyWriteExecute breaks V8's JIT");
});

test('cvae-bot.service: systemd-analyze verify finds nothing wrong (where systemd is installed)', async (t) => {
  const result = await new Promise<{ code: number | string; stderr: string } | null>((resolve) => {
    execFile('systemd-analyze', ['verify', path.join(repoRoot, UNIT)], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') resolve(null);
      else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
  if (result === null) {
    t.diagnostic('systemd-analyze is not installed: only the checks above ran');
    assert.match(readRepoFile(UNIT), /^\[Service\]$/m);
    return;
  }
  assert.equal(result.stderr.trim(), '', 'no warnings (unknown keys, bad values, missing executables)');
  assert.equal(result.code, 0);
});
