/**
 * A small fake of Discord for end-to-end tests, on 127.0.0.1: the REST API (v10 routes the bot uses) and a JSON
 * gateway over WebSocket (no compression). The real discord.js client connects to it with
 * `rest: { api: fake.apiUrl }`: it reads the gateway URL from `GET /gateway/bot`, gets HELLO, sends IDENTIFY,
 * and receives READY and GUILD_CREATE. Tests then dispatch INTERACTION_CREATE and MESSAGE_REACTION_ADD/REMOVE
 * and inspect the recorded REST requests (multipart bodies are parsed; files kept as Buffers).
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RecordedFile {
  field: string;
  name: string;
  data: Buffer;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: any;
  files: RecordedFile[];
  authorization?: string;
}

export interface FakeUser {
  id: string;
  username: string;
  bot?: boolean;
}

const EPOCH = 1_420_070_400_000n;

/** The fake Discord server. */
export class FakeDiscord {
  readonly requests: RecordedRequest[] = [];
  readonly messages = new Map<string, any>();
  /** Interaction tokens the fake treats as expired: their webhook routes answer 401 Invalid Webhook Token (50027). */
  readonly expiredTokens = new Set<string>();
  readonly applicationId: string;
  readonly guildId: string;
  readonly channelId: string;
  readonly botUser: FakeUser;
  private server!: http.Server;
  private wss!: WebSocketServer;
  private socket: WebSocket | null = null;
  private seq = 0;
  private nextId = 1n;
  private waiters: { pred: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];
  port = 0;

  constructor() {
    this.applicationId = this.snowflake();
    this.guildId = this.snowflake();
    this.channelId = this.snowflake();
    this.botUser = { id: this.applicationId, username: 'cvae-bot', bot: true };
  }

