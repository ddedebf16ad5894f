/**
 * ONNX Runtime sessions that run in a worker thread, so decoding never blocks the main event loop
 * (onnxruntime-node's `run` is synchronous on its calling thread). One worker per process hosts every session
 * (the {@link DecoderWorkerHost}); it keeps the process alive only while a request is in flight. The host
 * survives its worker: a worker that dies (a crash, an out-of-memory kill) fails the requests it held with a
 * message for the user and is spawned again, and the sessions it held are opened again in the new one on
 * their next run; a run that hangs past `ONNX_RUN_TIMEOUT_MS` fails the same way and recycles the worker.
 * (onnxruntime-node 1.14 could not load in a second worker thread, "Module did not self-register"; current
 * releases can, which is what makes the respawn possible.) `InProcessDecoderSession` runs on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import { UserError } from '../../errors.js';
import { childLogger } from '../../log.js';

const log = childLogger('decoder-worker');

/** A request to the worker. */
export type WorkerRequest =
  | { type: 'open'; id: number; sid: number; model: string | Uint8Array; options: Ort.InferenceSession.SessionOptions }
  | { type: 'run'; id: number; sid: number; feeds: Record<string, { data: Float32Array; dims: number[] }>; output: string }
  | { type: 'close'; id: number; sid: number };

/** A reply from the worker (`id` of the request); `ready` (no id) once onnxruntime-node has loaded in it. */
export type WorkerResponse =
  | { type: 'opened'; id: number; inputNames: string[]; outputNames: string[] }
  | { type: 'closed'; id: number }
  | { type: 'result'; id: number; dtype: string; dims: number[]; data: Uint8Array | Float32Array }
  | { type: 'error'; id: number; message: string };

/** The worker's first message: onnxruntime-node loaded. */
export interface WorkerReady { type: 'ready' }

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

/** Default of `ONNX_RUN_TIMEOUT_MS`: a decoder run that takes longer is taken as hung. */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;

/**
 * How long one decoder run may take before the worker is taken as hung and recycled: `ONNX_RUN_TIMEOUT_MS`
 * (default 60 s; a 32-image batch at 128 px takes about 1 s on 2 CPU cores).
 * @throws UserError for a value that is not a whole number of milliseconds from 100 up
 */
export function onnxRunTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ONNX_RUN_TIMEOUT_MS?.trim();
  if (!raw) return DEFAULT_RUN_TIMEOUT_MS;
  const ms = Number(raw);
  if (!/^\d+$/.test(raw) || ms < 100 || ms > 3_600_000) {
    throw new UserError(`ONNX_RUN_TIMEOUT_MS must be a whole number of milliseconds from 100 to 3600000, got "${raw}".`);
  }
  return ms;
}

/** The decoder could not answer (its worker died or hung); the message is for the person who asked. */
export class DecoderUnavailableError extends UserError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecoderUnavailableError';
  }
}

/** What `/healthz` and the logs say about the decoder worker. */
export interface DecoderWorkerStatus {
  /** idle: not started (no session yet); starting: loading ONNX Runtime; ready; restarting: after a failure. */
  state: 'idle' | 'starting' | 'ready' | 'restarting';
  /** Workers lost to a crash or a hang since the process started. */
  restarts: number;
  /** Failures since the last answer a worker gave. */
  failuresInARow: number;
  /** The last failure (`exited with code 1`, `run hung for 60000 ms`...) and when, or null. */
  lastFailure: { reason: string; at: string } | null;
  /** Sessions open (and opened again in a new worker when needed). */
  sessions: number;
}

/** Options of a {@link DecoderWorkerHost} (tests pass a stub worker and short timeouts). */
export interface DecoderWorkerHostOptions {
  /** Starts a worker (default: the decoder-worker module). */
  spawn?: () => Worker;
  /** Longest run before the worker is recycled (default `ONNX_RUN_TIMEOUT_MS`). */
  runTimeoutMs?: number;
  /** Delay before spawning again after the n-th failure in a row (default 200 ms, doubling, at most 30 s). */
  respawnDelayMs?: (failuresInARow: number) => number;
}

