/**
 * The Slack listeners as small functions, called directly with fakes for ack/respond/client and the core
 * (the bolt-ts-starter-template style); plus the training progress sink, config mapping and start-up errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { webApi } from '@slack/bolt';
import { NotAllowedError, UserError } from '../../../src/bot/core/errors.js';
import type { Actor, BotCore, ImagineReply, ReactionEvent, TrainingProgressSink } from '../../../src/bot/core/types.js';
import { imagineCommand, type ImagineCommandArgs } from '../../../src/bot/slack/listeners/commands/imagine.js';
import { cvaeTrainCommand, type TrainCommandArgs } from '../../../src/bot/slack/listeners/commands/cvae-train.js';
import { cvaeModelCommand, type ModelCommandArgs } from '../../../src/bot/slack/listeners/commands/cvae-model.js';
import { regenerateButton, type ButtonArgs } from '../../../src/bot/slack/listeners/actions/generation-buttons.js';
import { reactionListener, type ReactionArgs } from '../../../src/bot/slack/listeners/events/reactions.js';
import { SlackTrainingSink } from '../../../src/bot/slack/progress-sink.js';
import { slackConfigFrom } from '../../../src/bot/slack/config.js';
import { startSlack } from '../../../src/bot/slack/index.js';
import { findShareTs } from '../../../src/bot/slack/publish.js';
import { startFakeSlack } from '../../fakes/slack-server.js';

type Call = { name: string; args: unknown };

/** A fake WebClient recording calls; files.info reports the share at once. */
function fakeClient(log: Call[], opts: { failWith?: string; infoFails?: boolean } = {}) {
  let n = 0;
  const fail = (name: string) => {
    if (opts.failWith) throw Object.assign(new Error(`An API error occurred: ${opts.failWith}`), { data: { ok: false, error: opts.failWith } });
    return name;
  };
  const client = {
    files: {
      uploadV2: async (args: unknown) => { fail('upload'); log.push({ name: 'files.uploadV2', args }); return { ok: true, files: [{ ok: true, files: [{ id: `F${++n}` }] }] }; },
      info: async (args: { file: string }) => {
        log.push({ name: 'files.info', args });
        if (opts.infoFails) throw Object.assign(new Error('missing_scope'), { data: { ok: false, error: 'missing_scope' } }); return { ok: true, file: { id: args.file, shares: { public: { C1: [{ ts: `100.${args.file}` }] } } } }; },
    },
    chat: {
      postMessage: async (args: unknown) => { fail('post'); log.push({ name: 'chat.postMessage', args }); return { ok: true, ts: `200.${++n}` }; },
      update: async (args: unknown) => { log.push({ name: 'chat.update', args }); return { ok: true }; },
    },
  };
  return client as unknown as webApi.WebClient;
}

function reply(): ImagineReply {
  return { generationId: 'g1', prompt: 'cows', seeds: [7], model: 'm1', userId: 'U1', grid: Buffer.from('png'), images: [Buffer.from('png')], text: '“cows” · seed 7 · model m1' };
}

/** A core whose methods record their calls; override what a test needs. */
function fakeCore(over: Partial<BotCore> = {}): BotCore & { seen: Call[] } {
  const seen: Call[] = [];
  const core: BotCore = {
    imagine: async (actor, opts) => { seen.push({ name: 'imagine', args: { actor, opts } }); return reply(); },
    reroll: async () => reply(),
    variations: async () => reply(),
    singleImage: async () => ({ png: Buffer.from('png'), text: 'x' }),
    attachMessage: async (generationId, messageRef) => { seen.push({ name: 'attachMessage', args: { generationId, messageRef } }); },
    recordReaction: async (r) => { seen.push({ name: 'recordReaction', args: r }); return true; },
    trainStart: async (actor, opts, sink) => { seen.push({ name: 'trainStart', args: { actor, opts, sink } }); return 'Started `run-1`; see /train status'; },
    trainStatus: async () => 'No training run is going.',
    trainStop: async () => 'No training run is going.',
    modelList: async () => 'm1 (active)',
    modelUse: async (_a, name) => `Now serving ${name}`,
    ...over,
  };
  return Object.assign(core, { seen });
}

function command(text: string, userId = 'U1') {
  return { text, user_id: userId, channel_id: 'C1', team_id: 'T1', command: '/x', response_url: 'http://unused' } as unknown as ImagineCommandArgs['command'];
}