  /** REST base to give discord.js (`rest.api`). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  /** A new unique snowflake id. */
  snowflake(): string {
    return (((BigInt(Date.now()) - EPOCH) << 22n) + this.nextId++).toString();
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onGateway(ws));
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Resolves with the first recorded request (past or future) matching `pred`, after `from` (index). */
  waitForRequest(pred: (r: RecordedRequest) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<RecordedRequest> {
    const found = this.requests.slice(opts.from ?? 0).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`fake discord: no matching request within ${opts.timeoutMs ?? 20000} ms; got:\n${this.requests.map((r) => `${r.method} ${r.path}`).join('\n')}`));
      }, opts.timeoutMs ?? 20_000);
      const done = (r: RecordedRequest) => { clearTimeout(timer); resolve(r); };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Sends a gateway dispatch to the connected client. */
  dispatch(t: string, d: unknown): void {
    if (!this.socket) throw new Error('fake discord: no gateway client connected');
    this.socket.send(JSON.stringify({ op: 0, t, s: ++this.seq, d }));
  }

  private userJson(u: FakeUser) {
    return { id: u.id, username: u.username, discriminator: '0', global_name: u.username, avatar: null, bot: u.bot ?? false };
  }

  private memberJson(u: FakeUser, permissions: string) {
    return { user: this.userJson(u), roles: [], permissions, joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0, nick: null };
  }

  private channelJson() {
    return { id: this.channelId, type: 0, guild_id: this.guildId, name: 'general', position: 0, permission_overwrites: [], nsfw: false, topic: null, last_message_id: null, rate_limit_per_user: 0, parent_id: null };
  }

  private interactionBase(user: FakeUser, opts: { manageGuild?: boolean }) {
    const id = this.snowflake();
    return {
      id, application_id: this.applicationId, token: `tok-${id}`, version: 1,
      guild_id: this.guildId, channel_id: this.channelId, channel: this.channelJson(),
      member: this.memberJson(user, opts.manageGuild ? String(1n << 5n) : '0'),
      app_permissions: '2248473465835073', locale: 'en-US', guild_locale: 'en-US', entitlements: [],
      authorizing_integration_owners: { '0': this.guildId }, context: 0, attachment_size_limit: 10485760,
    };
  }

  /** The JSON of a slash command interaction (as the gateway dispatches it and as Discord POSTs it over HTTP). */
  slashCommandJson(user: FakeUser, name: string, options: unknown[], opts: { manageGuild?: boolean } = {}) {
    const base = this.interactionBase(user, opts);
    return { ...base, type: 2, data: { id: this.snowflake(), name, type: 1, options, guild_id: this.guildId } };
  }

  /** The JSON of a button press on a message (as the gateway dispatches it and as Discord POSTs it over HTTP). */
  buttonJson(user: FakeUser, customId: string, messageId: string, opts: { manageGuild?: boolean } = {}) {
    const base = this.interactionBase(user, opts);
    const message = this.messages.get(messageId) ?? this.messageJson({ id: messageId, content: '' });
    return { ...base, type: 3, data: { custom_id: customId, component_type: 2 }, message };
  }

  /** Dispatches a slash command; returns the interaction id and token. */
  slashCommand(user: FakeUser, name: string, options: unknown[], opts: { manageGuild?: boolean } = {}): { id: string; token: string } {
    const json = this.slashCommandJson(user, name, options, opts);
    this.dispatch('INTERACTION_CREATE', json);
    return { id: json.id, token: json.token };
  }

  /** Dispatches a button press on a message; returns the interaction id and token. */
  button(user: FakeUser, customId: string, messageId: string): { id: string; token: string } {
    const json = this.buttonJson(user, customId, messageId);
    this.dispatch('INTERACTION_CREATE', json);
    return { id: json.id, token: json.token };
  }

  /** Dispatches a reaction add or remove on a message (the client need not have it cached). */
  reaction(user: FakeUser, messageId: string, emoji: { name: string; id?: string }, added: boolean): void {
    const d: Record<string, unknown> = {
      user_id: user.id, channel_id: this.channelId, message_id: messageId, guild_id: this.guildId,
      emoji: { id: emoji.id ?? null, name: emoji.name }, burst: false, type: 0,
    };
    if (added) Object.assign(d, { member: this.memberJson(user, '0'), message_author_id: this.applicationId, burst_colors: [] });
    this.dispatch(added ? 'MESSAGE_REACTION_ADD' : 'MESSAGE_REACTION_REMOVE', d);
  }

  private messageJson(p: { id?: string; content?: string; files?: RecordedFile[]; components?: unknown[]; flags?: number; interactionId?: string }) {
    const id = p.id ?? this.snowflake();
    return {
      id, channel_id: this.channelId, guild_id: this.guildId, author: this.userJson(this.botUser), content: p.content ?? '',
      timestamp: new Date().toISOString(), edited_timestamp: null, tts: false, mention_everyone: false, mentions: [],
      mention_roles: [], attachments: (p.files ?? []).map((f, i) => ({
        id: `${id}${i}`, filename: f.name, size: f.data.length, url: `http://127.0.0.1:${this.port}/attachments/${id}/${f.name}`,
        proxy_url: `http://127.0.0.1:${this.port}/attachments/${id}/${f.name}`, content_type: 'image/png',
      })),
      embeds: [], pinned: false, type: p.interactionId ? 20 : 0, flags: p.flags ?? 0, components: p.components ?? [],
      application_id: this.applicationId, webhook_id: p.interactionId ? this.applicationId : undefined,
    };
  }

  private onGateway(ws: WebSocket): void {
    this.socket = ws;
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 } }));
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as { op: number; d: any };
      if (msg.op === 1) ws.send(JSON.stringify({ op: 11 }));
      else if (msg.op === 2) {
        this.dispatch('READY', {
          v: 10, user: { ...this.userJson(this.botUser), verified: true, mfa_enabled: false, flags: 0 }, guilds: [{ id: this.guildId, unavailable: true }],
          session_id: 'fake-session', resume_gateway_url: `ws://127.0.0.1:${this.port}`, application: { id: this.applicationId, flags: 0 },
          shard: [0, 1], private_channels: [], relationships: [], user_settings: {}, presences: [],
        });
        this.dispatch('GUILD_CREATE', {
          id: this.guildId, name: 'Test guild', icon: null, splash: null, discovery_splash: null, owner_id: '1', afk_channel_id: null,
          afk_timeout: 300, verification_level: 0, default_message_notifications: 0, explicit_content_filter: 0,
          roles: [{ id: this.guildId, name: '@everyone', color: 0, hoist: false, position: 0, permissions: '0', managed: false, mentionable: false, flags: 0 }],
          emojis: [], features: [], mfa_level: 0, application_id: null, system_channel_id: null, system_channel_flags: 0,
          rules_channel_id: null, max_members: 100, vanity_url_code: null, description: null, banner: null, premium_tier: 0,
          preferred_locale: 'en-US', public_updates_channel_id: null, nsfw_level: 0, stickers: [], premium_progress_bar_enabled: false,
          joined_at: new Date(0).toISOString(), large: false, unavailable: false, member_count: 1,
          voice_states: [], members: [this.memberJson(this.botUser, '0')], channels: [this.channelJson()], threads: [],
          presences: [], stage_instances: [], guild_scheduled_events: [], soundboard_sounds: [],
        });
      }
    });
    ws.on('close', () => { if (this.socket === ws) this.socket = null; });
  }

  private async readBody(req: http.IncomingMessage, url: URL): Promise<{ body: any; files: RecordedFile[] }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const type = req.headers['content-type'] ?? '';
    if (!raw.length) return { body: null, files: [] };
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request(url, { method: 'POST', headers: { 'content-type': type }, body: raw }).formData();
      let body: any = null;
      const files: RecordedFile[] = [];
      const parts: [string, FormDataEntryValue][] = [];
      form.forEach((value, field) => { parts.push([field, value]); });
      for (const [field, value] of parts) {
        if (field === 'payload_json') body = JSON.parse(String(value));
        else if (typeof value !== 'string') files.push({ field, name: value.name, data: Buffer.from(await value.arrayBuffer()) });
      }
      return { body, files };
    }
    return { body: JSON.parse(raw.toString('utf8')), files: [] };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${this.port}`);
    const method = req.method ?? 'GET';
    const { body, files } = await this.readBody(req, url);
    const path = url.pathname.replace(/^\/api\/v\d+/, '');
    const rec: RecordedRequest = { method, path, query: url.searchParams, body, files, authorization: req.headers.authorization };
    this.requests.push(rec);
    const send = (status: number, json?: unknown) => {
      if (json === undefined) { res.writeHead(status).end(); return; }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    };
    try {
      let m: RegExpMatchArray | null;
      if (method === 'GET' && path === '/gateway/bot') {
        send(200, { url: `ws://127.0.0.1:${this.port}`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } });
      } else if ((m = path.match(/^\/webhooks\/\d+\/([^/]+)/)) && this.expiredTokens.has(m[1])) {
        send(401, { message: 'Invalid Webhook Token', code: 50027 });
      } else if (method === 'POST' && (m = path.match(/^\/interactions\/(\d+)\/([^/]+)\/callback$/))) {
        send(204);
      } else if ((m = path.match(/^\/webhooks\/(\d+)\/([^/]+)\/messages\/(?:@|%40)original$/))) {
        const key = `original:${m[2]}`;
        if (method === 'DELETE') { this.messages.delete(key); send(204); }
        else {
          const prev = this.messages.get(key);
          const msg = this.messageJson({ id: prev?.id, content: body?.content ?? prev?.content, files: files.length ? files : undefined,
            components: body?.components ?? prev?.components, interactionId: m[2] });
          this.messages.set(key, msg);
          this.messages.set(msg.id, msg);
          send(200, msg);
        }
      } else if (method === 'POST' && (m = path.match(/^\/webhooks\/(\d+)\/([^/]+)$/))) {
        const msg = this.messageJson({ content: body?.content, files, flags: body?.flags, interactionId: m[2] });
        this.messages.set(msg.id, msg);
        send(200, msg);
      } else if (method === 'POST' && (m = path.match(/^\/channels\/(\d+)\/messages$/))) {
        const msg = this.messageJson({ content: body?.content, files });
        this.messages.set(msg.id, msg);
        send(200, msg);
      } else if (method === 'GET' && (m = path.match(/^\/channels\/(\d+)$/))) {
        if (m[1] === this.channelId) send(200, this.channelJson());
        else send(404, { message: 'Unknown Channel', code: 10003 });
      } else if ((m = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/))) {
        const prev = this.messages.get(m[2]);
        if (!prev) send(404, { message: 'Unknown Message', code: 10008 });
        else if (method === 'GET') send(200, prev);
        else if (method === 'PATCH') {
          const msg = { ...prev, content: body?.content ?? prev.content, edited_timestamp: new Date().toISOString() };
          this.messages.set(m[2], msg);
          send(200, msg);
        } else send(405, { message: 'Method Not Allowed', code: 0 });
      } else if (method === 'PUT' && (m = path.match(/^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/))) {
        send(200, (body as any[]).map((c) => ({ ...c, id: this.snowflake(), application_id: m![1], version: '1' })));
      } else {
        send(404, { message: '404: Not Found', code: 0 });
      }
    } finally {
      for (const w of this.waiters.filter((x) => x.pred(rec))) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(rec);
      }
    }
  }
}
