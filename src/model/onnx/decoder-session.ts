/**
 * ONNX Runtime sessions that run in a worker thread, so decoding never blocks the main event loop
 * (onnxruntime-node 1.14's `run` is synchronous on its calling thread). The onnxruntime-node addon fails to
 * load in a second worker thread ("Module did not self-register"), so one shared worker hosts every session
 * of the process (the main thread may use onnxruntime-node too, e.g. transformers.js for CLIP); it keeps the
 * process alive only while a request is in flight. `InProcessDecoderSession` runs on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';

/** A request to the worker. */
export type WorkerRequest =
  | { type: 'open'; id: number; sid: number; model: string | Uint8Array; options: Ort.InferenceSession.SessionOptions }
  | { type: 'run'; id: number; sid: number; feeds: Record<string, { data: Float32Array; dims: number[] }>; output: string }
  | { type: 'close'; id: number; sid: number };

/** A reply from the worker (`id` of the request). */
export type WorkerResponse =
  | { type: 'opened'; id: number; inputNames: string[]; outputNames: string[] }
  | { type: 'closed'; id: number }
  | { type: 'result'; id: number; dtype: string; dims: number[]; data: Uint8Array | Float32Array }
  | { type: 'error'; id: number; message: string };

/** The result of a run: one output tensor's type, shape and data. */
export interface SessionOutput {
  dtype: string;
  dims: number[];
  data: Uint8Array | Float32Array;
}

/** Float32 inputs of a run, by name. */
export type SessionFeeds = Record<string, { data: Float32Array; dims: number[] }>;

type Distributive<T> = T extends unknown ? Omit<T, 'id'> : never;

const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./decoder-worker${fromSource ? '.ts' : '.js'}`, import.meta.url);

/**
 * Starts the worker. Run from TypeScript sources (under tsx), the entry is a tiny script that registers
 * tsx's loader in the worker and then imports the .ts module: Node 20 does not carry the main thread's
 * loader hooks into workers.
 */
function startWorker(): Worker {
  if (!fromSource) return new Worker(workerUrl);
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(workerUrl.href);
  return new Worker(`import(${api}).then((tsx) => { tsx.register(); return import(${entry}); });`, { eval: true });
}

/** The process-wide worker and its pending requests. */
class SharedWorker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.on('message', (msg: WorkerResponse) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (!this.pending.size) worker.unref();
      if (msg.type === 'error') p.reject(new Error(`ONNX Runtime: ${msg.message}`));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the ONNX decoder worker exited (code ${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  request(req: Distributive<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<WorkerResponse> {
    const worker = this.ensure();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...req, id }, transfer);
    });
  }
}

let shared: SharedWorker | null = null;
let nextSid = 1;

/** An ONNX Runtime session in the shared worker thread. */
export class WorkerDecoderSession {
  private closed = false;

  private constructor(
    private readonly worker: SharedWorker,
    private readonly sid: number,
    readonly inputNames: string[],
    readonly outputNames: string[],
  ) {}

  /** Creates a session in the worker; rejects when ONNX Runtime cannot load the model. */
  static async open(model: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<WorkerDecoderSession> {
    shared ??= new SharedWorker();
    const sid = nextSid++;
    const reply = await shared.request({ type: 'open', sid, model, options });
    if (reply.type !== 'opened') throw new Error(`unexpected reply ${reply.type} from the ONNX decoder worker`);
    return new WorkerDecoderSession(shared, sid, reply.inputNames, reply.outputNames);
  }

  /** Runs the session on float32 inputs (their buffers are transferred: do not reuse them); resolves with the named output. */
  async run(feeds: SessionFeeds, output: string): Promise<SessionOutput> {
    if (this.closed) throw new Error('the ONNX decoder session is closed');
    const transfer = Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer);
    const reply = await this.worker.request({ type: 'run', sid: this.sid, feeds, output }, transfer);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type} from the ONNX decoder worker`);
    return { dtype: reply.dtype, dims: reply.dims, data: reply.data };
  }

  /** Frees the session in the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.request({ type: 'close', sid: this.sid }).catch(() => undefined);
  }
}

/** A session on the calling thread (blocks it while running). */
export class InProcessDecoderSession {
  private constructor(
    private readonly ort: typeof Ort,
    private session: Ort.InferenceSession | null,
  ) {}

  get inputNames(): readonly string[] {
    return this.session?.inputNames ?? [];
  }

  get outputNames(): readonly string[] {
    return this.session?.outputNames ?? [];
  }

  /** Creates the session; rejects when ONNX Runtime cannot load the model. */
  static async open(ort: typeof Ort, model: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<InProcessDecoderSession> {
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
    return new InProcessDecoderSession(ort, session);
  }

  async run(feeds: SessionFeeds, output: string): Promise<SessionOutput> {
    if (!this.session) throw new Error('the ONNX decoder session is closed');
    const tensors: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) tensors[name] = new this.ort.Tensor('float32', t.data, t.dims);
    const out = (await this.session.run(tensors))[output];
    return { dtype: out.type, dims: [...out.dims], data: out.data as Uint8Array | Float32Array };
  }

  /** Drops the session (onnxruntime-node 1.14 frees it when collected). */
  async close(): Promise<void> {
    this.session = null;
  }
}

/** Either kind of decoder session. */
export type DecoderSession = WorkerDecoderSession | InProcessDecoderSession;
