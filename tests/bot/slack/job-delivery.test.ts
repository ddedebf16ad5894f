/**
 * The Slack reply delivery of scaled mode, against the fake Slack Web API: a worker posts the grid as a file
 * share (with the summary) and the buttons, in the channel or the thread of the target, and reports the share
 * message (what reactions attach to); an apology is a plain message; a channel the bot is not in is a UserError.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isUserError } from '../../../src/errors.js';
import { createSlackJobDelivery } from '../../../src/bot/slack/job-delivery.js';
import type { ImagineReply } from '../../../src/bot/core/types.js';
import { startFakeSlack, type FakeSlack } from '../../fakes/slack-server.js';

const reply: ImagineReply = {
  generationId: 'gen-1', prompt: 'cows in snow', seeds: [7, 8], model: 'demo', userId: 'U1',
  grid: Buffer.from('grid-png-bytes'), images: [Buffer.from('a'), Buffer.from('b')], text: '“cows in snow” · seeds 7–8 · model demo',
};

describe('Slack job delivery', () => {
  let fake: FakeSlack;
  before(async () => { fake = await startFakeSlack({ sharesVisibleAfter: 2, notInChannels: ['C0NOTIN'] }); });
  after(async () => { await fake.close(); });

  const delivery = () => createSlackJobDelivery({ botToken: fake.token, apiUrl: fake.apiUrl, apiRetries: 0, shareLookup: { delaysMs: [0, 10, 20, 50] } });

  it('uploads the grid into the channel, posts the buttons and reports the share message', async () => {
    const delivered = await delivery().deliver({ platform: 'slack', channelId: 'C0CHAN' }, reply);
    const file = [...fake.files.values()].find((f) => f.filename === 'cvae-gen-1.png');
    assert.ok(file, 'the grid was uploaded');
    assert.deepEqual(file.bytes, reply.grid);
    assert.equal(file.channel, 'C0CHAN');
    assert.match(file.initialComment ?? '', /cows in snow/);
    assert.deepEqual(delivered, [{ messageRef: `C0CHAN:${file.shareTs}` }]);
    const buttons = fake.messages.find((m) => m.channel === 'C0CHAN' && m.blocks && !m.files);
    assert.ok(buttons, 'the buttons message was posted');
    assert.match(JSON.stringify(buttons.blocks), /gen-1/);
  });

  it('answers in the thread of the target', async () => {
    await delivery().deliver({ platform: 'slack', channelId: 'C0THREAD', threadTs: '1700000000.000100' }, { ...reply, generationId: 'gen-2' });
    const posted = fake.messages.filter((m) => m.channel === 'C0THREAD');
    assert.equal(posted.length, 2);
    for (const m of posted) assert.equal(m.threadTs, '1700000000.000100');
  });

  it('posts an apology as a message in the channel', async () => {
    await delivery().apologise({ platform: 'slack', channelId: 'C0SORRY' }, 'Sorry, that failed twice.');
    const posted = fake.messages.filter((m) => m.channel === 'C0SORRY');
    assert.deepEqual(posted.map((m) => m.text), ['Sorry, that failed twice.']);
  });

  it('turns a channel the bot is not in into a UserError a person can act on', async () => {
    await assert.rejects(delivery().deliver({ platform: 'slack', channelId: 'C0NOTIN' }, reply),
      (err: unknown) => isUserError(err) && /invite/i.test((err as Error).message));
    await assert.rejects(delivery().apologise({ platform: 'slack', channelId: 'C0NOTIN' }, 'sorry'), (err: unknown) => isUserError(err));
  });

  it('refuses a target of another platform', async () => {
    await assert.rejects(delivery().deliver({ platform: 'web' }, reply), /Slack delivery got a web/);
  });
});
