/**
 * .env.example documents every variable the program reads (scanned from src/, and the env schema of
 * src/config/env.ts when it exists) and every variable the deploy files set, in a format that both
 * Docker Compose (`env_file`) and systemd (`EnvironmentFile`) read the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { envOf, envVarsReadBy, finalStage, listFiles, parseDockerfile, parseEnvExample, parseUnit, readRepoFile, repoRoot, upperCaseKeys } from './helpers.js';

/** Variables that are not the operator's to set: set by Node's test runner, by CI, or plumbing of the images. */
const NOT_CONFIGURATION = new Set(['NODE_TEST_CONTEXT', 'NODE_ENV', 'CI', 'HOME', 'PATH', 'TMPDIR', 'DEBIAN_FRONTEND', 'NPM_CONFIG_UPDATE_NOTIFIER']);

/** The variables the deployment guide promises to document. */
const PROMISED = [
  'DISCORD_TOKEN', 'DISCORD_APPLICATION_ID', 'DISCORD_GUILD_ID', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN',
  'SLACK_PORT', 'ADMIN_USER_IDS', 'DATA_DIR', 'CLIP_MODEL', 'CLIP_QUANTIZED', 'HF_ENDPOINT', 'LOG_LEVEL', 'DISCORD_API_URL',
  'SLACK_API_URL', 'TFJS_BACKEND', 'PORT', 'SAMPLER_ENGINE', 'TF_FORCE_GPU_ALLOW_GROWTH',
];

const text = readRepoFile('.env.example');
const entries = parseEnvExample(text);
const documented = new Set(entries.map((e) => e.name));

function missing(names: Iterable<string>): string[] {
  return [...names].filter((n) => !documented.has(n) && !NOT_CONFIGURATION.has(n)).sort();
}

test('.env.example: each variable once, each with a comment saying what it does', () => {
  const seen = new Map<string, number>();
  for (const e of entries) {
    assert.ok(!seen.has(e.name), `${e.name} appears once (lines ${seen.get(e.name)} and ${e.line})`);
    seen.set(e.name, e.line);
    assert.ok(e.doc.join(' ').length >= 15, `${e.name} (line ${e.line}) has a comment above it`);
  }
  assert.deepEqual(missing(PROMISED), []);
});

test('.env.example: plain KEY=VALUE lines that compose and systemd read alike, no secrets filled in', () => {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) {
      const assignment = /^#\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      if (assignment) assert.ok(!/\s#/.test(assignment[2]), `line ${i + 1}: no comment after a value`);
      return;
    }
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    assert.ok(m, `line ${i + 1} is KEY=VALUE (no export, no spaces around =): ${line}`);
    assert.ok(!/\s#/.test(m[2]), `line ${i + 1}: no comment after a value`);
    assert.ok(!/^["']/.test(m[2]), `line ${i + 1}: unquoted value`);
  });
  for (const e of entries.filter((x) => /TOKEN|SECRET/.test(x.name))) {
    assert.equal(e.value, '', `${e.name} is left empty in the example`);
  }
  const port = entries.find((e) => e.name === 'PORT');
  assert.equal(port?.value, '8787', 'the documented default HTTP port');
});

test('.env.example documents every environment variable read under src/', () => {
  const read = new Set<string>();
  const files = listFiles('src', ['.ts', '.js', '.mts']);
  assert.ok(files.length > 0);
  for (const f of files) for (const n of envVarsReadBy(fs.readFileSync(f, 'utf8'))) read.add(n);
  assert.ok(read.has('DATA_DIR') && read.has('LOG_LEVEL'), 'the scan finds the variables of src/paths.ts and src/log.ts');
  assert.deepEqual(missing(read), [], 'variables read in src/ but missing from .env.example');
});

test('.env.example documents every variable of the env schema (src/config/env.ts)', () => {
  const file = path.join(repoRoot, 'src/config/env.ts');
  assert.ok(fs.existsSync(file), 'src/config/env.ts exists');
  const source = fs.readFileSync(file, 'utf8');
  const keys = new Set([...upperCaseKeys(source), ...envVarsReadBy(source)]);
  assert.ok(keys.size > 0, 'the schema names variables');
  assert.deepEqual(missing(keys), []);
});

test('.env.example documents every variable the Dockerfiles, compose files and systemd unit set', () => {
  const set = new Set<string>();
  for (const f of ['deploy/Dockerfile', 'deploy/Dockerfile.gpu']) for (const k of envOf(finalStage(parseDockerfile(f))).keys()) set.add(k);
  for (const f of ['deploy/compose.yaml', 'deploy/compose.cpu.yaml', 'deploy/compose.scaled.yaml', 'deploy/compose.scaled.cpu.yaml']) {
    const compose = parseDocument(readRepoFile(f), { merge: true }).toJS() as { services: Record<string, { build?: unknown; environment?: Record<string, unknown> }> };
    // The bot's services (built from this repository); PostgreSQL's variables are its image's.
    for (const svc of Object.values(compose.services).filter((x) => x.build)) for (const k of Object.keys(svc.environment ?? {})) set.add(k);
  }
  const unit = parseUnit(readRepoFile('deploy/cvae-bot.service'));
  for (const v of unit.get('Service')?.get('Environment') ?? []) set.add(v.split('=')[0]);
  assert.ok(set.has('TF_FORCE_GPU_ALLOW_GROWTH') && set.has('DATA_DIR') && set.has('DATABASE_URL') && set.has('WORKER_CONCURRENCY'));
  assert.deepEqual(missing(set), []);
});

test('the variable scanner finds process.env reads and env helpers with literal names', () => {
  const src = "const a = process.env.FOO_BAR; const b = process.env['BAZ']; envFlag('QUX_1'); readEnv(\"ZED\"); process.env[name]; other('NOPE');";
  assert.deepEqual([...envVarsReadBy(src)].sort(), ['BAZ', 'FOO_BAR', 'QUX_1', 'ZED']);
  const example = parseEnvExample('# What A does here.\n# A=1\n\n# What B and C do.\nB=\n# C=x\n');
  assert.deepEqual(example.map((e) => [e.name, e.value, e.commentedOut, e.doc.join(' ')]), [
    ['A', '1', true, 'What A does here.'],
    ['B', '', false, 'What B and C do.'],
    ['C', 'x', true, 'What B and C do.'],
  ]);
});