function ackRespond() {
  const acks: unknown[] = [];
  const responses: unknown[] = [];
  return {
    acks, responses,
    ack: (async (r?: unknown) => { acks.push(r); }) as unknown as ImagineCommandArgs['ack'],
    respond: (async (r: unknown) => { responses.push(r); }) as unknown as ImagineCommandArgs['respond'],
  };
}

describe('slack /imagine handler', () => {
  it('acks before the core answers, then posts and attaches the share message', async () => {
    let release!: (r: ImagineReply) => void;
    const core = fakeCore({ imagine: (actor, opts) => { core.seen.push({ name: 'imagine', args: { actor, opts } }); return new Promise((r) => { release = r; }); } });
    const calls: Call[] = [];
    const io = ackRespond();
    const done = imagineCommand(core, { delaysMs: [0] })({ command: command('cows --count 1 --seed 7'), ack: io.ack, respond: io.respond, client: fakeClient(calls) });
    await new Promise((r) => setImmediate(r));
    assert.equal(io.acks.length, 1, 'acked while the core is still generating');
    assert.equal((io.acks[0] as { response_type: string }).response_type, 'ephemeral');
    const { actor, opts } = core.seen[0].args as { actor: Actor; opts: unknown };
    assert.deepEqual(actor, { platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId: 'U1' });
    assert.deepEqual(opts, { prompt: 'cows', count: 1, seed: 7 });
    release(reply());
    await done;
    assert.deepEqual(calls.map((c) => c.name), ['files.uploadV2', 'files.info', 'chat.postMessage']);
    const upload = calls[0].args as { channel_id: string; initial_comment: string; file: Buffer };
    assert.equal(upload.channel_id, 'C1');
    assert.match(upload.initial_comment, /cows.*seed 7.*m1/);
    assert.deepEqual(core.seen.find((c) => c.name === 'attachMessage')?.args, { generationId: 'g1', messageRef: 'C1:100.F1' });
    assert.deepEqual(io.responses, []);
  });

  it('acks with the usage for text it cannot parse and never calls the core', async () => {
    const core = fakeCore();
    const io = ackRespond();
    await imagineCommand(core)({ command: command('   '), ack: io.ack, respond: io.respond, client: fakeClient([]) });
    assert.match((io.acks[0] as { text: string }).text, /Usage/);
    assert.equal(core.seen.length, 0);
  });

  it('sends user errors as they are, other errors as an apology, both ephemeral', async () => {
    for (const [err, expected] of [[new UserError('Too many <images>'), /Too many &lt;images&gt;/], [new Error('db exploded'), /Sorry, something went wrong/]] as const) {
      const io = ackRespond();
      await imagineCommand(fakeCore({ imagine: async () => { throw err; } }))({ command: command('cows'), ack: io.ack, respond: io.respond, client: fakeClient([]) });
      const r = io.responses[0] as { response_type: string; text: string };
      assert.equal(r.response_type, 'ephemeral');
      assert.match(r.text, expected);
      assert.doesNotMatch(r.text, /db exploded/);
    }
  });

  it('tells the user their queue position', async () => {
    const io = ackRespond();
    const core = fakeCore({ imagine: async (_a, _o, hooks) => { await hooks?.onQueued?.(2); return reply(); } });
    await imagineCommand(core, { delaysMs: [0] })({ command: command('cows'), ack: io.ack, respond: io.respond, client: fakeClient([]) });
    assert.match((io.responses[0] as { text: string }).text, /number 2 in the queue/);
  });

  it('tells the user their queue position on Reroll and Variations too', async () => {
    for (const kind of ['reroll', 'variations'] as const) {
      const io = ackRespond();
      const calls: Call[] = [];
      const core = fakeCore({ [kind]: async (_a: Actor, id: string, hooks?: { onQueued?(p: number): unknown }) => { assert.equal(id, 'g0'); await hooks?.onQueued?.(3); return reply(); } });
      const body = { team: { id: 'T1' }, channel: { id: 'C1' }, user: { id: 'U1', team_id: 'T1' }, container: {} } as unknown as ButtonArgs['body'];
      await regenerateButton(core, kind, { delaysMs: [0] })({ ack: io.ack as unknown as ButtonArgs['ack'], respond: io.respond, body, action: { value: 'g0' } as ButtonArgs['action'], client: fakeClient(calls) });
      assert.match((io.responses[0] as { text: string }).text, /number 3 in the queue/, kind);
      assert.ok(calls.some((c) => c.name === 'files.uploadV2'), `${kind} still posts the grid`);
    }
  });

  it('still posts the picture and buttons when files.info is refused (no files:read scope)', async () => {
    const io = ackRespond();
    const calls: Call[] = [];
    const core = fakeCore();
    await imagineCommand(core, { delaysMs: [0] })({ command: command('cows'), ack: io.ack, respond: io.respond, client: fakeClient(calls, { infoFails: true }) });
    assert.deepEqual(calls.map((c) => c.name), ['files.uploadV2', 'files.info', 'chat.postMessage']);
    assert.equal(core.seen.filter((c) => c.name === 'attachMessage').length, 0);
    assert.deepEqual(io.responses, []);
  });

  it('explains not_in_channel with /invite', async () => {
    const io = ackRespond();
    await imagineCommand(fakeCore(), { delaysMs: [0] })({ command: command('cows'), ack: io.ack, respond: io.respond, client: fakeClient([], { failWith: 'not_in_channel' }) });
    assert.match((io.responses[0] as { text: string }).text, /\/invite/);
  });
});

