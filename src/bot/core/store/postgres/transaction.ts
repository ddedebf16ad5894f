/** One PostgreSQL transaction on a pooled client: BEGIN, the work, COMMIT (ROLLBACK and rethrow on error). */
import type pg from 'pg';

export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A failed ROLLBACK means the connection is gone: the client is dropped instead of going back to the pool.
    await client.query('ROLLBACK').catch((e: unknown) => { broken = e as Error; });
    throw err;
  } finally {
    client.release(broken);
  }
}
