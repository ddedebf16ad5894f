import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { PassThrough } from 'node:stream';
import { readCheckpointMeta } from '../../src/model/checkpoint.js';
import { runTrain } from '../../src/cli/commands/train.js';
import { repoRoot } from '../../src/paths.js';
import { parseEventLine, type TrainingEvent } from '../../src/training/events.js';

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'train-cli-test-'));
process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));

/** Runs `train` as a child process; `onEvent` may return 'SIGTERM' to send it that signal. */
function runCli(args: string[], onEvent?: (e: TrainingEvent) => NodeJS.Signals[] | void) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'train', ...args], {
    cwd: repoRoot,
    env: { ...process.env, DATA_DIR: path.join(tmpRoot, 'data'), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const events: TrainingEvent[] = [];
  const lines: string[] = [];
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    const e = parseEventLine(line);
    if (!e) return;
    events.push(e);
    for (const signal of onEvent?.(e) ?? []) child.kill(signal);
  });
  return new Promise<{ code: number | null; events: TrainingEvent[]; lines: string[]; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, events, lines, stderr }));
  });
}

test('train --json-events prints one parseable event per line, ending in done', async () => {
  const out = path.join(tmpRoot, 'run1');
  const r = await runCli(['--preset', 'tiny', '--synthetic', '32', '--epochs', '2', '--json-events', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.lines.every((l) => parseEventLine(l) !== null), `stdout holds non-event lines: ${r.lines.filter((l) => !parseEventLine(l)).join('\n')}`);
  const types = r.events.map((e) => e.type);
  assert.equal(types[0], 'start');
  assert.equal(types.filter((t) => t === 'epoch').length, 2);
  const done = r.events.at(-1)!;
  assert.ok(done.type === 'done');
  assert.equal(done.reason, 'completed');
  assert.equal(done.epochsCompleted, 2);
  assert.ok(existsSync(path.join(done.checkpointDir, 'meta.json')));
  const start = r.events[0];
  assert.ok(start.type === 'start');
  assert.equal(start.datasetFingerprint, 'synthetic-random:32:0');
});

test('SIGTERM (also relayed twice, as npm does) stops the run, saves a checkpoint and ends with done(stopped)', async () => {
  const out = path.join(tmpRoot, 'run2');
  const r = await runCli(['--preset', 'tiny', '--synthetic', '32', '--epochs', '50', '--json-events', '--out', out], (e) =>
    e.type === 'step' && e.step === 2 ? ['SIGTERM', 'SIGINT'] : undefined,
  );
  assert.equal(r.code, 0, r.stderr);
  const done = r.events.at(-1)!;
  assert.ok(done.type === 'done', `last event ${JSON.stringify(done)}`);
  assert.equal(done.reason, 'stopped');
  assert.ok(done.step >= 2 && done.step < 50 * 4);
  assert.ok(existsSync(path.join(out, 'last', 'meta.json')));
  assert.ok(existsSync(path.join(out, 'last', 'optimizer.json')));
});

test('bad arguments give a clear error and exit code 1', async () => {
  const r = await runCli(['--preset', 'tiny', '--epochs', '1', '--json-events', '--out', path.join(tmpRoot, 'run3')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--dataset DIR .* or --synthetic N/);
});

test('in process: default run folder under DATA_DIR/checkpoints, --resume finds the newest run of the preset', async () => {
  const saved = process.env.DATA_DIR;
  process.env.DATA_DIR = path.join(tmpRoot, 'inproc');
  try {
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (d: Buffer) => (text += d.toString()));
    const out = { stdout, stderr: new PassThrough().resume() };
    const embFile = path.join(tmpRoot, 'prompts.json');
    writeFileSync(embFile, JSON.stringify([Array.from({ length: 512 }, (_, i) => (i === 0 ? 1 : 0)), Array.from({ length: 512 }, (_, i) => (i === 1 ? 1 : 0))]));
    await runTrain({ preset: 'tiny', synthetic: 12, epochs: 1, seed: 5, sampleEmbeddings: embFile }, out);
    const first = /resume point: (.*)\n/.exec(text)?.[1];
    assert.ok(first && first.startsWith(path.join(tmpRoot, 'inproc', 'checkpoints', 'tiny-')), text);
    const samples = JSON.parse(readFileSync(path.join(path.dirname(first), 'samples', 'embeddings.json'), 'utf8')) as { label: string }[];
    assert.deepEqual(samples.map((s) => s.label), ['prompts.json #1', 'prompts.json #2']);
    await assert.rejects(runTrain({ preset: 'tiny', synthetic: 12, epochs: 1, out: path.dirname(first) }, out), /already holds a training run/);
    text = '';
    await runTrain({ preset: 'tiny', synthetic: 12, epochs: 2, resume: true }, out);
    assert.match(text, /^finished: 2 epochs/);
    const meta = await readCheckpointMeta(first);
    assert.equal(meta.epoch, 2);
    assert.equal(meta.datasetFingerprint, 'synthetic-random:12:5'); // the run's seed was reused for the synthetic data
  } finally {
    if (saved === undefined) delete process.env.DATA_DIR;
    else process.env.DATA_DIR = saved;
  }
});
