/**
 * The ONNX decoder worker comes back: a worker killed mid-batch fails that batch with a message for the user
 * and the next request succeeds in a new worker (the sessions are opened again there); a run that hangs past
 * the timeout fails politely and recycles the worker; /healthz reports the decoder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { isUserError } from '../../../src/errors.js';
import { DecoderWorkerHost, decoderWorkerHealth, onnxRunTimeoutMs, sharedDecoderHost } from '../../../src/model/onnx/decoder-session.js';
import { OnnxSampler } from '../../../src/model/onnx/onnx-sampler.js';
import type { RunningApp } from '../../../src/app.js';
import type { LoadedSampler, SamplerProvider } from '../../../src/bot/core/deps.js';
import { addTinyModel, command, request, startTestApp, tempDataDir, waitFor } from '../../app/helpers.js';

/** A stand-in worker speaking the decoder protocol; `hang`: never answers a run. */
const STUB = `
const { parentPort, workerData } = require('node:worker_threads');
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', (req) => {
  if (req.type === 'open') parentPort.postMessage({ type: 'opened', id: req.id, inputNames: ['z'], outputNames: ['image'] });
  else if (req.type === 'close') parentPort.postMessage({ type: 'closed', id: req.id });
  else if (!workerData.hang) parentPort.postMessage({ type: 'result', id: req.id, dtype: 'uint8', dims: [1], data: new Uint8Array([workerData.generation]) });
});`;

function feeds() {
  return { z: { data: new Float32Array(4), dims: [1, 4] } };
}

describe('decoder worker host', () => {
  it('fails a hung run politely after the timeout, recycles the worker and opens the session again in a new one', async () => {
    const workers: Worker[] = [];
    const host = new DecoderWorkerHost({
      runTimeoutMs: 300,
      respawnDelayMs: () => 10,
      spawn: () => {
        const generation = workers.length + 1;
        const w = new Worker(STUB, { eval: true, workerData: { generation, hang: generation === 1 } });
        workers.push(w);
        return w;
      },
    });
    const { sid } = await host.open('model.onnx', {});
    const firstExit = new Promise((r) => workers[0].once('exit', r));
    const t0 = Date.now();
    await assert.rejects(host.run(sid, feeds(), 'image'), (err: Error) => {
      assert.ok(isUserError(err), 'a message meant for the user');
      assert.match(err.message, /took longer than 300 ms and was restarted\. Please try again/);
      return true;
    });
    const waited = Date.now() - t0;
    assert.ok(waited >= 290 && waited < 5_000, `failed after the timeout (${waited} ms)`);
    await firstExit; // the hung worker was terminated
    assert.equal(host.status().restarts, 1);
    assert.match(host.status().lastFailure?.reason ?? '', /hung for 300 ms/);
    const out = await host.run(sid, feeds(), 'image');
    assert.deepEqual([...out.data], [2], 'answered by the second worker');
    assert.equal(workers.length, 2);
    assert.equal(host.status().state, 'ready');
    assert.equal(decoderWorkerHealth(host).ok, true);
    await host.close(sid);
    for (const w of workers) await w.terminate();
  });

  it('reports a worker that keeps dying as not healthy', async () => {
    const host = new DecoderWorkerHost({
      respawnDelayMs: () => 60_000,
      spawn: () => new Worker('process.exit(3)', { eval: true }),
    });
    await assert.rejects(host.open('model.onnx', {}), (err: Error) => isUserError(err) && /stopped unexpectedly/.test(err.message));
    assert.equal(host.status().restarts, 1);
    assert.equal(host.status().lastFailure?.reason, 'worker exited with code 3');
  });

  it('validates ONNX_RUN_TIMEOUT_MS', () => {
    assert.equal(onnxRunTimeoutMs({}), 60_000);
    assert.equal(onnxRunTimeoutMs({ ONNX_RUN_TIMEOUT_MS: '1500' }), 1500);
    assert.throws(() => onnxRunTimeoutMs({ ONNX_RUN_TIMEOUT_MS: 'soon' }), /ONNX_RUN_TIMEOUT_MS must be a whole number/);
    assert.throws(() => onnxRunTimeoutMs({ ONNX_RUN_TIMEOUT_MS: '5' }), /from 100/);
  });
});

describe('ONNX sampler on the real worker', () => {
  let dir: string;
  let dataDir: string;

  before(async () => {
    dataDir = tempDataDir('respawn-');
    dir = await addTinyModel(dataDir, 'tiny-respawn');
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('decodes again, with the same images, after its worker is killed mid-batch', async () => {
    const sampler = await OnnxSampler.fromCheckpoint(dir, { threads: 1, worker: true });
    const emb = () => new Float32Array(sampler.embeddingDim).fill(0.1);
    const [expected] = await sampler.sample([emb()], [3]);
    const worker = sharedDecoderHost().worker;
    assert.ok(worker, 'the session lives in a worker');
    // The worker dies with the batch sent to it (terminate first, so it cannot answer before it goes).
    const dying = worker.terminate();
    const doomed = sampler.sample(Array.from({ length: 8 }, emb), [1, 2, 3, 4, 5, 6, 7, 8]);
    await dying;
    await assert.rejects(doomed, (err: Error) => isUserError(err) && /stopped unexpectedly/.test(err.message));
    const [again] = await sampler.sample([emb()], [3]);
    assert.deepEqual(again, expected, 'same seed, same image, from the new worker');
    assert.notEqual(sharedDecoderHost().worker, worker);
    assert.equal(decoderWorkerHealth().ok, true);
    sampler.dispose();
  });
});

describe('the bot after its decoder worker dies', () => {
  let dataDir: string;
  let app: RunningApp;
  let killNextBatch = false;

  /** Kills the decoder worker right after a batch was sent to it, once armed. */
  class Killing implements SamplerProvider {
    constructor(private readonly inner: SamplerProvider) {}
    async get(name?: string): Promise<LoadedSampler> {
      const s = await this.inner.get(name);
      return {
        ...s,
        sample: (embeddings, seeds) => {
          if (killNextBatch) {
            // The worker dies with this batch sent to it (terminated first, so it cannot answer before it goes).
            killNextBatch = false;
            void sharedDecoderHost().worker?.terminate();
          }
          return s.sample(embeddings, seeds);
        },
      };
    }
  }

  before(async () => {
    dataDir = tempDataDir('respawn-app-');
    await addTinyModel(dataDir, 'tiny-app');
    app = await startTestApp(dataDir, {}, { decorateSamplers: (inner: SamplerProvider) => new Killing(inner) });
  });
  after(async () => {
    await app?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails the batch in flight politely, and the next /imagine succeeds', async () => {
    assert.equal((await command(app, '/imagine cows in snow --seed 1')).state, 'done');
    killNextBatch = true;
    const failed = await command(app, '/imagine sheep on a hill --seed 2');
    assert.equal(failed.state, 'failed');
    assert.match(failed.text, /image decoder stopped unexpectedly.*try again/);
    const next = await command(app, '/imagine sheep on a hill --seed 2');
    assert.equal(next.state, 'done', next.text);
    assert.equal(next.generation?.model, 'tiny-app');
    const health = await waitFor(async () => {
      const r = await request(app, 'GET', '/healthz');
      return r.status === 200 ? r : null;
    }, 'healthz 200');
    assert.equal(health.json.checks.decoder.ok, true);
    assert.match(health.json.checks.decoder.detail, /worker ready.*restart\(s\), last: worker exited with code 1/);
  });
});
