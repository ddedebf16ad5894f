/**
 * Checks of the scaled deployment (deploy/compose.scaled.yaml on a GPU host, deploy/compose.scaled.cpu.yaml
 * without one) without a Docker engine: PostgreSQL from the official image with a volume and a healthcheck;
 * the ingress, N generation workers and one training worker run the commands of npm scripts (`start`,
 * `worker`, `worker -- --train`); the environment they set is the configuration loadConfig knows and
 * accepts; workers and the trainer reserve a GPU in the GPU variant only; every role mounts the one shared
 * checkpoint volume; depends_on waits for healthy services in the documented order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { envSchema, loadConfig } from '../../src/config/env.js';
import {
  argsOf, durationSeconds, envOf, envVarsReadBy, finalStage, healthcheckCommand, listFiles, parseDockerfile, parseEnvExample, readRepoFile, repoRoot,
} from './helpers.js';

interface Device { driver?: string; count?: number | string; capabilities?: string[]; device_ids?: string[] }
interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  command?: string[] | string;
  env_file?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  volumes?: (string | { source?: string; target?: string })[];
  ports?: (string | { target?: number; published?: string | number; host_ip?: string })[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  deploy?: { replicas?: number; resources?: { reservations?: { devices?: Device[] } } };
  stop_grace_period?: string;
  stop_signal?: string;
  restart?: string;
}
interface Compose { name?: string; services: Record<string, Service>; volumes?: Record<string, unknown> }

/** Parses a compose file strictly, with YAML merge keys (`<<: *anchor`) as Compose reads them. */
export function loadScaledCompose(rel: string): Compose {
  const doc = parseDocument(readRepoFile(rel), { uniqueKeys: true, merge: true, prettyErrors: true });
  assert.deepEqual(doc.errors.map((e) => e.message), [], `${rel} is valid YAML`);
  const data = doc.toJS() as Compose;
  assert.ok(data && typeof data.services === 'object', `${rel} has services`);
  return data;
}

/** Compose's variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`); returns the names used too. */
export function interpolate(value: string, vars: Record<string, string>): { value: string; names: string[] } {
  const names: string[] = [];
  const out = value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    names.push(name);
    const v = vars[name];
    if (op?.endsWith('?') && !v) throw new Error(`${name}: ${arg}`);
    if (op?.endsWith('-') && !v) return arg ?? '';
    return v ?? '';
  });
  return { value: out, names };
}

const pkg = JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> };
const SCRIPT_ARGS = (name: string): string[] | null => pkg.scripts[name]?.trim().split(/\s+/) ?? null;
const TEST_VARS = { POSTGRES_PASSWORD: 'pw-for-the-test' };

/** The bot's roles, each named by what it runs: `npm start`, `npm run worker`, `npm run worker -- --train`. */
const ROLES = [
  { role: 'ingress', script: 'start', extra: [] as string[] },
  { role: 'worker', script: 'worker', extra: [] as string[] },
  { role: 'trainer', script: 'worker', extra: ['--train'] },
] as const;

/** The command a service runs: its `command`, else the CMD of the image its Dockerfile builds. */
function commandOf(svc: Service): string[] {
  if (Array.isArray(svc.command)) return svc.command;
  if (typeof svc.command === 'string') return svc.command.trim().split(/\s+/);
  const dockerfile = svc.build?.dockerfile;
  assert.ok(dockerfile, 'a service without a command builds an image whose CMD runs');
  return finalStage(parseDockerfile(dockerfile)).filter((i) => i.getKeyword() === 'CMD').map(argsOf).at(-1) ?? [];
}

function environmentOf(svc: Service): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.environment ?? {})) env[k] = v === null ? '' : interpolate(String(v), TEST_VARS).value;
  return env;
}

function mounts(svc: Service): { source: string; target: string }[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source, target] = v.split(':');
      return { source, target };
    }
    return { source: v.source ?? '', target: v.target ?? '' };
  });
}

function gpuDevices(svc: Service): Device[] {
  return svc.deploy?.resources?.reservations?.devices ?? [];
}

function dependsOn(svc: Service): Record<string, string> {
  if (Array.isArray(svc.depends_on)) return Object.fromEntries(svc.depends_on.map((s) => [s, 'service_started']));
  return Object.fromEntries(Object.entries(svc.depends_on ?? {}).map(([k, v]) => [k, v.condition ?? 'service_started']));
}

/** Every variable the program knows: loadConfig's schema, what src/ reads, what .env.example documents. */
function knownVariables(): Set<string> {
  const known = new Set(Object.keys(envSchema.shape));
  for (const f of listFiles('src', ['.ts'])) for (const n of envVarsReadBy(fs.readFileSync(f, 'utf8'))) known.add(n);
  for (const e of parseEnvExample(readRepoFile('.env.example'))) known.add(e.name);
  return known;
}

