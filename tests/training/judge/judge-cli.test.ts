import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../../src/paths.js';
import { qualityCli } from '../../../src/training/judge/quality-cli.js';
import { buildProgram } from '../../../src/cli/index.js';

function captured() {
  let stdout = '';
  let stderr = '';
  return {
    io: { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

const MISSING = path.join(repoRoot, 'tmp', 'no-such-judge-folder');

test('quality: a missing judge is one error line that says how to train one, no stack trace', async () => {
  const out = captured();
  const code = await qualityCli(['--judge', MISSING], out.io);
  assert.equal(code, 1);
  assert.match(out.stderr, /^error: No scene judge in .*no-such-judge-folder \(no judge\.json there\)/);
  assert.match(out.stderr, /npm run cli -- judge train --out models\/scene-judge/);
  assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(out.stdout, '');
});

test('quality: a missing checkpoint is one error line naming the folder', async () => {
  const out = captured();
  const judgeDir = mkdtempSync(path.join(os.tmpdir(), 'judge-cli-'));
  writeFileSync(path.join(judgeDir, 'judge.json'), '{}');
  const code = await qualityCli(['--checkpoint', path.join(repoRoot, 'tmp', 'no-such-checkpoint'), '--judge', judgeDir], out.io);
  rmSync(judgeDir, { recursive: true, force: true });
  assert.equal(code, 1);
  assert.match(out.stderr, /^error: No checkpoint in .*no-such-checkpoint \(no meta\.json there\)/);
  assert.doesNotMatch(out.stderr, /\n\s+at /);
});

test('quality: bad numbers are refused before anything loads', async () => {
  const out = captured();
  assert.equal(await qualityCli(['--seeds', 'two'], out.io), 1);
  assert.match(out.stderr, /--seeds must be a whole number/);
});

test('the script entry prints the missing-judge error and exits 1', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'quality-check.ts'), '--judge', MISSING], {
    cwd: repoRoot, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /error: No scene judge in/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('the CLI has `judge train` and checks its numbers', async () => {
  const program = buildProgram();
  const judge = program.commands.find((c) => c.name() === 'judge');
  assert.ok(judge, 'judge command registered');
  const train = judge.commands.find((c) => c.name() === 'train');
  assert.ok(train);
  assert.deepEqual(
    train.options.map((o) => o.long).sort(),
    ['--epochs', '--held-out', '--images', '--json', '--out', '--seed'],
  );
  await assert.rejects(
    program.parseAsync(['node', 'cvae', 'judge', 'train', '--out', MISSING, '--images', 'many']),
    /--images must be a whole number between 32 and 1000000, got "many"/,
  );
});
