/** The pure parser of interaction JSON (HTTP interactions): typed commands and buttons, malformed payloads refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  actorOfSource, hasManageGuild, MalformedInteractionError, parseInteraction,
} from '../../../src/bot/discord/interaction-payload.js';
import { decodeCancelCustomId, encodeCancelCustomId } from '../../../src/bot/discord/components.js';

const base = (over: Record<string, unknown> = {}) => ({
  id: '1100000000000000001', application_id: '1200000000000000001', token: 'aW50ZXJhY3Rpb24.abc_-9', version: 1,
  guild_id: '1300000000000000001', channel_id: '1400000000000000001',
  member: { user: { id: '1500000000000000001', username: 'alice' }, permissions: '0' },
  ...over,
});
const command = (name: string, options?: unknown[], over: Record<string, unknown> = {}) =>
  base({ type: 2, data: { id: '1', name, type: 1, ...(options ? { options } : {}) }, ...over });
const str = (name: string, value: unknown) => ({ name, type: 3, value });
const int = (name: string, value: unknown) => ({ name, type: 4, value });
const sub = (name: string, options?: unknown[]) => ({ name, type: 1, ...(options ? { options } : {}) });
const button = (customId: unknown, componentType = 2) => base({ type: 3, data: { custom_id: customId, component_type: componentType } });

function malformed(json: unknown, pattern: RegExp): void {
  assert.throws(() => parseInteraction(json), (err: unknown) => err instanceof MalformedInteractionError && pattern.test(err.message));
}

describe('parseInteraction', () => {
  it('PING', () => {
    assert.deepEqual(parseInteraction({ type: 1, id: '1', application_id: '2', token: 't' }), { type: 'ping' });
  });

  it('/imagine with all options, and with the prompt only', () => {
    const p = parseInteraction(command('imagine', [str('prompt', 'sheep on a hill'), int('count', 3), int('seed', 7), str('model', 'demo')]));
    assert.equal(p.type, 'command');
    if (p.type !== 'command') return;
    assert.deepEqual(p.command, { name: 'imagine', options: { prompt: 'sheep on a hill', count: 3, seed: 7, model: 'demo' } });
    assert.deepEqual(p.source, {
      id: '1100000000000000001', applicationId: '1200000000000000001', token: 'aW50ZXJhY3Rpb24.abc_-9',
      guildId: '1300000000000000001', channelId: '1400000000000000001', userId: '1500000000000000001', manageGuild: false,
    });
    const only = parseInteraction(command('imagine', [str('prompt', 'a cow')]));
    assert.deepEqual(only.type === 'command' && only.command, { name: 'imagine', options: { prompt: 'a cow' } });
  });

  it('/train and /model subcommands become the typed commands of command-text.ts', () => {
    const cmd = (json: unknown) => { const p = parseInteraction(json); return p.type === 'command' ? p.command : null; };
    assert.deepEqual(cmd(command('train', [sub('start', [str('preset', 'tiny'), int('epochs', 5), str('dataset', 'farm')])])),
      { name: 'train', command: { verb: 'start', preset: 'tiny', epochs: 5, dataset: 'farm' } });
    assert.deepEqual(cmd(command('train', [sub('status')])), { name: 'train', command: { verb: 'status' } });
    assert.deepEqual(cmd(command('train', [sub('stop')])), { name: 'train', command: { verb: 'stop' } });
    assert.deepEqual(cmd(command('model', [sub('list')])), { name: 'model', command: { verb: 'list' } });
    assert.deepEqual(cmd(command('model', [sub('use', [str('name', 'm1')])])), { name: 'model', command: { verb: 'use', name: 'm1' } });
    assert.deepEqual(cmd(command('model', [sub('unpublish', [str('name', 'm1')])])), { name: 'model', command: { verb: 'unpublish', name: 'm1' } });
    assert.deepEqual(cmd(command('model', [sub('rename', [str('name', 'm1')])])), { name: 'unknown', commandName: 'model rename' });
    assert.deepEqual(cmd(command('paint', [])), { name: 'unknown', commandName: 'paint' });
  });

  it('buttons: generation buttons, Cancel, and unknown custom ids', () => {
    const btn = (json: unknown) => { const p = parseInteraction(json); return p.type === 'button' ? p.button : null; };
    assert.deepEqual(btn(button('gen:reroll:abc')), { action: 'reroll', generationId: 'abc' });
    assert.deepEqual(btn(button('gen:vary:abc')), { action: 'vary', generationId: 'abc' });
    assert.deepEqual(btn(button('gen:image:abc:2')), { action: 'image', generationId: 'abc', index: 2 });
    assert.deepEqual(btn(button(encodeCancelCustomId('req_123-x'))), { action: 'cancel', requestId: 'req_123-x' });
    assert.deepEqual(btn(button('gen:image:abc')), { action: 'unknown', customId: 'gen:image:abc' });
    assert.deepEqual(btn(button('job:cancel:has space')), { action: 'unknown', customId: 'job:cancel:has space' });
    assert.equal(parseInteraction(button('x', 3)).type, 'unsupported', 'a select menu');
    assert.equal(parseInteraction(base({ type: 4, data: {} })).type, 'unsupported', 'autocomplete');
  });

  it('Manage Server (or Administrator) in the permission bitfield makes the actor a platform admin, only in a guild', () => {
    const perms = (permissions: unknown, over: Record<string, unknown> = {}) => {
      const p = parseInteraction(command('model', [sub('list')], { member: { user: { id: '1500000000000000001' }, permissions }, ...over }));
      return p.type === 'command' ? actorOfSource(p.source).platformAdmin : null;
    };
    assert.equal(perms(String(1n << 5n)), true, 'Manage Server');
    assert.equal(perms(String(1n << 3n)), true, 'Administrator implies it');
    assert.equal(perms(String((1n << 40n) | (1n << 5n))), true, 'beyond 32 bits');
    assert.equal(perms(String(1n << 4n)), false, 'Manage Channels is not enough');
    assert.equal(perms('0'), false);
    assert.equal(perms(32), false, 'a number, not the documented string');
    assert.equal(perms('0x20'), false);
    assert.equal(hasManageGuild(undefined), false);
    // A DM: the user object at top level, no guild, no permissions.
    const dm = parseInteraction(command('imagine', [str('prompt', 'a cow')], { guild_id: undefined, member: undefined, user: { id: '1500000000000000002' } }));
    assert.ok(dm.type === 'command');
    if (dm.type === 'command') {
      assert.deepEqual(actorOfSource(dm.source), { platform: 'discord', workspaceId: 'dm', channelId: '1400000000000000001', userId: '1500000000000000002', platformAdmin: false });
    }
  });

  it('the channel id may come from the channel object', () => {
    const p = parseInteraction(command('imagine', [str('prompt', 'a cow')], { channel_id: undefined, channel: { id: '1400000000000000009' } }));
    assert.equal(p.type === 'command' && p.source.channelId, '1400000000000000009');
  });

  it('malformed payloads are refused with what is wrong', () => {
    malformed(null, /not a JSON object/);
    malformed([], /not a JSON object/);
    malformed('{"type":1}', /not a JSON object/);
    malformed({}, /type is missing/);
    malformed({ type: '2' }, /type is missing/);
    malformed(command('imagine', [str('prompt', 'x')], { id: 'abc' }), /interaction\.id/);
    malformed(command('imagine', [str('prompt', 'x')], { id: undefined }), /interaction\.id/);
    malformed(command('imagine', [str('prompt', 'x')], { application_id: 5 }), /application_id/);
    malformed(command('imagine', [str('prompt', 'x')], { token: '../../channels/1/messages' }), /token/);
    malformed(command('imagine', [str('prompt', 'x')], { token: '' }), /token/);
    malformed(command('imagine', [str('prompt', 'x')], { channel_id: undefined }), /channel_id/);
    malformed(command('imagine', [str('prompt', 'x')], { guild_id: 12 }), /guild_id/);
    malformed(command('imagine', [str('prompt', 'x')], { member: undefined }), /neither member.user nor user/);
    malformed(command('imagine', [str('prompt', 'x')], { member: { user: { id: 'bob' } } }), /user\.id/);
    malformed(base({ type: 2 }), /data is missing/);
    malformed(base({ type: 2, data: { options: [] } }), /data\.name/);
    malformed(command('imagine', 'prompt' as unknown as unknown[]), /options is not a list/);
    malformed(command('imagine', [{ value: 'x' }]), /has no name or type/);
    malformed(command('imagine', []), /prompt is required/);
    malformed(command('imagine', [int('prompt', 3)]), /prompt has type 4/);
    malformed(command('imagine', [{ name: 'prompt', type: 3, value: 3 }]), /prompt is not a string/);
    malformed(command('imagine', [str('prompt', 'x'), int('count', 1.5)]), /count is not a whole number/);
    malformed(command('imagine', [str('prompt', 'x'), int('count', '2')]), /count is not a whole number/);
    malformed(command('train', []), /has no subcommand/);
    malformed(command('train', [sub('start')]), /preset is required/);
    malformed(command('model', [sub('use', [{ name: 'name', type: 3 }])]), /name is not a string/);
    malformed(base({ type: 3 }), /data is missing/);
    malformed(button(undefined), /custom_id/);
    malformed(button('x'.repeat(101)), /custom_id/);
  });
});

describe('cancel custom ids', () => {
  it('round-trip and stay within Discord\'s 100 characters', () => {
    const id = 'r'.repeat(80);
    assert.equal(decodeCancelCustomId(encodeCancelCustomId(id)), id);
    assert.ok(encodeCancelCustomId(id).length <= 100);
    assert.equal(decodeCancelCustomId('gen:reroll:abc'), null);
    assert.equal(decodeCancelCustomId(`job:cancel:${'r'.repeat(81)}`), null);
  });
});
