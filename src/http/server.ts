/**
 * The process's one HTTP server (node:http): `/healthz`, `/metrics` and, when enabled, the local playground.
 * Routes are plain handler functions tried in order; the first that answers wins. Closing stops accepting
 * connections, ends long-lived streams (SSE) and idle keep-alive sockets, and gives in-flight requests a
 * grace period before their sockets are destroyed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { childLogger } from '../log.js';

const log = childLogger('http');

/**
 * A route: returns true when it handled the request (it then owns the response), false to let the next route try.
 * `url` is the parsed request URL.
 */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;

/** Sends a JSON body with a status code (no caching). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** A route that answers GET and HEAD on one path (405 for other methods) with `respond`. */
export function readOnlyRoute(pathname: string, respond: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): Route {
  return async (req, res, url) => {
    if (url.pathname !== pathname) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') sendJson(res, 405, { error: 'Use GET.' });
    else await respond(req, res);
    return true;
  };
}

/** Sends plain text with a status code. */
export function sendText(res: http.ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** An error carrying the HTTP status to answer with (bad JSON, body too large, wrong content type). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Reads a request body of at most `limit` bytes: 413 as soon as it is announced (Content-Length) or exceeded. */
export async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, 'The request body is too large.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'The request body is too large.');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Requires `Content-Type: application/json`, which a
 * cross-site form or `text/plain` fetch cannot send without a CORS preflight (that this server never grants).
 */
export async function readJson(req: http.IncomingMessage, limit = 16 * 1024): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'Send the request as application/json.');
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'The request body is not valid JSON.');
  }
}

export interface HttpServerOptions {
  routes: Route[];
  /** Time in-flight requests get after close() before their sockets are destroyed (default 10 s). */
  closeGraceMs?: number;
}

/** The HTTP server with graceful close; see the module comment. */
export class HttpServer {
  readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private closing: Promise<void> | null = null;

  constructor(private readonly o: HttpServerOptions) {
    this.server = http.createServer((req, res) => { void this.dispatch(req, res); });
    this.server.keepAliveTimeout = 5_000;
    this.server.headersTimeout = 15_000;
    this.server.requestTimeout = 0; // SSE streams and long generations stay open
  }

  /** Adds a route after the existing ones. */
  addRoute(route: Route): void {
    this.o.routes.push(route);
  }

  /** Listens on host:port (port 0: any free port); resolves with the bound address. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    log.info({ host: addr.address, port: addr.port }, 'HTTP server listening');
    return addr;
  }

  /** The bound address (after listen). */
  address(): AddressInfo | null {
    const a = this.server.address();
    return a && typeof a === 'object' ? a : null;
  }

  /** True while the server accepts connections. */
  get listening(): boolean {
    return this.server.listening && !this.closing;
  }

  /**
   * Marks a response as a long-lived stream (SSE): it is ended on close() instead of being waited for.
   * Returns a function that unregisters it.
   */
  trackStream(res: http.ServerResponse): () => void {
    this.streams.add(res);
    const forget = () => this.streams.delete(res);
    res.once('close', forget);
    return forget;
  }

  /** Stops accepting connections, ends streams and idle sockets, waits for in-flight requests (bounded). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      const grace = setTimeout(() => this.server.closeAllConnections(), this.o.closeGraceMs ?? 10_000);
      grace.unref();
      this.server.close(() => {
        clearTimeout(grace);
        log.info('HTTP server closed');
        resolve();
      });
      for (const s of this.streams) s.end();
      this.streams.clear();
      this.server.closeIdleConnections();
    });
    return this.closing;
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendText(res, 400, 'Bad request URL.\n');
      return;
    }
    if (this.closing) res.setHeader('connection', 'close');
    try {
      for (const route of this.o.routes) {
        if (await route(req, res, url)) return;
      }
      sendJson(res, 404, { error: `Nothing at ${url.pathname}.` });
    } catch (err) {
      if (err instanceof HttpError) {
        if (!res.headersSent) sendJson(res, err.status, { error: err.message });
        else res.end();
        return;
      }
      log.error({ err, path: url.pathname, method: req.method }, 'HTTP handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal error.' });
      else res.end();
    }
  }
}
