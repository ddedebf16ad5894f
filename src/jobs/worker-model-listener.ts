/**
 * `/model use` across processes: the process that switches the served model NOTIFYs
 * {@link MODEL_CHANGED_CHANNEL} with its name ({@link notifyModelChanged}), and every worker LISTENs on a
 * dedicated connection ({@link listenForModelChanges}) and drops its cached samplers, so the next batch loads
 * the new model without a restart.
 *
 * The listening connection is not from the pool (a pool would hand it back and lose the LISTEN). When it breaks
 * (database restart) it reconnects with a growing delay; a notification sent while it was down is lost, so after
 * a reconnect the callback runs once with `null` ("the model may have changed").
 */
import pg from 'pg';
import { childLogger } from '../log.js';
import { MODEL_CHANGED_CHANNEL } from './schema.js';

const log = childLogger('model-listener');

/** Tells every worker that the served model is now `name` (after the registry has been switched). */
export async function notifyModelChanged(pool: pg.Pool, name: string): Promise<void> {
  await pool.query('select pg_notify($1, $2)', [MODEL_CHANGED_CHANNEL, name]);
}

export interface ModelListenerOptions {
  /** Connection settings of the dedicated client (e.g. `{ connectionString }`, or a pool's `options`). */
  connection: pg.ClientConfig;
  /** The served model changed to `name`; null: it may have changed while the listener was reconnecting. */
  onModelChanged(name: string | null): void;
  /** First reconnect delay, ms (default 500; doubles up to 10 s). */
  reconnectDelayMs?: number;
}

/** A running listener. */
export interface ModelListener {
  /** Resolves once the first LISTEN is in place (rejects if the first connection fails). */
  ready: Promise<void>;
  /** True while LISTENing. */
  listening(): boolean;
  stop(): Promise<void>;
}

/** LISTENs for model changes until stopped; see the module comment. */
export function listenForModelChanges(opts: ModelListenerOptions): ModelListener {
  const firstDelay = opts.reconnectDelayMs ?? 500;
  let delay = firstDelay;
  let client: pg.Client | null = null;
  let connected = false;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let everConnected = false;

  function notify(name: string | null): void {
    try {
      opts.onModelChanged(name);
    } catch (err) {
      log.error({ err }, 'onModelChanged failed');
    }
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({ ...opts.connection, application_name: 'cvae-model-listener' });
    client = c;
    c.on('error', (err) => {
      log.warn({ reason: err.message }, 'the model-change listener lost the database; reconnecting');
      drop(c);
    });
    c.on('end', () => drop(c));
    c.on('notification', (msg) => {
      if (msg.channel !== MODEL_CHANGED_CHANNEL) return;
      log.info({ model: msg.payload }, 'served model changed elsewhere; dropping cached samplers');
      notify(msg.payload ?? null);
    });
    await c.connect();
    await c.query(`listen ${MODEL_CHANGED_CHANNEL}`);
    if (stopped) { await c.end().catch(() => undefined); return; }
    connected = true;
    delay = firstDelay;
    if (everConnected) {
      log.info('model-change listener reconnected');
      notify(null);
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
        log.warn({ reason: err.message, retryInMs: delay }, 'model-change listener could not reconnect yet');
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
      if (c) await c.end().catch(() => undefined);
    },
  };
}
