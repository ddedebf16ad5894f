/**
 * Discord "Manage Server" makes a member an admin only in the guilds of DISCORD_ADMIN_GUILD_IDS (default:
 * DISCORD_GUILD_ID when set, else none); ADMIN_USER_IDS are admins anywhere; /train and /model are registered
 * with default member permissions Manage Server, so other members do not even see them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PermissionFlagsBits, PermissionsBitField, type Interaction } from 'discord.js';
import { loadConfig } from '../../../src/config/env.js';
import { createBotRuntime, type BotRuntime } from '../../../src/app.js';
import { actorOf } from '../../../src/bot/discord/context.js';
import { commandDefinitions } from '../../../src/bot/discord/commands/index.js';
import { NotAllowedError } from '../../../src/bot/core/errors.js';
import { TINY_CLIP_DIR, tempDataDir } from '../../app/helpers.js';

const HOME_GUILD = '111111111111111111';
const OTHER_GUILD = '222222222222222222';
const TOKENS = { DISCORD_TOKEN: 'x', DISCORD_APPLICATION_ID: '333333333333333333' };

/** What actorOf reads of an interaction: a member with or without Manage Server in a guild. */
function interaction(guildId: string | null, userId: string, manageServer: boolean): Interaction {
  return {
    guildId, channelId: '444444444444444444', user: { id: userId },
    memberPermissions: guildId ? new PermissionsBitField(manageServer ? PermissionFlagsBits.ManageGuild : 0n) : null,
  } as unknown as Interaction;
}

describe('Discord admins', () => {
  let dataDir: string;
  let runtime: BotRuntime;

  before(async () => {
    dataDir = tempDataDir('admin-guilds-');
    const config = loadConfig({ ...TOKENS, DISCORD_GUILD_ID: HOME_GUILD, ADMIN_USER_IDS: 'discord:555555555555555555' });
    runtime = await createBotRuntime({ ...config, DATA_DIR: dataDir, CLIP_MODEL: TINY_CLIP_DIR }, { clipQuantized: false });
  });
  after(async () => {
    await runtime?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('Manage Server counts in the admin guild only', async () => {
    const core = runtime.core;
    assert.match(await core.trainStatus(actorOf(interaction(HOME_GUILD, '666666666666666666', true))), /No training run/);
    await assert.rejects(core.trainStatus(actorOf(interaction(OTHER_GUILD, '666666666666666666', true))), NotAllowedError,
      'Manage Server in another guild the bot is in is not admin');
    await assert.rejects(core.modelUse(actorOf(interaction(OTHER_GUILD, '666666666666666666', true)), 'anything'), NotAllowedError);
    await assert.rejects(core.trainStatus(actorOf(interaction(HOME_GUILD, '777777777777777777', false))), NotAllowedError);
    await assert.rejects(core.trainStatus(actorOf(interaction(null, '666666666666666666', true))), NotAllowedError, 'not in a DM');
  });

  it('ADMIN_USER_IDS are admins in any guild and in DMs', async () => {
    for (const guild of [HOME_GUILD, OTHER_GUILD, null]) {
      assert.match(await runtime.core.trainStatus(actorOf(interaction(guild, '555555555555555555', false))), /No training run/);
    }
  });
});

describe('DISCORD_ADMIN_GUILD_IDS', () => {
  it('defaults to DISCORD_GUILD_ID, else no guild; takes a list; refuses what is not a guild id', () => {
    assert.deepEqual(loadConfig({ ...TOKENS, DISCORD_GUILD_ID: HOME_GUILD }).DISCORD_ADMIN_GUILD_IDS, [HOME_GUILD]);
    assert.deepEqual(loadConfig({ ...TOKENS }).DISCORD_ADMIN_GUILD_IDS, []);
    assert.deepEqual(loadConfig({ ...TOKENS, DISCORD_GUILD_ID: HOME_GUILD, DISCORD_ADMIN_GUILD_IDS: `${OTHER_GUILD}, ${HOME_GUILD}` }).DISCORD_ADMIN_GUILD_IDS,
      [OTHER_GUILD, HOME_GUILD]);
    assert.throws(() => loadConfig({ ...TOKENS, DISCORD_ADMIN_GUILD_IDS: 'my-server' }), /DISCORD_ADMIN_GUILD_IDS: "my-server" is not a Discord guild id/);
  });
});

describe('slash command registration', () => {
  it('registers /train and /model for Manage Server members by default, /imagine for everyone', () => {
    const defs = new Map(commandDefinitions().map((d) => [d.name, d]));
    const manageGuild = String(PermissionFlagsBits.ManageGuild);
    assert.equal(defs.get('train')?.default_member_permissions, manageGuild);
    assert.equal(defs.get('model')?.default_member_permissions, manageGuild);
    assert.ok(defs.get('imagine')?.default_member_permissions == null);
  });
});