describe('slack admin command handlers', () => {
  it('/cvae-train start passes preset, epochs, dataset and a sink for this channel', async () => {
    const core = fakeCore();
    const io = ackRespond();
    await cvaeTrainCommand(core)({ command: command('start preset:tiny epochs:2 dataset:synth', 'U456'), ack: io.ack, respond: io.respond, client: fakeClient([]) } as TrainCommandArgs);
    assert.deepEqual(io.acks, [undefined], 'an empty ack');
    const { opts, sink } = core.seen[0].args as { opts: unknown; sink: SlackTrainingSink };
    assert.deepEqual(opts, { preset: 'tiny', epochs: 2, dataset: 'synth' });
    assert.ok(sink instanceof SlackTrainingSink);
    assert.equal(sink.channel, 'C1');
    assert.match((io.responses[0] as { text: string }).text, /Started `run-1`; see \/cvae-train status/);
  });

  it('refusals from the core go back ephemeral', async () => {
    const io = ackRespond();
    const core = fakeCore({ trainStop: async () => { throw new NotAllowedError(); }, modelUse: async () => { throw new NotAllowedError(); } });
    await cvaeTrainCommand(core)({ command: command('stop', 'U9'), ack: io.ack, respond: io.respond, client: fakeClient([]) } as TrainCommandArgs);
    await cvaeModelCommand(core)({ command: command('use m2', 'U9'), ack: io.ack, respond: io.respond } as ModelCommandArgs);
    assert.equal(io.responses.length, 2);
    for (const r of io.responses as { response_type: string; text: string }[]) {
      assert.equal(r.response_type, 'ephemeral');
      assert.match(r.text, /only bot admins/);
    }
  });

  it('usage errors are acked without calling the core', async () => {
    const core = fakeCore();
    const io = ackRespond();
    await cvaeModelCommand(core)({ command: command('drop m1'), ack: io.ack, respond: io.respond } as ModelCommandArgs);
    await cvaeTrainCommand(core)({ command: command('go'), ack: io.ack, respond: io.respond, client: fakeClient([]) } as TrainCommandArgs);
    assert.match((io.acks[0] as { text: string }).text, /Usage: `\/cvae-model list`/);
    assert.match((io.acks[1] as { text: string }).text, /Unknown action `go`/);
    assert.equal(core.seen.length, 0);
  });
});

describe('slack reaction handler', () => {
  const event = (type: 'reaction_added' | 'reaction_removed', ts: string, itemType = 'message') =>
    ({ event: { type, user: 'U7', reaction: '+1', item: { type: itemType, channel: 'C1', ts }, item_user: 'UBOT', event_ts: '1' } }) as unknown as ReactionArgs;

  it('forwards added and removed reactions with messageRef channel:ts', async () => {
    const core = fakeCore();
    const handle = reactionListener(core);
    await handle(event('reaction_added', '1.1'));
    await handle(event('reaction_removed', '1.1'));
    await handle(event('reaction_added', '1.1', 'file'));
    assert.deepEqual(core.seen.map((c) => c.args as ReactionEvent), [
      { platform: 'slack', messageRef: 'C1:1.1', userId: 'U7', reaction: '+1', added: true },
      { platform: 'slack', messageRef: 'C1:1.1', userId: 'U7', reaction: '+1', added: false },
    ]);
  });
});