interface Pending {
  resolve: (r: WorkerResponse) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** One worker thread and what it holds. */
interface WorkerThread {
  worker: Worker;
  ready: boolean;
  dead: boolean;
  /** Sessions opened in this worker (a new worker opens them again on their next run). */
  opened: Set<number>;
  pending: Map<number, Pending>;
}

const CRASHED = 'The image decoder stopped unexpectedly and is being restarted. Please try again in a moment.';

/** Hosts every worker-thread session of the process and keeps a worker alive; see the module comment. */
export class DecoderWorkerHost {
  private thread: WorkerThread | null = null;
  private nextId = 1;
  private nextSid = 1;
  private readonly sessions = new Map<number, { model: string | Uint8Array; options: Ort.InferenceSession.SessionOptions }>();
  private restarts = 0;
  private failuresInARow = 0;
  private lastFailure: DecoderWorkerStatus['lastFailure'] = null;
  private respawnTimer: NodeJS.Timeout | null = null;
  private readonly spawn: () => Worker;
  private readonly runTimeoutMs: number;
  private readonly respawnDelayMs: (failures: number) => number;

  constructor(opts: DecoderWorkerHostOptions = {}) {
    this.spawn = opts.spawn ?? startWorker;
    this.runTimeoutMs = opts.runTimeoutMs ?? onnxRunTimeoutMs();
    this.respawnDelayMs = opts.respawnDelayMs ?? ((n) => Math.min(30_000, 200 * 2 ** Math.max(0, n - 1)));
  }

  /** The current worker thread, or null (not started yet, or between a failure and its respawn). */
  get worker(): Worker | null {
    return this.thread?.worker ?? null;
  }

  status(): DecoderWorkerStatus {
    let state: DecoderWorkerStatus['state'];
    if (this.thread) state = this.thread.ready ? 'ready' : this.restarts > 0 ? 'restarting' : 'starting';
    else state = this.restarts > 0 && this.sessions.size > 0 ? 'restarting' : 'idle';
    return { state, restarts: this.restarts, failuresInARow: this.failuresInARow, lastFailure: this.lastFailure, sessions: this.sessions.size };
  }

