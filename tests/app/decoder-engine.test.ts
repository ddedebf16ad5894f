/**
 * The real app on this CPU host (no tfjs-node-gpu, no ONNX CUDA provider) says which engine decodes: ONNX
 * Runtime on the CPU, in /healthz (the `engine` check) and in /metrics (`cvae_decoder_engine_info`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { addTinyModel, request, startTestApp, tempDataDir } from './helpers.js';

describe('decoder engine reporting', () => {
  it('reports onnx on cpu, with the reason, in /healthz and /metrics', async () => {
    delete process.env.SAMPLER_ENGINE;
    const dataDir = tempDataDir('web-engine-');
    await addTinyModel(dataDir, 'tiny-engine');
    const app = await startTestApp(dataDir);
    try {
      const health = await request(app, 'GET', '/healthz');
      assert.equal(health.status, 200, JSON.stringify(health.json));
      const engine = health.json.checks.engine as { ok: boolean; detail: string };
      assert.equal(engine.ok, true);
      assert.match(engine.detail, /^onnx on cpu \(cpu execution provider\): no GPU found: TensorFlow\.js: .+; ONNX Runtime CUDA: .+/);

      const metrics = await request(app, 'GET', '/metrics');
      assert.equal(metrics.status, 200);
      const lines = metrics.body.toString('utf8').split('\n').filter((l) => l.startsWith('cvae_decoder_engine_info'));
      assert.deepEqual(lines, ['cvae_decoder_engine_info{engine="onnx",device="cpu"} 1']);
    } finally {
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