describe('slack training progress sink', () => {
  it('posts the status once, edits it afterwards, and puts images in its thread', async () => {
    const calls: Call[] = [];
    const sink: TrainingProgressSink = new SlackTrainingSink(fakeClient(calls), 'C1');
    const run = { runId: 'r1', preset: '<tiny>', epochs: 2 };
    await Promise.all([
      sink.update({ ...run, state: 'starting', fraction: 0, resolution: 16, trainSize: 8 }),
      sink.image({ kind: 'samples', epoch: 1, epochs: 2, valLoss: 812.25, best: true, png: Buffer.from('png') }),
      sink.update({ ...run, state: 'finished', fraction: 1, reason: 'completed', epochsCompleted: 2, bestValLoss: 812.25, registered: 'x' }),
    ]);
    assert.deepEqual(calls.map((c) => c.name), ['chat.postMessage', 'files.uploadV2', 'chat.update']);
    assert.equal((calls[0].args as { text: string }).text, 'Training run `r1` (preset `&lt;tiny&gt;`, 16 px, 8 training images): starting 2 epoch(s)…');
    const upload = calls[1].args as { thread_ts: string; filename: string; channel_id: string; title: string };
    assert.equal(upload.thread_ts, '200.1');
    assert.equal(upload.filename, 'samples-epoch-1.png');
    assert.equal(upload.title, 'Epoch 1/2: val loss 812.3 (best so far): samples');
    assert.deepEqual(calls[2].args, { channel: 'C1', ts: '200.1',
      text: 'Training run `r1` finished after 2 epoch(s), best val loss 812.3. Checkpoint registered as `x`; serve it with `/cvae-model use x`.' });
  });
});

describe('slack config and start-up', () => {
  it('maps the validated environment to the adapter settings', () => {
    assert.deepEqual(
      slackConfigFrom({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_APP_TOKEN: undefined, SLACK_PORT: 3100, SLACK_API_URL: 'http://127.0.0.1:9/api/' }),
      { botToken: 'xoxb-1', signingSecret: 's', port: 3100, apiUrl: 'http://127.0.0.1:9/api/' },
    );
    assert.equal(slackConfigFrom({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_APP_TOKEN: 'xapp-1', SLACK_PORT: 3000, SLACK_API_URL: undefined }).appToken, 'xapp-1');
    assert.throws(() => slackConfigFrom({ SLACK_BOT_TOKEN: undefined, SLACK_SIGNING_SECRET: 's', SLACK_APP_TOKEN: undefined, SLACK_PORT: 3000, SLACK_API_URL: undefined }), UserError);
  });

  it('refuses to start with a token Slack rejects, with a message naming SLACK_BOT_TOKEN', async () => {
    const fake = await startFakeSlack({ token: 'xoxb-right' });
    try {
      await assert.rejects(
        startSlack(fakeCore(), { botToken: 'xoxb-wrong', signingSecret: 's', port: 0, host: '127.0.0.1', apiUrl: fake.apiUrl, apiRetries: 0 }),
        (err: unknown) => err instanceof UserError && /invalid_auth/.test(err.message) && /SLACK_BOT_TOKEN/.test(err.message) && !err.message.includes('xoxb-wrong'),
      );
    } finally {
      await fake.close();
    }
  });

  it('findShareTs polls files.info until the share shows up (or gives up)', async () => {
    let calls = 0;
    const client = { files: { info: async () => ({ ok: true, file: { shares: ++calls < 3 ? {} : { private: { G1: [{ ts: '5.5' }] } } } }) } } as unknown as webApi.WebClient;
    assert.equal(await findShareTs(client, 'F1', 'G1', { delaysMs: [0, 1, 1, 1] }), '5.5');
    assert.equal(calls, 3);
    calls = -100;
    assert.equal(await findShareTs(client, 'F1', 'G1', { delaysMs: [0, 1] }), undefined);
    const noScope = { files: { info: async () => { throw Object.assign(new Error('missing_scope'), { data: { ok: false, error: 'missing_scope' } }); } } } as unknown as webApi.WebClient;
    assert.equal(await findShareTs(noScope, 'F1', 'G1', { delaysMs: [0, 1] }), undefined, 'a files.info failure is not fatal');
  });
});
