/**
 * The ingress side of web jobs (the playground in scaled mode): awaitReply returns the reply a worker stored,
 * turns a failed or cancelled request into the user's message, waits through a database restart; storedImage
 * reads the PNG a worker kept for "Image N", and null when there is none.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isUserError } from '../../src/bot/core/errors.js';
import type { ImagineReply } from '../../src/bot/core/types.js';
import { createJobReplies } from '../../src/jobs/job-replies.js';
import { finishRequest, linkGeneration } from '../../src/jobs/worker-requests.js';
import { storeReply } from '../../src/jobs/worker-web-delivery.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedDatabase, queueRequest } from './worker-helpers.js';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

function reply(generationId: string): ImagineReply {
  return { generationId, prompt: 'cows in snow', seeds: [7, 8], model: 'demo', userId: 'local', grid: PNG, images: [PNG, Buffer.from([0x89, 9])], text: '“cows in snow” · seeds 7–8 · model demo' };
}

describe('web job replies', () => {
  let server: TestPostgres;
  before(async () => { server = await startTestPostgres(); });
  after(async () => { await server?.stop(); });

  it('returns the stored reply once the worker delivered it, and keeps the images for Image N', async () => {
    const { pool } = await migratedDatabase(server, 'replies');
    try {
      const replies = createJobReplies(pool, { pollMs: 20 });
      const id = await queueRequest(pool);
      const waiting = replies.awaitReply(id);
      await linkGeneration(pool, id, 'gen-1');
      await storeReply(pool, reply('gen-1'), { withGrid: true });
      await finishRequest(pool, id, 'delivered');
      const got = await waiting;
      assert.equal(got.generationId, 'gen-1');
      assert.deepEqual(got.seeds, [7, 8]);
      assert.ok(got.grid.equals(PNG));
      assert.equal(got.images.length, 2);
      assert.ok((await replies.storedImage('gen-1', 1))?.equals(Buffer.from([0x89, 9])));
      assert.equal(await replies.storedImage('gen-1', 5), null, 'no such image');
      assert.equal(await replies.storedImage('gen-unknown', 0), null, 'no such generation');
    } finally {
      await pool.end();
    }
  });

  it('a failed request becomes the apology as a UserError; a database restart while waiting is ridden out', async () => {
    const { pool } = await migratedDatabase(server, 'replies');
    try {
      const replies = createJobReplies(pool, { pollMs: 50 });
      const failed = await queueRequest(pool);
      await finishRequest(pool, failed, 'failed', 'Sorry, your images for “cows” could not be drawn.');
      await assert.rejects(replies.awaitReply(failed), (err: unknown) => isUserError(err) && /could not be drawn/.test((err as Error).message));

      const id = await queueRequest(pool);
      const waiting = replies.awaitReply(id);
      await server.restart();
      await linkGeneration(pool, id, 'gen-2');
      await storeReply(pool, reply('gen-2'), { withGrid: true });
      await finishRequest(pool, id, 'delivered');
      assert.equal((await waiting).generationId, 'gen-2');
    } finally {
      await pool.end();
    }
  });
});
