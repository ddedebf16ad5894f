/**
 * Who may use the playground, and as whom. The page's user is the local admin (`web:local`) only when the
 * server listens on a loopback address, or when the request presents `PLAYGROUND_ADMIN_TOKEN`
 * (`Authorization: Bearer <token>`); anyone else who reaches a network bind (HOST=0.0.0.0, as the Docker
 * images set) is a guest (`web:guest`): they may draw, not train or switch models.
 *
 * Every request must name an allowed Host: a loopback name, an IP address, the bound host, or a name in
 * `PLAYGROUND_ALLOWED_HOSTS`; any other name is what a DNS-rebinding page sends (its own domain, resolved to
 * this machine). Every state-changing request must carry an `Origin` of the same host (a browser always sends
 * one with a POST; a cross-site page cannot forge it), so no other site can drive the page's user.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { UserError } from '../../errors.js';
import { HttpError } from '../../http/server.js';
import type { Actor } from '../core/types.js';
import { isLoopbackHost } from '../../config/http.js';

/** The playground's local admin (in the admin list whenever the playground is served). */
export const PLAYGROUND_ADMIN: Actor = { platform: 'web', workspaceId: 'local', channelId: 'playground', userId: 'local' };
/** Who uses the playground from the network without the admin token. */
export const PLAYGROUND_GUEST: Actor = { platform: 'web', workspaceId: 'local', channelId: 'playground', userId: 'guest' };

/** Access settings from the environment. */
export interface PlaygroundAccessSettings {
  /** The address the server is bound to (HOST). */
  bindHost: string;
  /** `PLAYGROUND_ADMIN_TOKEN`, or null. */
  adminToken: string | null;
  /** `PLAYGROUND_ALLOWED_HOSTS`: extra host names (lower case, no port) the playground answers to. */
  allowedHosts: string[];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);
const MIN_TOKEN_LENGTH = 24;

/**
 * Reads PLAYGROUND_ADMIN_TOKEN and PLAYGROUND_ALLOWED_HOSTS.
 * @throws UserError listing every bad value (never the token itself)
 */
export function playgroundAccessFrom(env: NodeJS.ProcessEnv, bindHost: string): PlaygroundAccessSettings {
  const problems: string[] = [];
  const token = env.PLAYGROUND_ADMIN_TOKEN?.trim() || null;
  if (token !== null && (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))) {
    problems.push(`PLAYGROUND_ADMIN_TOKEN: must be at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. the output of \`openssl rand -hex 24\`)`);
  }
  const allowedHosts = (env.PLAYGROUND_ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const h of allowedHosts) {
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(h)) {
      problems.push(`PLAYGROUND_ALLOWED_HOSTS: "${h.slice(0, 60)}" is not a host name like bot.example.com (no scheme, no port)`);
    }
  }
  if (problems.length) throw new UserError(`The configuration has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return { bindHost, adminToken: token, allowedHosts };
}

/** The host name of a Host header value (`[::1]:8787` → `::1`, `Example.org:80` → `example.org`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  return h.replace(/:\d*$/, '');
}

/** Decides, per request, whether the playground answers and as whom; see the module comment. */
export class PlaygroundAccess {
  readonly loopbackOnly: boolean;
  private readonly names: Set<string>;
  private readonly token: Buffer | null;

  constructor(readonly settings: PlaygroundAccessSettings) {
    this.loopbackOnly = isLoopbackHost(settings.bindHost);
    const bound = hostName(settings.bindHost);
    this.names = new Set([...LOOPBACK_NAMES, ...settings.allowedHosts, ...(bound === '0.0.0.0' || bound === '::' ? [] : [bound])]);
    this.token = settings.adminToken ? Buffer.from(settings.adminToken) : null;
  }

  /** Refuses a request whose Host is not allowed, or a state-changing one without a same-origin Origin. */
  check(req: http.IncomingMessage): void {
    const host = req.headers.host ?? '';
    if (!this.allowedHost(host)) {
      throw new HttpError(403, this.loopbackOnly
        ? 'The playground answers on localhost only.'
        : 'The playground does not answer to this host name. An operator can add it to PLAYGROUND_ALLOWED_HOSTS.');
    }
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const origin = req.headers.origin;
    let same = false;
    try {
      const o = new URL(origin ?? '');
      same = (o.protocol === 'http:' || o.protocol === 'https:') && o.host === host.toLowerCase();
    } catch { /* missing or not a URL */ }
    if (!same) throw new HttpError(403, 'Cross-site requests are not allowed (send the Origin of this page).');
  }

  /** True when the request acts as the playground's admin: loopback bind, or the admin token presented. */
  isAdmin(req: http.IncomingMessage): boolean {
    if (this.loopbackOnly) return true;
    if (!this.token) return false;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const given = Buffer.from(m[1]);
    return given.length === this.token.length && crypto.timingSafeEqual(given, this.token);
  }

  /** The actor a request acts as. */
  actorFor(req: http.IncomingMessage): Actor {
    return this.isAdmin(req) ? PLAYGROUND_ADMIN : PLAYGROUND_GUEST;
  }

  /** A warning for the start-up log when the playground can be reached from the network, else null. */
  networkWarning(): string | null {
    if (this.loopbackOnly) return null;
    return `the playground listens on ${this.settings.bindHost}, reachable from the network: anyone who reaches it can draw; `
      + (this.token
        ? 'admin commands (training, model switch) need PLAYGROUND_ADMIN_TOKEN (Authorization: Bearer). Put HTTPS in front of it.'
        : 'admin commands are off (set PLAYGROUND_ADMIN_TOKEN to allow them with Authorization: Bearer). Set HOST=127.0.0.1 to keep it local.');
  }

  private allowedHost(header: string): boolean {
    const name = hostName(header);
    if (!name) return false;
    // An IP address cannot be rebound: only a name an attacker controls can point a page's origin here.
    return this.names.has(name) || net.isIP(name) !== 0;
  }
}
