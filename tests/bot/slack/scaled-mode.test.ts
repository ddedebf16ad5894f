/**
 * The Slack listeners in scaled mode (core.jobs set): a command or a Reroll/Variations click becomes one job
 * keyed by the platform's trigger id, the user sees a private "queued" notice with a Cancel button, nothing is
 * posted by the ingress (a worker posts), and Cancel withdraws the job for whoever clicks it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/bot/core/errors.js';
import type { Actor, BotCore } from '../../../src/bot/core/types.js';
import type { GenerationAsk, JobReceipt, JobSubmitter, ReplyTarget } from '../../../src/bot/core/jobs-types.js';
import { imagineCommand, type ImagineCommandArgs } from '../../../src/bot/slack/listeners/commands/imagine.js';
import { cancelButton, regenerateButton, type ButtonArgs } from '../../../src/bot/slack/listeners/actions/generation-buttons.js';
import { CANCEL_ACTION } from '../../../src/bot/slack/blocks.js';

interface Submitted { actor: Actor; ask: GenerationAsk; target: ReplyTarget; key: string }

function jobs(over: Partial<JobSubmitter> = {}): JobSubmitter & { submitted: Submitted[]; cancelled: string[] } {
  const submitted: Submitted[] = [];
  const cancelled: string[] = [];
  return {
    submitted, cancelled,
    async submit(actor, ask, target, key): Promise<JobReceipt> {
      submitted.push({ actor, ask, target, key });
      return { requestId: `r${submitted.length}`, position: 3, predictedWaitS: 12, duplicate: false };
    },
    async cancel(_actor, requestId) { cancelled.push(requestId); return 'Cancelled: no images will come for it.'; },
    ...over,
  };
}

function core(j: JobSubmitter): BotCore {
  const never = () => { throw new Error('the ingress must not generate in scaled mode'); };
  return {
    jobs: j, imagine: never, reroll: never, variations: never, singleImage: never,
    attachMessage: never, recordReaction: never, trainStart: never, trainStatus: never, trainStop: never, modelList: never, modelUse: never,
  } as unknown as BotCore;
}

function io() {
  const acks: unknown[] = [];
  const responses: { text: string; blocks?: { type: string; elements?: { action_id: string; value: string }[] }[]; replace_original?: boolean }[] = [];
  return {
    acks, responses,
    ack: (async (r?: unknown) => { acks.push(r); }) as unknown as ImagineCommandArgs['ack'],
    respond: (async (r: never) => { responses.push(r); }) as unknown as ImagineCommandArgs['respond'],
  };
}

const noClient = new Proxy({}, { get() { throw new Error('the ingress must not post in scaled mode'); } }) as ImagineCommandArgs['client'];

describe('slack in scaled mode', () => {
  it('/imagine submits one job for the channel, keyed by the trigger id, and shows the queue with Cancel', async () => {
    const j = jobs();
    const x = io();
    const command = { text: 'cows in snow --count 2 --seed 9', user_id: 'U1', channel_id: 'C1', team_id: 'T1', trigger_id: '123.456.abc' } as unknown as ImagineCommandArgs['command'];
    await imagineCommand(core(j))({ command, ack: x.ack, respond: x.respond, client: noClient });
    assert.equal(x.acks.length, 1);
    assert.deepEqual(j.submitted, [{
      actor: { platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId: 'U1' },
      ask: { kind: 'imagine', options: { prompt: 'cows in snow', count: 2, seed: 9 } },
      target: { platform: 'slack', channelId: 'C1' },
      key: 'slack:123.456.abc',
    }]);
    const notice = x.responses[0];
    assert.match(notice.text, /number 3 in line \(about 12 s\)/);
    const cancel = notice.blocks?.flatMap((b) => b.elements ?? []).find((e) => e.action_id === CANCEL_ACTION);
    assert.equal(cancel?.value, 'r1');
  });

  it('Reroll and Variations submit jobs naming the parent generation; a double click has one key', async () => {
    for (const kind of ['reroll', 'variations'] as const) {
      const j = jobs();
      const x = io();
      const body = { team: { id: 'T1' }, channel: { id: 'C1' }, user: { id: 'U2', team_id: 'T1' }, container: {}, trigger_id: 't-1' } as unknown as ButtonArgs['body'];
      const click = () => regenerateButton(core(j), kind)({ ack: x.ack as unknown as ButtonArgs['ack'], respond: x.respond, body, action: { value: 'g7' } as ButtonArgs['action'], client: noClient });
      await click();
      await click();
      assert.deepEqual(j.submitted.map((s) => s.ask), [{ kind, generationId: 'g7' }, { kind, generationId: 'g7' }]);
      assert.equal(new Set(j.submitted.map((s) => s.key)).size, 1, 'the same click gives the same request key');
      assert.match(x.responses[0].text, /Queued/);
      assert.equal(x.responses[0].replace_original, false, 'the generation message with the buttons stays');
    }
  });

  it('Cancel passes the request id and who clicked; a refusal is shown, not thrown', async () => {
    const j = jobs();
    const x = io();
    const body = { team: { id: 'T1' }, channel: { id: 'C1' }, user: { id: 'U3', team_id: 'T1' }, container: {} } as unknown as ButtonArgs['body'];
    await cancelButton(core(j))({ ack: x.ack as unknown as ButtonArgs['ack'], respond: x.respond, body, action: { value: 'r42' } as ButtonArgs['action'], client: noClient });
    assert.deepEqual(j.cancelled, ['r42']);
    assert.match(x.responses[0].text, /Cancelled/);
    const refusing = jobs({ cancel: async () => { throw new UserError('Too late: a worker is already drawing it.'); } });
    await cancelButton(core(refusing))({ ack: x.ack as unknown as ButtonArgs['ack'], respond: x.respond, body, action: { value: 'r43' } as ButtonArgs['action'], client: noClient });
    assert.match(x.responses[1].text, /Too late/);
  });

  it('a refused submission (busy, per-user limit) reaches the user privately', async () => {
    const j = jobs({ submit: async () => { throw new UserError('The bot is very busy: your images would take about 3 min. Please try again later.'); } });
    const x = io();
    const command = { text: 'cows', user_id: 'U1', channel_id: 'C1', team_id: 'T1', trigger_id: 'x' } as unknown as ImagineCommandArgs['command'];
    await imagineCommand(core(j))({ command, ack: x.ack, respond: x.respond, client: noClient });
    assert.match(x.responses[0].text, /very busy/);
  });
});
