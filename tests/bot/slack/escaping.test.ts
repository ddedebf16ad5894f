/**
 * Everything the bot posts to Slack that carries user text goes through one escape: message text, fallback
 * text, file comments and blocks. A prompt with a group mention, @here, a disguised link or bare &, <, > is
 * shown as text, never as a ping or a link. The public image post names who asked (`<@U...>`), because
 * Slack shows a slash command to nobody but its author. Text Slack sends us (entity-escaped) is decoded once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { webApi } from '@slack/bolt';
import type { BotCore, ImagineReply } from '../../../src/bot/core/types.js';
import { UserError } from '../../../src/errors.js';
import { imagineCommand, type ImagineCommandArgs } from '../../../src/bot/slack/listeners/commands/imagine.js';
import { regenerateButton, singleImageButton, type ButtonArgs } from '../../../src/bot/slack/listeners/actions/generation-buttons.js';
import { escapeMrkdwn } from '../../../src/bot/slack/blocks.js';
import { cleanPrompt } from '../../../src/bot/core/prompt.js';

/** Prompts as a user could send them (as the core would pass them on, uncleaned). */
const HOSTILE = [
  'cows <!subteam^S0123|@oncall> in snow',
  'sheep <!here> on a hill',
  'a barn <https://evil.example/x|click here>',
  'fish & chips <b> >> << &amp; done',
  'hi <!channel> <@U999|boss> <#C42|general> <mailto:a@evil.example|mail>',
];