const VARIANTS = [
  { file: 'deploy/compose.scaled.yaml', gpu: true },
  { file: 'deploy/compose.scaled.cpu.yaml', gpu: false },
] as const;

for (const v of VARIANTS) {
  describe(v.file, () => {
    const compose = loadScaledCompose(v.file);
    const composeDir = path.dirname(path.join(repoRoot, v.file));
    /** The services of the bot (built from this repository), by role. */
    const byRole = (role: (typeof ROLES)[number]['role']): [string, Service] => {
      const found = Object.entries(compose.services).filter(([name]) => name === role);
      assert.equal(found.length, 1, `a "${role}" service`);
      return found[0];
    };
    const botServices = ROLES.map((r) => ({ ...r, entry: byRole(r.role) }));

    it('runs PostgreSQL from the official image, on a named volume at its data path, with a pg_isready healthcheck', () => {
      const db = Object.entries(compose.services).filter(([, s]) => /^(docker\.io\/)?(library\/)?postgres:/.test(s.image ?? ''));
      assert.equal(db.length, 1, 'one PostgreSQL service from the official image');
      const [, svc] = db[0];
      const major = Number(/^(?:docker\.io\/)?(?:library\/)?postgres:(\d+)/.exec(svc.image!)?.[1]);
      assert.ok(major >= 15, `a pinned major version (got ${svc.image})`);
      // 18+ images keep PGDATA in /var/lib/postgresql/<major>/docker and refuse a volume at .../data.
      const dataPath = major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data';
      const data = mounts(svc).find((m) => m.target === dataPath);
      assert.ok(data && /^[A-Za-z0-9][\w.-]*$/.test(data.source), `a named volume at ${dataPath}`);
      assert.ok(compose.volumes && data.source in compose.volumes, 'the volume is declared');
      const test = svc.healthcheck?.test;
      assert.ok(test && JSON.stringify(test).includes('pg_isready'), 'healthcheck runs pg_isready');
      const env = svc.environment ?? {};
      const password = String(env.POSTGRES_PASSWORD ?? '');
      assert.match(password, /^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/, 'the password comes from .env, required, never written in the file');
      assert.deepEqual(svc.ports ?? [], [], 'PostgreSQL is not published on the host');
    });

    it('each role runs the command of its npm script (`start`, `worker`, `worker -- --train`), node directly', () => {
      for (const { role, script, extra, entry: [, svc] } of botServices) {
        const scriptArgs = SCRIPT_ARGS(script);
        assert.ok(scriptArgs, `package.json has the "${script}" script that the ${role} runs`);
        assert.deepEqual(commandOf(svc), [...scriptArgs, ...extra], `the ${role} runs \`npm ${script === 'start' ? 'start' : `run ${script}`}${extra.length ? ` -- ${extra.join(' ')}` : ''}\`'s command`);
        const file = scriptArgs.find((a) => /\.(ts|js)$/.test(a));
        assert.ok(file && fs.existsSync(path.join(repoRoot, file)), `the ${role}'s entry ${file} exists`);
      }
    });

    it('each role builds an image of this repository and reads the repository .env', () => {
      for (const { role, entry: [, svc] } of botServices) {
        assert.ok(svc.build, `${role} has a build section`);
        assert.equal(path.resolve(composeDir, svc.build.context ?? '.'), repoRoot, `${role}: the context is the repository root`);
        const dockerfile = svc.build.dockerfile ?? 'Dockerfile';
        assert.ok(fs.existsSync(path.join(repoRoot, dockerfile)), `${role}: ${dockerfile} exists`);
        const wanted = v.gpu && role !== 'ingress' ? 'deploy/Dockerfile.gpu' : 'deploy/Dockerfile';
        assert.equal(dockerfile, wanted, `${role} builds ${wanted}`);
        const envFiles = [svc.env_file].flat().filter(Boolean) as string[];
        assert.deepEqual(envFiles.map((f) => path.resolve(composeDir, f)), [path.join(repoRoot, '.env')], `${role} reads the repository .env`);
        assert.ok(['always', 'unless-stopped', 'on-failure'].includes(svc.restart ?? ''), `${role} restarts by itself`);
      }
    });

    it('sets only variables the program knows, and loadConfig accepts each role\'s values in scaled mode', () => {
      const known = knownVariables();
      for (const { role, entry: [, svc] } of botServices) {
        const env = environmentOf(svc);
        assert.deepEqual(Object.keys(env).filter((k) => !known.has(k)), [], `${role}: variables the program does not know`);
        const config = loadConfig(env, { require: [] });
        assert.equal(config.DATABASE_URL, 'postgres://cvae:pw-for-the-test@db:5432/cvae', `${role}: DATABASE_URL reaches the db service`);
        assert.equal(config.DATA_DIR, '/data');
        if (role === 'ingress') {
          assert.equal(config.LOCAL_WORKER, false, 'the ingress decodes nothing');
          assert.equal(env.HOST, '0.0.0.0');
        } else {
          assert.equal(config.DISCORD_GATEWAY, false, `the ${role} never holds the Discord gateway`);
        }
      }
      const holders = botServices.filter(({ entry: [, svc] }) => loadConfig(environmentOf(svc), { require: [] }).DISCORD_GATEWAY === true);
      assert.deepEqual(holders.map((h) => h.role), ['ingress'], 'one process holds the Discord gateway');
      const [, worker] = byRole('worker');
      assert.ok(loadConfig(environmentOf(worker), { require: [] }).WORKER_CONCURRENCY >= 1);
      const [, ingress] = byRole('ingress');
      assert.ok(environmentOf(ingress).ADMISSION_MAX_WAIT_S, 'the ingress states its admission bound');
    });

    it('interpolates only POSTGRES_PASSWORD, required, which the deployment guide tells to set', () => {
      const text = readRepoFile(v.file);
      const names = new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]));
      assert.deepEqual([...names], ['POSTGRES_PASSWORD']);
      assert.throws(() => interpolate(String(byRole('ingress')[1].environment?.DATABASE_URL), {}), /POSTGRES_PASSWORD: set POSTGRES_PASSWORD/);
      assert.match(readRepoFile('deploy/README.md'), /POSTGRES_PASSWORD=/);
    });

    it(v.gpu ? 'workers and the trainer reserve one NVIDIA GPU each; the ingress and the database none' : 'reserves no GPU', () => {
      for (const [name, svc] of Object.entries(compose.services)) {
        const devices = gpuDevices(svc);
        if (v.gpu && (name === 'worker' || name === 'trainer')) {
          assert.equal(devices.length, 1, `${name} reserves a device`);
          assert.equal(devices[0].driver, 'nvidia');
          assert.equal(Number(devices[0].count), 1);
          assert.deepEqual(devices[0].capabilities, ['gpu']);
          assert.equal(environmentOf(svc).TF_FORCE_GPU_ALLOW_GROWTH, 'true', `${name} shares the GPU's memory`);
        } else {
          assert.deepEqual(devices, [], `${name} reserves no GPU`);
        }
      }
    });

    it('runs N generation workers and exactly one training worker', () => {
      const [, worker] = byRole('worker');
      assert.ok((worker.deploy?.replicas ?? 1) >= 2, 'several generation workers (deploy.replicas)');
      const [, trainer] = byRole('trainer');
      assert.equal(trainer.deploy?.replicas ?? 1, 1, 'one training worker');
    });

    it('every role mounts the one shared checkpoint volume at DATA_DIR/checkpoints', () => {
      const sources = new Set<string>();
      for (const { role, entry: [, svc] } of botServices) {
        const target = `${environmentOf(svc).DATA_DIR}/checkpoints`;
        const m = mounts(svc).find((x) => x.target === target);
        assert.ok(m, `${role} mounts ${target}`);
        sources.add(m.source);
      }
      assert.equal(sources.size, 1, 'the same volume for every role (registry.json lives there)');
      const [source] = sources;
      assert.ok(compose.volumes && source in compose.volumes, `the ${source} volume is declared`);
    });

    it('starts in order: database healthy, then the ingress healthy, then the workers', () => {
      const [dbName] = Object.entries(compose.services).find(([, s]) => (s.image ?? '').includes('postgres:'))!;
      const [, ingress] = byRole('ingress');
      assert.deepEqual(dependsOn(ingress), { [dbName]: 'service_healthy' });
      for (const role of ['worker', 'trainer'] as const) {
        assert.deepEqual(dependsOn(byRole(role)[1]), { [dbName]: 'service_healthy', ingress: 'service_healthy' }, `${role} waits for both`);
      }
      // A service waited for as healthy must have a healthcheck that is not disabled.
      for (const [name, svc] of Object.entries(compose.services)) {
        for (const [dep, condition] of Object.entries(dependsOn(svc))) {
          assert.ok(dep in compose.services, `${name} depends on a service of the file (${dep})`);
          if (condition !== 'service_healthy') continue;
          const target = compose.services[dep];
          const own = target.healthcheck;
          const image = target.build?.dockerfile ? finalStage(parseDockerfile(target.build.dockerfile)).some((i) => i.getKeyword() === 'HEALTHCHECK') : false;
          assert.ok(!own?.disable && (own?.test || image), `${dep} has a healthcheck for ${name} to wait on`);
        }
      }
    });

    it('the ingress publishes its HTTP port on loopback and its healthcheck asks /healthz on it', () => {
      const [, ingress] = byRole('ingress');
      const port = environmentOf(ingress).PORT;
      assert.ok(port, 'PORT is set');
      const published = (ingress.ports ?? []).map(String);
      assert.ok(published.includes(`127.0.0.1:${port}:${port}`), `127.0.0.1:${port}:${port} is published`);
      const test = ingress.healthcheck?.test;
      assert.ok(Array.isArray(test) && test[0] === 'CMD', 'exec-form healthcheck');
      assert.match(test.join(' '), new RegExp(`http://127\\.0\\.0\\.1:${port}/healthz`));
      // The same probe as the images' HEALTHCHECK (tested against a real server in dockerfiles.test.ts).
      const imageCheck = healthcheckCommand(finalStage(parseDockerfile('deploy/Dockerfile')).find((i) => i.getKeyword() === 'HEALTHCHECK')!);
      assert.equal(test[1], imageCheck?.[0]);
    });

    it('stop grace: the trainer outlasts the bot\'s wait for a training checkpoint, the others finish a batch', () => {
      for (const { role, entry: [, svc] } of botServices) {
        assert.equal(svc.stop_signal ?? 'SIGTERM', 'SIGTERM');
        const grace = durationSeconds(svc.stop_grace_period ?? '10s');
        assert.ok(grace >= (role === 'trainer' ? 121 : 30), `${role}: stop_grace_period ${svc.stop_grace_period}`);
      }
      if (v.gpu) {
        const imageEnv = envOf(finalStage(parseDockerfile('deploy/Dockerfile.gpu')));
        assert.equal(imageEnv.get('DATA_DIR'), '/data', 'the GPU image keeps its data under /data too');
      }
    });
  });
}

