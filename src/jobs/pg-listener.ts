/**
 * LISTEN on PostgreSQL channels from a dedicated connection (a pooled one would be handed back and lose the
 * LISTEN), reconnecting with a growing delay when it breaks (database restart). A notification sent while the
 * connection was down is lost, so after a reconnect `onReconnect` runs: the caller reads what it may have missed.
 */
import pg from 'pg';
import { childLogger } from '../log.js';

const log = childLogger('pg-listener');

export interface ChannelListenerOptions {
  /** Connection settings of the dedicated client (e.g. a pool's `options`). */
  connection: pg.ClientConfig;
  /** Channel names (plain identifiers). */
  channels: string[];
  onNotification(channel: string, payload: string): void;
  /** The connection came back after a break: notifications may have been missed. */
  onReconnect?(): void;
  /** application_name of the connection. */
  applicationName?: string;
  /** First reconnect delay, ms (default 500; doubles up to 10 s). */
  reconnectDelayMs?: number;
}

export interface ChannelListener {
  /** Resolves once the first LISTEN is in place (rejects if the first connection fails). */
  ready: Promise<void>;
  listening(): boolean;
  stop(): Promise<void>;
}

/** LISTENs until stopped; see the module comment. */
export function listenOnChannels(opts: ChannelListenerOptions): ChannelListener {
  for (const ch of opts.channels) if (!/^[a-z_][a-z0-9_]*$/.test(ch)) throw new Error(`not a channel name: ${ch}`);
  const firstDelay = opts.reconnectDelayMs ?? 500;
  let delay = firstDelay;
  let client: pg.Client | null = null;
  let connected = false;
  let stopped = false;
  let everConnected = false;
  let timer: NodeJS.Timeout | null = null;

  function safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      log.error({ err }, 'notification handler failed');
    }
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({ ...opts.connection, application_name: opts.applicationName ?? 'cvae-listener' });
    client = c;
    c.on('error', (err) => {
      log.warn({ reason: err.message, channels: opts.channels }, 'the listener lost the database; reconnecting');
      drop(c);
    });
    c.on('end', () => drop(c));
    c.on('notification', (msg) => {
      if (!opts.channels.includes(msg.channel)) return;
      safely(() => opts.onNotification(msg.channel, msg.payload ?? ''));
    });
    await c.connect();
    for (const ch of opts.channels) await c.query(`listen ${ch}`);
    if (stopped) { await c.end().catch(() => undefined); return; }
    connected = true;
    delay = firstDelay;
    if (everConnected) {
      log.info({ channels: opts.channels }, 'listener reconnected');
      if (opts.onReconnect) safely(opts.onReconnect);
    }
    everConnected = true;
  }

  function drop(c: pg.Client): void {
    if (client !== c) return;
    client = null;
    connected = false;
    c.removeAllListeners('notification');
    c.end().catch(() => undefined);
    retry();
  }

  function retry(): void {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      connect().catch((err: Error) => {
        log.warn({ reason: err.message, retryInMs: delay }, 'listener could not reconnect yet');
        if (client) drop(client);
        else retry();
      });
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 10_000);
  }

  const ready = connect().catch((err: unknown) => {
    const c = client;
    client = null;
    if (c) { c.removeAllListeners(); c.on('error', () => undefined); c.end().catch(() => undefined); }
    throw err;
  });

  return {
    ready,
    listening: () => connected,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const c = client;
      client = null;
      connected = false;
      if (c) { c.removeAllListeners('end'); await c.end().catch(() => undefined); }
    },
  };
}