/** Every string a Slack call would render: text, fallback text, comments and block texts. */
function renderedTexts(calls: { name: string; args: any }[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key = '') => {
    if (typeof v === 'string') {
      if (['text', 'initial_comment', 'fallback', 'pretext'].includes(key)) out.push(v);
      return;
    }
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  for (const c of calls) walk(c.args);
  return out;
}

/** No Slack control sequence in `text` except the allowed `<@U...>` mentions; `&` only in entities. */
function assertInert(text: string, allowedMentions: string[]): void {
  let rest = text;
  for (const m of allowedMentions) rest = rest.split(m).join('');
  assert.ok(!/[<>]/.test(rest), `no < or > left: ${text}`);
  assert.ok(!/&(?!amp;|lt;|gt;)/.test(rest), `every & is an entity: ${text}`);
}

function fakeClient(calls: { name: string; args: any }[]) {
  let n = 0;
  return {
    files: {
      uploadV2: async (args: unknown) => { calls.push({ name: 'files.uploadV2', args }); return { ok: true, files: [{ ok: true, files: [{ id: `F${++n}` }] }] }; },
      info: async (args: { file: string }) => ({ ok: true, file: { id: args.file, shares: { public: { C1: [{ ts: `100.${args.file}` }] } } } }),
    },
    chat: { postMessage: async (args: unknown) => { calls.push({ name: 'chat.postMessage', args }); return { ok: true, ts: `200.${++n}` }; } },
  } as unknown as webApi.WebClient;
}

/** A core that echoes the prompt into its reply exactly as given (the escape must not rely on the core's cleaning). */
function echoCore(): BotCore {
  const reply = (prompt: string, userId: string): ImagineReply => ({
    generationId: 'g1', prompt, userId, seeds: [7], model: 'm<1>&', grid: Buffer.from('png'), images: [Buffer.from('png'), Buffer.from('png')],
    text: `“${prompt}” · seed 7 · model m<1>&`,
  });
  let last = '';
  return {
    imagine: async (a, opts) => { last = opts.prompt; return reply(opts.prompt, a.userId); },
    reroll: async (a) => reply(last, a.userId), variations: async (a) => reply(last, a.userId),
    singleImage: async () => ({ png: Buffer.from('png'), text: `“${last}” · seed 7` }),
    attachMessage: async () => undefined, recordReaction: async () => true,
    trainStart: async () => '', trainStatus: async () => '', trainStop: async () => '', modelList: async () => '', modelUse: async () => '',
  };
}

function slashArgs(text: string, calls: { name: string; args: any }[]) {
  const acks: unknown[] = [];
  const responses: unknown[] = [];
  const args = {
    command: { text, user_id: 'U0ASKER', channel_id: 'C1', team_id: 'T1', command: '/imagine', response_url: 'http://unused' },
    ack: async (r?: unknown) => { acks.push(r); },
    respond: async (r: unknown) => { responses.push(r); },
    client: fakeClient(calls),
  } as unknown as ImagineCommandArgs;
  return { args, acks, responses };
}

describe('Slack escaping', () => {
  for (const prompt of HOSTILE) {
    it(`posts “${prompt}” as inert text, naming who asked`, async () => {
      const calls: { name: string; args: any }[] = [];
      const { args, acks, responses } = slashArgs(prompt, calls);
      await imagineCommand(echoCore(), { delaysMs: [0] })(args);
      const texts = [...renderedTexts(calls), ...renderedTexts([{ name: 'ack', args: acks }, { name: 'respond', args: responses }])];
      assert.ok(texts.length >= 4, `the ack, the comment, the fallback text and the blocks were checked (${texts.length})`);
      for (const t of texts) assertInert(t, ['<@U0ASKER>']);
      const comment = calls.find((c) => c.name === 'files.uploadV2')!.args.initial_comment as string;
      assert.match(comment, / · asked by <@U0ASKER>$/, 'the public post names who asked');
    });
  }

  it('escapes the posts of the buttons (reroll by another user, single image)', async () => {
    const calls: { name: string; args: any }[] = [];
    const core = echoCore();
    await core.imagine({ platform: 'slack', workspaceId: 'T1', channelId: 'C1', userId: 'U0ASKER' }, { prompt: HOSTILE[0] });
    const body = { user: { id: 'U0OTHER', team_id: 'T1' }, team: { id: 'T1' }, channel: { id: 'C1' }, message: { ts: '1.2' } };
    const base = { ack: async () => {}, respond: async () => {}, client: fakeClient(calls), body } as unknown as ButtonArgs;
    await regenerateButton(core, 'reroll', { delaysMs: [0] })({ ...base, action: { value: 'g1' } } as unknown as ButtonArgs);
    await singleImageButton(core, { delaysMs: [0] })({ ...base, action: { value: 'g1:1' } } as unknown as ButtonArgs);
    const texts = renderedTexts(calls);
    for (const t of texts) assertInert(t, ['<@U0OTHER>']);
    assert.match(calls[0].args.initial_comment, / · asked by <@U0OTHER>$/, 'a reroll names who pressed it');
  });

  it('escapes an error message that quotes the prompt', async () => {
    const calls: { name: string; args: any }[] = [];
    const { args, responses } = slashArgs('x', calls);
    const failing = { ...echoCore(), imagine: async () => { throw new UserError('No model `<!here>` & <https://evil.example|x>'); } };
    await imagineCommand(failing, { delaysMs: [0] })(args);
    for (const t of renderedTexts([{ name: 'respond', args: responses }])) assertInert(t, []);
  });

  it('decodes the entities Slack sends once, so a prompt is what the user typed', async () => {
    const seen: string[] = [];
    const core = { ...echoCore(), imagine: async (_a: unknown, o: { prompt: string }) => { seen.push(o.prompt); throw new UserError('stop'); } } as BotCore;
    const { args } = slashArgs('fish &amp; chips &lt;3 &gt; 2', []);
    await imagineCommand(core, { delaysMs: [0] })(args);
    assert.deepEqual(seen, ['fish & chips <3 > 2']);
    assert.equal(escapeMrkdwn('fish & chips <3 > 2'), 'fish &amp; chips &lt;3 &gt; 2');
  });

  it('strips Slack group mentions and special mentions from prompts', () => {
    assert.equal(cleanPrompt('cows <!subteam^S0123|@oncall> in <!here> snow <!channel> <!date^1392734382^{date}|Feb 18>'), 'cows in snow');
  });
});