  /** Creates a session in the worker; rejects when ONNX Runtime cannot load the model. */
  async open(model: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<{ sid: number; inputNames: string[]; outputNames: string[] }> {
    const sid = this.nextSid++;
    const thread = this.ensure();
    const reply = await this.request(thread, { type: 'open', sid, model, options });
    if (reply.type !== 'opened') throw new Error(`unexpected reply ${reply.type} from the ONNX decoder worker`);
    this.sessions.set(sid, { model, options });
    thread.opened.add(sid);
    return { sid, inputNames: reply.inputNames, outputNames: reply.outputNames };
  }

  /** Runs a session (opening it again first in a worker that replaced the one it was opened in). */
  async run(sid: number, feeds: SessionFeeds, output: string): Promise<SessionOutput> {
    const session = this.sessions.get(sid);
    if (!session) throw new Error('the ONNX decoder session is closed');
    const thread = this.ensure();
    if (!thread.opened.has(sid)) {
      const reopened = await this.request(thread, { type: 'open', sid, model: session.model, options: session.options });
      if (reopened.type !== 'opened') throw new Error(`unexpected reply ${reopened.type} from the ONNX decoder worker`);
      thread.opened.add(sid);
      log.info({ sid }, 'decoder session opened again in a new worker');
    }
    const transfer = Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer);
    const reply = await this.request(thread, { type: 'run', sid, feeds, output }, transfer, this.runTimeoutMs);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type} from the ONNX decoder worker`);
    return { dtype: reply.dtype, dims: reply.dims, data: reply.data };
  }

  /** Frees a session. */
  async close(sid: number): Promise<void> {
    this.sessions.delete(sid);
    const thread = this.thread;
    if (thread?.opened.delete(sid)) await this.request(thread, { type: 'close', sid }).catch(() => undefined);
  }

  /**
   * Ends the current worker: its requests fail with `message` (for the user), and a new worker starts (at
   * once when sessions are open, else on the next request).
   */
  recycle(reason: string, message = CRASHED): void {
    const thread = this.thread;
    if (!thread || thread.dead) return;
    this.lost(thread, reason, message);
    void thread.worker.terminate();
  }

  private ensure(): WorkerThread {
    if (this.thread) return this.thread;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
    const worker = this.spawn();
    const thread: WorkerThread = { worker, ready: false, dead: false, opened: new Set(), pending: new Map() };
    worker.on('message', (msg: WorkerResponse | WorkerReady) => {
      if (msg.type === 'ready') {
        thread.ready = true;
        if (this.restarts > 0) log.info({ restarts: this.restarts }, 'decoder worker ready again');
        return;
      }
      const p = thread.pending.get(msg.id);
      if (!p) return;
      thread.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (!thread.pending.size) worker.unref();
      this.failuresInARow = 0;
      if (msg.type === 'error') p.reject(new Error(`ONNX Runtime: ${msg.message}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.lost(thread, `worker error: ${err.message}`, CRASHED));
    worker.on('exit', (code) => this.lost(thread, `worker exited with code ${code}`, CRASHED));
    worker.unref();
    this.thread = thread;
    return thread;
  }

  private request(thread: WorkerThread, req: Distributive<WorkerRequest>, transfer: ArrayBuffer[] = [], timeoutMs?: number): Promise<WorkerResponse> {
    if (thread.dead) return Promise.reject(new DecoderUnavailableError(CRASHED));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject };
      if (timeoutMs) {
        p.timer = setTimeout(() => {
          this.recycle(`run hung for ${timeoutMs} ms`,
            `The image decoder took longer than ${timeoutMs >= 10_000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`} and was restarted. Please try again in a moment.`);
        }, timeoutMs);
        p.timer.unref();
      }
      thread.pending.set(id, p);
      thread.worker.ref();
      thread.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** A worker is gone (crash, exit, hang): fail what it held and start another one. */
  private lost(thread: WorkerThread, reason: string, message: string): void {
    if (thread.dead) return;
    thread.dead = true;
    if (this.thread === thread) this.thread = null;
    this.restarts++;
    this.failuresInARow++;
    this.lastFailure = { reason, at: new Date().toISOString() };
    log.error({ reason, pending: thread.pending.size, restarts: this.restarts, failuresInARow: this.failuresInARow }, 'decoder worker lost; starting a new one');
    const err = new DecoderUnavailableError(message);
    for (const p of thread.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    thread.pending.clear();
    thread.worker.unref();
    if (this.sessions.size && !this.respawnTimer) {
      this.respawnTimer = setTimeout(() => {
        this.respawnTimer = null;
        if (!this.thread && this.sessions.size) this.ensure();
      }, this.respawnDelayMs(this.failuresInARow));
      this.respawnTimer.unref();
    }
  }
}

let shared: DecoderWorkerHost | null = null;

/** The process-wide decoder worker host (created on first use). */
export function sharedDecoderHost(): DecoderWorkerHost {
  return (shared ??= new DecoderWorkerHost());
}

/** `/healthz` check of the decoder worker: fails while a lost worker has not come back. */
export function decoderWorkerHealth(host: DecoderWorkerHost | null = shared): { ok: boolean; detail: string } {
  if (!host) return { ok: true, detail: 'no worker started (no ONNX session yet)' };
  const s = host.status();
  const history = s.restarts ? `; ${s.restarts} restart(s), last: ${s.lastFailure?.reason} at ${s.lastFailure?.at}` : '';
  if (s.state === 'ready') return { ok: true, detail: `worker ready, ${s.sessions} session(s)${history}` };
  if (s.state === 'idle') return { ok: true, detail: `no worker running${history}` };
  if (s.state === 'starting') return { ok: true, detail: `worker starting${history}` };
  return { ok: false, detail: `worker restarting (${s.failuresInARow} failure(s) in a row)${history}` };
}

/** An ONNX Runtime session in the shared worker thread. */
export class WorkerDecoderSession {
  private closed = false;

  private constructor(
    private readonly host: DecoderWorkerHost,
    private readonly sid: number,
    readonly inputNames: string[],
    readonly outputNames: string[],
  ) {}

  /** Creates a session in the worker (of `host`, default the process's); rejects when ONNX Runtime cannot load the model. */
  static async open(model: string | Uint8Array, options: Ort.InferenceSession.SessionOptions, host = sharedDecoderHost()): Promise<WorkerDecoderSession> {
    const { sid, inputNames, outputNames } = await host.open(model, options);
    return new WorkerDecoderSession(host, sid, inputNames, outputNames);
  }

  /** Runs the session on float32 inputs (their buffers are transferred: do not reuse them); resolves with the named output. */
  async run(feeds: SessionFeeds, output: string): Promise<SessionOutput> {
    if (this.closed) throw new Error('the ONNX decoder session is closed');
    return this.host.run(this.sid, feeds, output);
  }

  /** Frees the session in the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.host.close(this.sid);
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

  /** Frees the session. */
  async close(): Promise<void> {
    const session = this.session;
    this.session = null;
    await session?.release();
  }
}

/** Either kind of decoder session. */
export type DecoderSession = WorkerDecoderSession | InProcessDecoderSession;
