/**
 * `/model use` across processes: the process that switches the served model NOTIFYs
 * {@link MODEL_CHANGED_CHANNEL} with its name ({@link notifyModelChanged}), and every worker LISTENs on a
 * dedicated connection ({@link listenForModelChanges}) and drops its cached samplers, so the next batch loads
 * the new model without a restart.
 *
 * The listening connection (pg-listener.ts) is not from the pool and reconnects after a database restart; a
 * notification sent while it was down is lost, so after a reconnect the callback runs once with `null` ("the
 * model may have changed").
 */
import type pg from 'pg';
import { childLogger } from '../log.js';
import { MODEL_CHANGED_CHANNEL } from './schema.js';
import { listenOnChannels, type ChannelListener } from './pg-listener.js';

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
export type ModelListener = ChannelListener;

/** LISTENs for model changes until stopped; see the module comment. */
export function listenForModelChanges(opts: ModelListenerOptions): ModelListener {
  const notify = (name: string | null) => {
    try {
      opts.onModelChanged(name);
    } catch (err) {
      log.error({ err }, 'onModelChanged failed');
    }
  };
  return listenOnChannels({
    connection: opts.connection, channels: [MODEL_CHANGED_CHANNEL], applicationName: 'cvae-model-listener',
    reconnectDelayMs: opts.reconnectDelayMs,
    onNotification: (_channel, payload) => {
      log.info({ model: payload }, 'served model changed elsewhere; dropping cached samplers');
      notify(payload || null);
    },
    onReconnect: () => {
      log.info('model-change listener reconnected');
      notify(null);
    },
  });
}
