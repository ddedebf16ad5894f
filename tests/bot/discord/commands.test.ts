import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commandDefinitions } from '../../../src/bot/discord/commands/index.js';
import { decodeCustomId, encodeCustomId, generationButtons } from '../../../src/bot/discord/components.js';
import { registerCommands } from '../../../src/cli/commands/register-commands.js';
import { FakeDiscord } from '../../fakes/discord-server.js';
import { DiscordAPIError } from 'discord.js';
import { safeError } from '../../../src/bot/discord/log-safe.js';

describe('discord command definitions', () => {
  it('define /imagine, /train and /model with their options', () => {
    const defs = commandDefinitions() as any[];
    assert.deepEqual(defs.map((d) => d.name), ['imagine', 'train', 'model']);
    const imagine = defs[0];
    assert.deepEqual(imagine.options.map((o: any) => [o.name, o.required ?? false]), [['prompt', true], ['count', false], ['seed', false], ['model', false]]);
    assert.equal(imagine.options[0].max_length, 500);
    assert.equal(imagine.options[1].max_value, 4);
    assert.deepEqual(defs[1].options.map((o: any) => o.name), ['start', 'status', 'stop']);
    assert.deepEqual(defs[2].options.map((o: any) => o.name), ['list', 'use', 'publish', 'unpublish']);
  });

  it('custom ids round-trip and reject anything else', () => {
    for (const b of [{ action: 'reroll', generationId: 'abc_-9' }, { action: 'vary', generationId: 'x' }, { action: 'image', generationId: 'g1', index: 3 }] as const) {
      assert.deepEqual(decodeCustomId(encodeCustomId(b)), b);
    }
    for (const bad of ['gen:reroll:a:1', 'gen:image:a', 'gen:delete:a', 'gen:reroll:../x', 'other']) assert.equal(decodeCustomId(bad), null, bad);
    const rows = generationButtons('g1', 3).map((r) => r.toJSON());
    assert.deepEqual(rows[1].components.map((c: any) => c.custom_id), ['gen:image:g1:0', 'gen:image:g1:1', 'gen:image:g1:2']);
    assert.ok(encodeCustomId({ action: 'image', generationId: 'a'.repeat(64), index: 3 }).length <= 100);
  });

  it('register-commands PUTs the definitions, globally or to one guild', async () => {
    const fake = new FakeDiscord();
    await fake.start();
    try {
      const env = { DISCORD_TOKEN: 'tkn', DISCORD_APPLICATION_ID: fake.applicationId, DISCORD_API_URL: fake.apiUrl };
      const out: string[] = [];
      assert.deepEqual(await registerCommands({ env }, { write: (t) => out.push(t) }), ['imagine', 'train', 'model']);
      assert.match(out[0], /registered 3 commands \(\/imagine, \/train, \/model\) globally/);
      await registerCommands({ env, guild: fake.guildId }, { write: (t) => out.push(t) });
      assert.match(out[1], new RegExp(`in guild ${fake.guildId}`));
      const puts = fake.requests.filter((r) => r.method === 'PUT');
      assert.deepEqual(puts.map((r) => r.path), [`/applications/${fake.applicationId}/commands`, `/applications/${fake.applicationId}/guilds/${fake.guildId}/commands`]);
      assert.equal(puts[0].authorization, 'Bot tkn');
      assert.equal(puts[0].body.length, 3);
      await assert.rejects(registerCommands({ env, guild: 'abc' }), /--guild must be a Discord server id/);
      await assert.rejects(registerCommands({ env: { DISCORD_TOKEN: 'x' } }), /DISCORD_APPLICATION_ID: is missing/);
    } finally {
      await fake.close();
    }
  });
});

describe('discord error logging', () => {
  it('redacts interaction tokens and drops request bodies', () => {
    const url = 'https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb24tdG9rZW4/messages/%40original';
    const err = new DiscordAPIError({ message: 'Unknown Webhook', code: 10015 }, 10015, 404, 'PATCH', url,
      { files: [{ name: 'x.png', data: Buffer.alloc(10) }], body: { content: 'secret prompt' } });
    const logged = JSON.stringify(safeError(err));
    assert.doesNotMatch(logged, /aW50ZXJhY3Rpb24tdG9rZW4|secret prompt|x\.png/);
    assert.match(logged, /webhooks\/123\/\[redacted\]\/messages/);
    assert.match(logged, /"status":404/);
    assert.match(logged, /"code":10015/);
  });
});
