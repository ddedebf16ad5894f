/**
 * The admin precondition: training and model commands are allowed only to users in the configured admin list
 * (`discord:123,slack:U456`) and, on Discord, to members with Manage Server (`actor.platformAdmin`).
 */
import { childLogger } from '../../log.js';
import { NotAllowedError } from './errors.js';
import type { Actor } from './types.js';

const log = childLogger('bot-admin');

/** Decides who may run admin commands. */
export class AdminPolicy {
  private readonly ids: Set<string>;

  /** @param adminIds platform-prefixed user ids, e.g. `discord:123`, `slack:U456`. */
  constructor(adminIds: Iterable<string>, private readonly opts: { trustPlatformAdmins?: boolean } = {}) {
    this.ids = new Set(adminIds);
  }

  /** True if the actor may run admin commands. */
  isAdmin(actor: Actor): boolean {
    if (this.ids.has(`${actor.platform}:${actor.userId}`)) return true;
    return actor.platform === 'discord' && (this.opts.trustPlatformAdmins ?? true) && actor.platformAdmin === true;
  }

  /** Throws NotAllowedError (and logs the attempt) unless the actor is an admin. */
  require(actor: Actor, action: string): void {
    if (this.isAdmin(actor)) return;
    log.warn({ platform: actor.platform, userId: actor.userId, workspaceId: actor.workspaceId, channelId: actor.channelId, action },
      'admin command refused');
    throw new NotAllowedError(`Sorry, only bot admins can use \`${action}\`. Ask an admin of this bot if you need it.`);
  }
}
