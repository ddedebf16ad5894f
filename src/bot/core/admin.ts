/**
 * The admin precondition: training and model commands are allowed only to users in the configured admin list
 * (`discord:123,slack:U456`, anywhere) and, on Discord, to members with Manage Server (`actor.platformAdmin`)
 * in the guilds listed as admin guilds (DISCORD_ADMIN_GUILD_IDS). Manage Server elsewhere counts for nothing:
 * for an invitable bot anyone has it in their own server, and training and the served model are global.
 */
import { childLogger } from '../../log.js';
import { NotAllowedError } from './errors.js';
import type { Actor } from './types.js';

const log = childLogger('bot-admin');

/** Decides who may run admin commands. */
export class AdminPolicy {
  private readonly ids: Set<string>;

  /** @param adminIds platform-prefixed user ids, e.g. `discord:123`, `slack:U456`. */
  private readonly adminGuilds: Set<string>;

  /**
   * @param adminIds platform-prefixed user ids, e.g. `discord:123`, `slack:U456`.
   * @param opts.platformAdminGuilds Discord guild ids where Manage Server makes a member an admin (default none).
   */
  constructor(adminIds: Iterable<string>, opts: { platformAdminGuilds?: Iterable<string> } = {}) {
    this.ids = new Set(adminIds);
    this.adminGuilds = new Set(opts.platformAdminGuilds ?? []);
  }

  /** True if the actor may run admin commands. */
  isAdmin(actor: Actor): boolean {
    if (this.ids.has(`${actor.platform}:${actor.userId}`)) return true;
    return actor.platform === 'discord' && actor.platformAdmin === true && this.adminGuilds.has(actor.workspaceId);
  }

  /** Throws NotAllowedError (and logs the attempt) unless the actor is an admin. */
  require(actor: Actor, action: string): void {
    if (this.isAdmin(actor)) return;
    log.warn({ platform: actor.platform, userId: actor.userId, workspaceId: actor.workspaceId, channelId: actor.channelId, action },
      'admin command refused');
    throw new NotAllowedError(`Sorry, only bot admins can use \`${action}\`. Ask an admin of this bot if you need it.`);
  }
}
