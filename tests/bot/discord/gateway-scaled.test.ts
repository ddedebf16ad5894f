/**
 * The Discord gateway adapter in scaled mode (core.jobs set), with the real discord.js client against the fake
 * Discord: /imagine and Reroll/Variations become jobs keyed by the interaction id with the interaction's webhook
 * as the reply target; the ingress shows "Queued" with a Cancel button only when the wait is worth it, never
 * draws itself, and Cancel reaches the job queue as who clicked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeDiscord, type RecordedRequest } from '../../fakes/discord-server.js';
import { startDiscord, type RunningDiscord } from '../../../src/bot/discord/index.js';
import { encodeCancelCustomId } from '../../../src/bot/discord/components.js';
import { UserError } from '../../../src/bot/core/errors.js';
import type { BotCore, Actor } from '../../../src/bot/core/types.js';
import type { GenerationAsk, JobReceipt, JobSubmitter, ReplyTarget } from '../../../src/bot/core/jobs-types.js';

const alice = { id: '100000000000000001', username: 'alice' };
const bob = { id: '100000000000000002', username: 'bob' };

describe('discord gateway in scaled mode', () => {
  let fake: FakeDiscord;
  let bot: RunningDiscord;
  const submitted: { actor: Actor; ask: GenerationAsk; target: ReplyTarget; key: string }[] = [];
  const cancelled: { userId: string; requestId: string }[] = [];
  let wait = 12;
  const jobs: JobSubmitter = {
    async submit(actor, ask, target, key): Promise<JobReceipt> {
      submitted.push({ actor, ask, target, key });
      return { requestId: `req${submitted.length}`, position: 2, predictedWaitS: wait, duplicate: false };
    },
    async cancel(actor, requestId) {
      if (actor.userId !== alice.id) throw new UserError('Only who asked (or an admin) can cancel this request.');
      cancelled.push({ userId: actor.userId, requestId });
      return 'Cancelled.';
    },
  };
  const never = () => { throw new Error('the ingress must not draw in scaled mode'); };
  const core = { jobs, imagine: never, reroll: never, variations: never, singleImage: never, attachMessage: never, recordReaction: () => false } as unknown as BotCore;

  before(async () => {
    fake = new FakeDiscord();
    await fake.start();
    bot = await startDiscord(core, { DISCORD_TOKEN: 'fake-bot-token', DISCORD_API_URL: fake.apiUrl });
  });

  after(async () => {
    await bot?.stop();
    await fake?.close();
  });

  const isOriginal = (token: string) => (r: RecordedRequest) => r.method === 'PATCH' && r.path === `/webhooks/${fake.applicationId}/${token}/messages/%40original`;

  it('/imagine submits a job for the interaction webhook and shows Queued with Cancel', async () => {
    const { id, token } = fake.slashCommand(alice, 'imagine', [{ name: 'prompt', type: 3, value: 'cows in snow' }, { name: 'count', type: 4, value: 2 }]);
    const patch = await fake.waitForRequest(isOriginal(token));
    assert.match(patch.body.content, /Queued, number 2 in line \(about 12 s\)/);
    const ids = patch.body.components.flatMap((row: any) => row.components.map((c: any) => c.custom_id));
    assert.deepEqual(ids, [encodeCancelCustomId('req1')]);
    const s = submitted[0];
    assert.equal(s.key, `discord:${id}`);
    assert.deepEqual(s.ask, { kind: 'imagine', options: { prompt: 'cows in snow', count: 2, seed: undefined, model: undefined } });
    assert.equal(s.target.platform, 'discord');
    assert.deepEqual({ ...s.target, receivedAt: 0 }, { platform: 'discord', applicationId: fake.applicationId, interactionToken: token, channelId: s.actor.channelId, receivedAt: 0 });
    assert.ok(Math.abs((s.target as { receivedAt: number }).receivedAt - Date.now()) < 60_000);
  });

  it('a short wait shows no notice (the worker\'s images must stay the last edit); Reroll becomes a job too', async () => {
    wait = 0.5;
    const before = fake.requests.length;
    const { token } = fake.button(bob, 'gen:reroll:g1', '200000000000000001');
    await fake.waitForRequest((r) => r.method === 'POST' && r.path.endsWith(`/${token}/callback`));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(submitted.at(-1)!.ask, { kind: 'reroll', generationId: 'g1' });
    assert.equal(fake.requests.slice(before).filter(isOriginal(token)).length, 0);
    wait = 12;
  });

  it('Cancel: the notice becomes the outcome for who asked; anyone else is told privately', async () => {
    const other = fake.button(bob, encodeCancelCustomId('req1'), '200000000000000002');
    const refusal = await fake.waitForRequest((r) => r.method === 'POST' && r.path === `/webhooks/${fake.applicationId}/${other.token}`);
    assert.match(refusal.body.content, /Only who asked/);
    assert.equal(refusal.body.flags, 64);
    const mine = fake.button(alice, encodeCancelCustomId('req1'), '200000000000000002');
    const edit = await fake.waitForRequest(isOriginal(mine.token));
    assert.equal(edit.body.content, 'Cancelled.');
    assert.deepEqual(edit.body.components, []);
    assert.deepEqual(cancelled, [{ userId: alice.id, requestId: 'req1' }]);
  });
});