describe('deploy/README.md, the scaled deployment guide', () => {
  const readme = readRepoFile('deploy/README.md');
  const start = readme.indexOf('## Scaled deployment');
  const guide = readme.slice(start, readme.indexOf('\n## ', start + 1));

  it('documents the roles, their commands, each role\'s environment, the start order, backups and a database restart', () => {
    assert.ok(start >= 0, 'a "Scaled deployment" section');
    for (const text of ['npm start', 'npm run worker', 'npm run worker -- --train', 'deploy/compose.scaled.yaml', 'deploy/compose.scaled.cpu.yaml',
      '### Start order', 'pg_dump', 'What a database restart', '/discord/interactions', '/slack/events', '2,500 guilds', 'registry.json', 'NFS']) {
      assert.ok(guide.includes(text), `the guide mentions ${text}`);
    }
    const table = guide.split('\n').filter((l) => l.startsWith('| `'));
    for (const name of ['DATABASE_URL', 'LOCAL_WORKER', 'WORKER_CONCURRENCY', 'ADMISSION_MAX_WAIT_S', 'DISCORD_PUBLIC_KEY', 'DISCORD_GATEWAY']) {
      assert.ok(table.some((l) => l.startsWith(`| \`${name}\``)), `the environment table has ${name}`);
      assert.ok(name in envSchema.shape, `${name} is a variable loadConfig knows`);
    }
  });

  it('every compose file it runs exists', () => {
    const files = [...readme.matchAll(/docker compose [^\n]*?-f (\S+\.ya?ml)\b/g)].map((m) => m[1]);
    assert.ok(files.includes('deploy/compose.scaled.yaml'));
    for (const f of new Set(files)) assert.ok(fs.existsSync(path.join(repoRoot, f)), `${f} exists`);
  });
});

describe('the compose helpers of this file', () => {
  it('interpolate reads ${VAR}, ${VAR:-default} and fails ${VAR:?message} when unset', () => {
    assert.deepEqual(interpolate('a ${X} b ${Y:-dflt}', { X: '1' }), { value: 'a 1 b dflt', names: ['X', 'Y'] });
    assert.throws(() => interpolate('${P:?set P}', {}), /P: set P/);
    assert.equal(interpolate('${P:?set P}', { P: 'x' }).value, 'x');
  });

  it('merge keys are resolved as Compose resolves them', () => {
    const doc = parseDocument('x: &a\n  k: 1\ns:\n  <<: *a\n  j: 2\n', { merge: true }).toJS() as { s: Record<string, number> };
    assert.deepEqual(doc.s, { k: 1, j: 2 });
  });
});
