/**
 * One training run at a time: concurrent /train start calls (on one runner, or on two runners sharing the
 * host's lock file) spawn exactly one trainer; the lock is taken atomically (exclusive create); a lock of a
 * dead process, or of an earlier process that had this pid, is taken over; a live holder's is respected.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { TrainingRunner } from '../../../src/bot/core/training-runner.js';
import { openSqliteStore, type BotStore } from '../../../src/bot/core/store/index.js';
import type { ModelCatalog } from '../../../src/bot/core/deps.js';
import type { Actor, TrainingProgressSink } from '../../../src/bot/core/types.js';
import { isUserError } from '../../../src/errors.js';
import { tempDataDir } from '../../app/helpers.js';

/** A stand-in trainer: records that it started, then waits for SIGTERM. */
const TRAINER = `
const fs = require('node:fs');
fs.appendFileSync(process.env.TRAINER_MARKS, process.pid + '\\n');
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);`;

const actor: Actor = { platform: 'web', workspaceId: 'local', channelId: 'c', userId: 'local' };
const sink: TrainingProgressSink = { update: async () => {}, image: async () => {} };
const catalog: ModelCatalog = {
  list: async () => [], register: async () => {}, activate: async () => {},
  resolve: async () => { throw new Error('none'); },
};

describe('training lock', () => {
  let dir: string;
  let store: BotStore;
  let marks: string;
  let lockFile: string;
  const runners: TrainingRunner[] = [];
  const holders: ChildProcess[] = [];

  function runner(): TrainingRunner {
    const r = new TrainingRunner({
      runs: store.runs, catalog, runsDir: path.join(dir, 'runs'), datasetsDir: path.join(dir, 'datasets'), lockFile,
      extraArgs: ['--synthetic', '8'], command: { file: process.execPath, args: ['-e', TRAINER] },
      env: { ...process.env, TRAINER_MARKS: marks }, killAfterMs: 5_000,
    });
    runners.push(r);
    return r;
  }

  /** Trainer processes started so far (each appends its pid once it runs). */
  async function trainersStarted(atLeast: number): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const n = fs.existsSync(marks) ? fs.readFileSync(marks, 'utf8').trim().split('\n').filter(Boolean).length : 0;
      if (n >= atLeast) {
        await new Promise((r) => setTimeout(r, 300)); // time for a second one to show up, if any
        return fs.readFileSync(marks, 'utf8').trim().split('\n').filter(Boolean).length;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return 0;
  }

  beforeEach(() => {
    dir = tempDataDir('train-lock-');
    store = openSqliteStore(path.join(dir, 'bot.sqlite'));
    marks = path.join(dir, 'trainers.txt');
    lockFile = path.join(dir, 'training.lock');
  });
  afterEach(async () => {
    for (const r of runners.splice(0)) {
      await r.stop();
      await r.idle();
    }
    for (const h of holders.splice(0)) h.kill('SIGKILL');
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two concurrent starts on one runner: one run, one trainer, the other refused', async () => {
    const r = runner();
    const results = await Promise.allSettled([r.start(actor, { preset: 'tiny' }, sink), r.start(actor, { preset: 'tiny' }, sink)]);
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1, JSON.stringify(results.map((x) => x.status)));
    const refused = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isUserError(refused.reason), String(refused.reason));
    assert.match(refused.reason.message, /already starting or going/);
    assert.equal(await trainersStarted(1), 1);
    assert.equal((await store.runs.recent(10)).length, 1);
    assert.match(await r.stop(), /Stopping training run/);
    await r.idle();
    assert.equal(fs.existsSync(lockFile), false, 'the lock is released when the run ends');
  });

  it('two runners sharing the host lock (two bot processes): one run', async () => {
    const [a, b] = [runner(), runner()];
    const results = await Promise.allSettled([a.start(actor, { preset: 'tiny' }, sink), b.start(actor, { preset: 'tiny' }, sink)]);
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1, JSON.stringify(results.map((x) => x.status)));
    assert.equal(await trainersStarted(1), 1);
    assert.equal([a, b].filter((x) => x.busy).length, 1);
  });

  it('respects a live holder and takes over a dead one or a lock an earlier process with this pid left', async () => {
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    holders.push(holder);
    fs.writeFileSync(lockFile, JSON.stringify({ pid: holder.pid, process: 'another-process', id: 'x' }));
    await assert.rejects(runner().start(actor, { preset: 'tiny' }, sink), /another bot process holds the lock/);
    fs.writeFileSync(lockFile, String(holder.pid)); // the older format: a bare pid
    await assert.rejects(runner().start(actor, { preset: 'tiny' }, sink), /another bot process holds the lock/);

    fs.writeFileSync(lockFile, JSON.stringify({ pid: process.pid, process: 'the-process-before-a-restart', id: 'y' }));
    const r = runner();
    assert.match(await r.start(actor, { preset: 'tiny' }, sink), /Started training run/);
    await r.stop();
    await r.idle();

    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((res) => dead.once('exit', res));
    fs.writeFileSync(lockFile, JSON.stringify({ pid: dead.pid, process: 'gone', id: 'z' }));
    assert.match(await runner().start(actor, { preset: 'tiny' }, sink), /Started training run/);
  });
});
