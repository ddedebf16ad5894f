/**
 * Checks of deploy/compose.yaml (GPU) and deploy/compose.cpu.yaml without a Docker engine: valid YAML,
 * build context and Dockerfile that exist, the repository's .env, the GPU reservation, the data volume,
 * the HTTP port the image exposes, a restart policy and a stop grace long enough for a training checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { argsOf, durationSeconds, envOf, finalStage, parseDockerfile, parseDockerignore, isDockerIgnored, readRepoFile, repoRoot } from './helpers.js';

interface ComposeService {
  build?: { context?: string; dockerfile?: string } | string;
  image?: string;
  env_file?: string | (string | { path: string })[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | number | { target?: number; published?: number | string; host_ip?: string })[];
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number | string; capabilities?: string[] }[] } } };
  restart?: string;
  stop_signal?: string;
  stop_grace_period?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Parses a compose file strictly (duplicate keys and YAML errors fail). */
function loadCompose(rel: string): ComposeFile {
  const doc = parseDocument(readRepoFile(rel), { uniqueKeys: true, prettyErrors: true });
  assert.deepEqual(doc.errors.map((e) => e.message), [], `${rel} is valid YAML`);
  const data = doc.toJS() as ComposeFile;
  assert.ok(data && typeof data.services === 'object', `${rel} has services`);
  return data;
}

function environmentOf(svc: ComposeService): Map<string, string> {
  const env = new Map<string, string>();
  if (Array.isArray(svc.environment)) {
    for (const kv of svc.environment) {
      const i = kv.indexOf('=');
      env.set(i < 0 ? kv : kv.slice(0, i), i < 0 ? '' : kv.slice(i + 1));
    }
  } else {
    for (const [k, v] of Object.entries(svc.environment ?? {})) env.set(k, v === null ? '' : String(v));
  }
  return env;
}

/** The default wait (ms) before the bot SIGKILLs a training child after SIGTERM, if the runner states one. */
function runnerKillAfterMs(): number | null {
  const file = path.join(repoRoot, 'src/bot/core/training-runner.ts');
  if (!fs.existsSync(file)) return null;
  const m = /killAfterMs:\s*([\d_]+)/.exec(fs.readFileSync(file, 'utf8'));
  return m ? Number(m[1].replace(/_/g, '')) : null;
}

const CASES = [
  { file: 'deploy/compose.yaml', dockerfile: 'deploy/Dockerfile.gpu', gpu: true },
  { file: 'deploy/compose.cpu.yaml', dockerfile: 'deploy/Dockerfile', gpu: false },
] as const;

for (const c of CASES) {
  const composeDir = path.dirname(path.join(repoRoot, c.file));

  test(`${c.file}: builds ${c.dockerfile} with the repository root as context`, () => {
    const svc = Object.values(loadCompose(c.file).services);
    assert.equal(svc.length, 1, 'one service');
    const build = svc[0].build;
    assert.ok(build && typeof build === 'object', 'build: { context, dockerfile }');
    const context = path.resolve(composeDir, build.context ?? '.');
    assert.equal(context, repoRoot, 'the build context is the repository root (where .dockerignore is)');
    assert.ok(fs.existsSync(path.join(context, '.dockerignore')));
    const dockerfile = path.resolve(context, build.dockerfile ?? 'Dockerfile');
    assert.equal(path.relative(repoRoot, dockerfile), c.dockerfile);
    assert.ok(fs.existsSync(dockerfile), `${c.dockerfile} exists`);
  });

  test(`${c.file}: reads the repository's .env (documented by .env.example), never bakes it into the image`, () => {
    const svc = Object.values(loadCompose(c.file).services)[0];
    const files = (Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file]).filter(Boolean).map((f) => (typeof f === 'string' ? f : f!.path));
    assert.equal(files.length, 1, 'one env_file');
    const envFile = path.resolve(composeDir, files[0]);
    assert.equal(envFile, path.join(repoRoot, '.env'), 'env_file is the repository root .env');
    assert.ok(fs.existsSync(path.join(repoRoot, '.env.example')), '.env.example sits beside it');
    assert.ok(isDockerIgnored(parseDockerignore(readRepoFile('.dockerignore')), '.env'), '.env is not sent to the build');
    assert.match(readRepoFile('.gitignore'), /^\/?\.env$/m, '.env is git-ignored');
  });

  test(`${c.file}: named data volume at /data, the image's port, restart policy, SIGTERM grace for a checkpoint`, () => {
    const compose = loadCompose(c.file);
    const svc = Object.values(compose.services)[0];
    const last = finalStage(parseDockerfile(c.dockerfile));
    const imageEnv = envOf(last);

    const dataMount = (svc.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v)).find((v) => v.target === '/data');
    assert.ok(dataMount?.source, 'a volume is mounted at /data');
    assert.ok(/^[A-Za-z0-9][\w.-]*$/.test(dataMount.source), `it is a named volume (got ${dataMount.source})`);
    assert.ok(compose.volumes && dataMount.source in compose.volumes, 'the named volume is declared');
    assert.equal(imageEnv.get('DATA_DIR'), '/data');

    const env = environmentOf(svc);
    assert.equal(env.get('DATA_DIR') ?? imageEnv.get('DATA_DIR'), '/data');
    const containerPort = env.get('PORT') ?? imageEnv.get('PORT');
    const exposed = last.filter((i) => i.getKeyword() === 'EXPOSE').flatMap(argsOf);
    assert.ok(containerPort && exposed.includes(containerPort), `PORT ${containerPort} is the exposed port`);
    const ports = (svc.ports ?? []).map((p) => (typeof p === 'object' ? String(p.target) : String(p).split(':').at(-1)!.split('/')[0]));
    assert.ok(ports.includes(containerPort), `the container port ${containerPort} is published`);
    assert.equal(env.get('HOST') ?? imageEnv.get('HOST'), '0.0.0.0');

    assert.ok(['always', 'unless-stopped', 'on-failure'].includes(svc.restart ?? ''), `restart policy (got ${svc.restart})`);
    assert.equal(svc.stop_signal ?? 'SIGTERM', 'SIGTERM');
    const grace = durationSeconds(svc.stop_grace_period ?? '10s');
    assert.ok(grace >= 60, `stop_grace_period ${svc.stop_grace_period} leaves time for a training checkpoint`);
    const killAfter = runnerKillAfterMs();
    if (killAfter !== null) {
      assert.ok(grace * 1000 > killAfter, `the grace (${grace} s) outlasts the bot's own wait for a training child (${killAfter / 1000} s)`);
    }
  });

  test(`${c.file}: ${c.gpu ? 'reserves one NVIDIA GPU' : 'reserves no GPU'}`, () => {
    const svc = Object.values(loadCompose(c.file).services)[0];
    const devices = svc.deploy?.resources?.reservations?.devices ?? [];
    if (c.gpu) {
      assert.equal(devices.length, 1);
      assert.equal(devices[0].driver, 'nvidia');
      assert.equal(Number(devices[0].count), 1);
      assert.deepEqual(devices[0].capabilities, ['gpu']);
      assert.equal(environmentOf(svc).get('TF_FORCE_GPU_ALLOW_GROWTH'), 'true');
    } else {
      assert.deepEqual(devices, []);
    }
  });
}

test('the duration reader understands compose and systemd forms', () => {
  assert.equal(durationSeconds('150s'), 150);
  assert.equal(durationSeconds('1m30s'), 90);
  assert.equal(durationSeconds('2min'), 120);
  assert.equal(durationSeconds('60'), 60);
  assert.equal(durationSeconds('500ms'), 0.5);
  assert.throws(() => durationSeconds('soon'));
});
