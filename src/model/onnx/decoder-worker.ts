/**
 * Worker-thread side of the ONNX decoder sessions: one worker per process hosts every session and runs them
 * off the main thread (onnxruntime-node's `run` is synchronous on the calling thread, which would stall the
 * bot's event loop). It says `ready` once onnxruntime-node has loaded. Messages: see decoder-session.ts,
 * which also spawns a new worker when this one dies or hangs.
 */
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { WorkerReady, WorkerRequest, WorkerResponse } from './decoder-session.js';

const port = parentPort;
if (!port) throw new Error('decoder-worker.ts must run in a worker thread');

const sessions = new Map<number, ort.InferenceSession>();
const post = (msg: WorkerResponse | WorkerReady, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

// Requests are handled one at a time, in order: ONNX Runtime already uses every intra-op thread per run.
let queue: Promise<void> = Promise.resolve();

async function handle(req: WorkerRequest): Promise<void> {
  try {
    if (req.type === 'open') {
      const session =
        typeof req.model === 'string' ? await ort.InferenceSession.create(req.model, req.options) : await ort.InferenceSession.create(req.model, req.options);
      sessions.set(req.sid, session);
      post({ type: 'opened', id: req.id, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
    } else if (req.type === 'close') {
      const session = sessions.get(req.sid);
      sessions.delete(req.sid);
      await session?.release();
      post({ type: 'closed', id: req.id });
    } else {
      const session = sessions.get(req.sid);
      if (!session) throw new Error('the session is closed');
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
      const out = (await session.run(feeds))[req.output];
      const data = out.data as Uint8Array | Float32Array;
      post({ type: 'result', id: req.id, dtype: out.type, dims: [...out.dims], data }, [data.buffer as ArrayBuffer]);
    }
  } catch (err) {
    post({ type: 'error', id: req.id, message: (err as Error).message });
  }
}

port.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req));
});

post({ type: 'ready' });
