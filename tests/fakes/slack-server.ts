/**
 * A fake Slack Web API on 127.0.0.1 for end-to-end tests of the Bolt adapter, plus helpers that send
 * correctly signed slash commands, interactivity payloads and Events API callbacks to Bolt's HTTP receiver.
 *
 * It answers what the adapter uses, shaped like real Slack:
 * - `auth.test`
 * - `files.getUploadURLExternal` → an `upload_url` on this server; the upload POST (multipart, field `body`
 *   as @slack/web-api sends it) stores the bytes
 * - `files.completeUploadExternal` → `{ files: [{ id, title }] }` only, like Slack: no message ts. The file is
 *   shared into the channel as a new message whose ts `files.info` reports in `file.shares` (public channels
 *   `C…`, private `G…`) — and, as in real Slack where sharing is asynchronous, only from the
 *   `sharesVisibleAfter`-th `files.info` call on.
 * - `files.info`, `chat.postMessage`, `chat.update`, `chat.postEphemeral`
 * - `POST /respond/<id>`: the `response_url` of slash commands and actions
 * - Socket Mode: `apps.connections.open` (app token) → a WebSocket on this server that says `hello`;
 *   `socketSend` pushes an envelope (slash command, interactivity, event) and resolves with the app's ack.
 * Every request is recorded in `calls` (method, parsed params, headers) for assertions.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** One recorded request to the fake. */
export interface FakeSlackCall {
  method: string;
  params: Record<string, unknown>;
  authorization?: string;
}

/** A message posted in the fake workspace (by chat.postMessage or a file share). */
export interface FakeSlackMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown[];
  threadTs?: string;
  files?: string[];
  /** Edits made with chat.update, oldest first. */
  edits: { text?: string; blocks?: unknown[] }[];
}

/** A file uploaded through the external upload flow. */
export interface FakeSlackFile {
  id: string;
  filename: string;
  length: number;
  altText?: string;
  title?: string;
  bytes?: Buffer;
  completed: boolean;
  channel?: string;
  initialComment?: string;
  blocks?: unknown[];
  threadTs?: string;
  /** ts of the message that shares the file in `channel`. */
  shareTs?: string;
  infoCalls: number;
  /** When files.completeUploadExternal shared it (ms since the epoch). */
  completedAt?: number;
}

/** A POST to a response_url. */
export interface FakeSlackResponse {
  id: string;
  body: Record<string, unknown>;
  /** When it arrived (ms since the epoch). */
  at: number;
}

export interface FakeSlackOptions {
  /** Bot token the fake accepts (Authorization: Bearer or `token` param). Default `xoxb-test`. */
  token?: string;
  teamId?: string;
  botUserId?: string;
  /** files.info shows the share from this call on (1 = at once). Default 2, to exercise polling. */
  sharesVisibleAfter?: number;
  /** Channels the bot is not a member of: uploads and posts there fail with `not_in_channel`. */
  notInChannels?: string[];
  /** App-level token for Socket Mode (`apps.connections.open`). Default `xapp-test`. */
  appToken?: string;
}

/** What a Socket Mode app answered to an envelope: `{ envelope_id, payload }`. */
export interface SocketAck {
  envelope_id: string;
  payload?: Record<string, unknown>;
}

export interface FakeSlack {
  /** Web API base, e.g. `http://127.0.0.1:1234/api/` (for SLACK_API_URL). */
  apiUrl: string;
  origin: string;
  token: string;
  teamId: string;
  botUserId: string;
  calls: FakeSlackCall[];
  files: Map<string, FakeSlackFile>;
  messages: FakeSlackMessage[];
  responses: FakeSlackResponse[];
  appToken: string;
  /** Socket Mode: resolves once an app is connected (after `hello`). */
  socketConnected(): Promise<void>;
  /**
   * Socket Mode: send an envelope (`type`: `slash_commands`, `interactive` or `events_api`) to the connected app
   * and resolve with its ack.
   */
  socketSend(type: 'slash_commands' | 'interactive' | 'events_api', payload: Record<string, unknown>): Promise<SocketAck>;
  /** A fresh response_url on this fake. */
  responseUrl(): string;
  /** Calls of one Web API method. */
  callsOf(method: string): FakeSlackCall[];
  /** Resolve once `pred` holds (checked after every request and every 20 ms); reject after `timeoutMs`. */
  /** Resolves with the first truthy value of `pred` (which may be async: e.g. a store read), checked on every call and every 20 ms. */
  waitFor<T>(pred: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs?: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parse a request body the way Slack does: form-urlencoded, JSON or multipart. Files come back as Buffers. */
async function parseParams(req: http.IncomingMessage, raw: Buffer): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  const url = new URL(req.url ?? '/', 'http://x');
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (type.startsWith('application/json')) {
    Object.assign(params, raw.length ? JSON.parse(raw.toString('utf8')) : {});
  } else if (type.startsWith('multipart/form-data')) {
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(raw) }).formData();
    for (const [key, value] of form as unknown as Iterable<[string, string | Blob]>) {
      params[key] = typeof value === 'string' ? value : Buffer.from(await value.arrayBuffer());
    }
  } else if (raw.length) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(raw.toString('utf8'))));
  }
  return params;
}

function jsonParam<T>(value: unknown): T | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** Start the fake Slack Web API on 127.0.0.1 (a free port). */
export async function startFakeSlack(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  const token = opts.token ?? 'xoxb-test';
  const teamId = opts.teamId ?? 'T0FAKE';
  const botUserId = opts.botUserId ?? 'UBOT';
  const sharesVisibleAfter = opts.sharesVisibleAfter ?? 2;
  const notInChannels = new Set(opts.notInChannels ?? []);
  const appToken = opts.appToken ?? 'xapp-test';
  let socket: WebSocket | undefined;
  let socketReady: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => { socketReady = resolve; });
  const pendingAcks = new Map<string, (ack: SocketAck) => void>();
  const calls: FakeSlackCall[] = [];
  const files = new Map<string, FakeSlackFile>();
  const messages: FakeSlackMessage[] = [];
  const responses: FakeSlackResponse[] = [];
  const waiters = new Set<() => void>();
  let seq = 0;
  let origin = '';

  const nextTs = () => `${1_700_000_000 + ++seq}.${String(100 + seq).padStart(6, '0')}`;
  const notify = () => { for (const w of [...waiters]) w(); };

  function authorised(req: http.IncomingMessage, params: Record<string, unknown>): boolean {
    const header = String(req.headers.authorization ?? '');
    return header === `Bearer ${token}` || params.token === token;
  }

  function method(name: string, params: Record<string, unknown>): Record<string, unknown> {
    switch (name) {
      case 'apps.connections.open':
        return { ok: true, url: `${origin.replace(/^http/, 'ws')}/socket` };
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.test/', team: 'Fake Team', user: 'cvae-bot', team_id: teamId, user_id: botUserId, bot_id: 'BFAKE', is_enterprise_install: false };
      case 'files.getUploadURLExternal': {
        const length = Number(params.length);
        if (!params.filename || !Number.isFinite(length) || length <= 0) return { ok: false, error: 'invalid_arguments' };
        const id = `F${String(++seq).padStart(8, '0')}`;
        files.set(id, { id, filename: String(params.filename), length, altText: params.alt_text as string | undefined, completed: false, infoCalls: 0 });
        return { ok: true, upload_url: `${origin}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const list = jsonParam<{ id: string; title?: string }[]>(params.files) ?? [];
        const channel = (params.channel_id ?? params.channels) as string | undefined;
        if (channel && notInChannels.has(channel)) return { ok: false, error: 'not_in_channel' };
        const done: FakeSlackFile[] = [];
        for (const f of list) {
          const file = files.get(f.id);
          if (!file || !file.bytes) return { ok: false, error: 'file_not_found' };
          if (file.completed) return { ok: false, error: 'file_already_completed' };
          file.completed = true;
          file.completedAt = Date.now();
          file.title = f.title;
          done.push(file);
        }
        if (channel) {
          const ts = nextTs();
          const blocks = params.initial_comment ? undefined : jsonParam<unknown[]>(params.blocks);
          messages.push({ channel, ts, text: params.initial_comment as string | undefined, blocks, threadTs: params.thread_ts as string | undefined, files: done.map((f) => f.id), edits: [] });
          for (const file of done) {
            Object.assign(file, { channel, shareTs: ts, initialComment: params.initial_comment, blocks, threadTs: params.thread_ts });
          }
        }
        return { ok: true, files: done.map((f) => ({ id: f.id, title: f.title ?? f.filename })) };
      }
      case 'files.info': {
        const file = files.get(String(params.file));
        if (!file || !file.completed) return { ok: false, error: 'file_not_found' };
        file.infoCalls++;
        const shares: Record<string, Record<string, unknown[]>> = {};
        if (file.channel && file.shareTs && file.infoCalls >= sharesVisibleAfter) {
          const kind = file.channel.startsWith('C') ? 'public' : 'private';
          const share: Record<string, unknown> = { ts: file.shareTs, channel_name: 'general', team_id: teamId, share_user_id: botUserId, source: 'UNKNOWN' };
          if (file.threadTs) share.thread_ts = file.threadTs;
          shares[kind] = { [file.channel]: [share] };
        }
        return {
          ok: true,
          file: { id: file.id, name: file.filename, title: file.title ?? file.filename, mimetype: 'image/png', filetype: 'png', size: file.length, channels: file.channel?.startsWith('C') ? [file.channel] : [], groups: [], ims: [], shares },
          comments: [],
        };
      }
      case 'chat.postMessage': {
        const channel = String(params.channel ?? '');
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (notInChannels.has(channel)) return { ok: false, error: 'not_in_channel' };
        if (!params.text && !params.blocks) return { ok: false, error: 'no_text' };
        const ts = nextTs();
        const msg: FakeSlackMessage = { channel, ts, text: params.text as string | undefined, blocks: jsonParam<unknown[]>(params.blocks), threadTs: params.thread_ts as string | undefined, edits: [] };
        messages.push(msg);
        return { ok: true, channel, ts, message: { type: 'message', text: msg.text, blocks: msg.blocks, ts, user: botUserId, bot_id: 'BFAKE' } };
      }
      case 'chat.update': {
        const msg = messages.find((m) => m.channel === params.channel && m.ts === params.ts);
        if (!msg) return { ok: false, error: 'message_not_found' };
        const edit = { text: params.text as string | undefined, blocks: jsonParam<unknown[]>(params.blocks) };
        msg.edits.push(edit);
        if (edit.text !== undefined) msg.text = edit.text;
        if (edit.blocks !== undefined) msg.blocks = edit.blocks;
        return { ok: true, channel: msg.channel, ts: msg.ts, text: msg.text };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: nextTs() };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://x');
      const params = await parseParams(req, raw);
      const send = (status: number, body: unknown, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      if (url.pathname.startsWith('/api/')) {
        const name = url.pathname.slice('/api/'.length);
        calls.push({ method: name, params, authorization: req.headers.authorization });
        const ok = name === 'apps.connections.open' ? req.headers.authorization === `Bearer ${appToken}` : authorised(req, params);
        send(200, ok ? method(name, params) : { ok: false, error: 'invalid_auth' });
      } else if (url.pathname.startsWith('/upload/') && req.method === 'POST') {
        const id = url.pathname.slice('/upload/'.length);
        calls.push({ method: 'upload', params: { id, ...params }, authorization: req.headers.authorization });
        const file = files.get(id);
        const bytes = params.body ?? params.file ?? (raw.length && !String(req.headers['content-type']).startsWith('multipart') ? raw : undefined);
        if (!file || !Buffer.isBuffer(bytes)) send(404, 'Not found', 'text/plain');
        else {
          file.bytes = bytes;
          send(200, `OK - ${bytes.length}`, 'text/plain');
        }
      } else if (url.pathname.startsWith('/respond/') && req.method === 'POST') {
        const id = url.pathname.slice('/respond/'.length);
        calls.push({ method: 'response_url', params: { id, ...params } });
        responses.push({ id, body: params, at: Date.now() });
        send(200, 'ok', 'text/plain');
      } else {
        send(404, { ok: false, error: 'not_found' });
      }
      notify();
    })().catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  const sockets = new WebSocketServer({ server, path: '/socket' });
  sockets.on('connection', (ws) => {
    socket = ws;
    ws.on('message', (data) => {
      const ack = JSON.parse(String(data)) as SocketAck;
      calls.push({ method: 'socket_ack', params: ack as unknown as Record<string, unknown> });
      pendingAcks.get(ack.envelope_id)?.(ack);
      pendingAcks.delete(ack.envelope_id);
      notify();
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'A0FAKE' } }));
    socketReady();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let responseSeq = 0;

  return {
    apiUrl: `${origin}/api/`,
    origin,
    token,
    teamId,
    botUserId,
    calls,
    files,
    messages,
    responses,
    appToken,
    socketConnected: () => connected,
    socketSend(type, payload) {
      if (!socket) return Promise.reject(new Error('fake Slack: no Socket Mode app connected'));
      const envelopeId = crypto.randomUUID();
      const acked = new Promise<SocketAck>((resolve) => pendingAcks.set(envelopeId, resolve));
      socket.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: type !== 'events_api', retry_attempt: 0, retry_reason: '' }));
      return acked;
    },
    responseUrl: () => `${origin}/respond/${++responseSeq}`,
    callsOf: (name) => calls.filter((c) => c.method === name),
    waitFor<T>(pred: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        let checking = false;
        let done = false;
        const check = () => {
          if (checking || done) return;
          checking = true;
          Promise.resolve().then(pred).then((value) => {
            checking = false;
            if (value && !done) {
              finish();
              resolve(value);
            }
          }, (err: unknown) => {
            checking = false;
            if (done) return;
            finish();
            reject(err as Error);
          });
        };
        const timer = setInterval(check, 20);
        const deadline = setTimeout(() => {
          finish();
          reject(new Error(`fake Slack: timed out after ${timeoutMs} ms waiting for ${what}; calls: ${calls.map((c) => c.method).join(', ')}`));
        }, timeoutMs);
        const finish = () => {
          done = true;
          clearInterval(timer);
          clearTimeout(deadline);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Slack's request signature: `v0=` + HMAC-SHA256(secret, `v0:{timestamp}:{body}`) in hex. */
export function slackSignature(signingSecret: string, timestampSec: number, body: string): string {
  return `v0=${crypto.createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
}

export interface SignedPostOptions {
  /** Request timestamp in seconds (default now); older than 5 minutes is stale. */
  timestampSec?: number;
  /** Sign with this secret instead (to send a bad signature). */
  signWith?: string;
}

export interface SignedPostResult {
  status: number;
  text: string;
  /** Parsed JSON body when the receiver answered JSON (the ack), else undefined. */
  json?: Record<string, unknown>;
}

/** POST a body signed like Slack does to Bolt's receiver (`url` = e.g. http://127.0.0.1:PORT/slack/events). */
export async function signedPost(url: string, body: string, contentType: string, signingSecret: string, opts: SignedPostOptions = {}): Promise<SignedPostResult> {
  const ts = opts.timestampSec ?? Math.floor(Date.now() / 1000);
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': slackSignature(opts.signWith ?? signingSecret, ts, body),
    },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) json = JSON.parse(text) as Record<string, unknown>;
  return { status: res.status, text, json };
}

export interface SlashCommandFields {
  command: string;
  text: string;
  userId?: string;
  channelId?: string;
  teamId?: string;
  responseUrl: string;
  /** Slack's id of this invocation (unique per command; a retry of the same request repeats it). Default: a fresh one. */
  triggerId?: string;
}

let triggers = 0;
/** A trigger id like Slack's, unique within this process. */
function newTriggerId(): string {
  return `${Date.now()}.${++triggers}.${crypto.randomBytes(4).toString('hex')}`;
}

/** The fields Slack sends for a slash command. */
export function slashCommandPayload(f: SlashCommandFields): Record<string, string> {
  return {
    token: 'verification-token-unused',
    team_id: f.teamId ?? 'T0FAKE',
    team_domain: 'fake',
    channel_id: f.channelId ?? 'C0GENERAL',
    channel_name: 'general',
    user_id: f.userId ?? 'U123',
    user_name: 'someone',
    command: f.command,
    text: f.text,
    api_app_id: 'A0FAKE',
    is_enterprise_install: 'false',
    response_url: f.responseUrl,
    trigger_id: f.triggerId ?? newTriggerId(),
  };
}

/** Send a signed slash command (form-urlencoded, as Slack does). */
export function sendSlashCommand(url: string, secret: string, f: SlashCommandFields, opts?: SignedPostOptions): Promise<SignedPostResult> {
  const body = new URLSearchParams(slashCommandPayload(f)).toString();
  return signedPost(url, body, 'application/x-www-form-urlencoded', secret, opts);
}

export interface BlockActionFields {
  actionId: string;
  value: string;
  blockId?: string;
  userId?: string;
  channelId?: string;
  teamId?: string;
  messageTs?: string;
  responseUrl: string;
  /** Default: a fresh one per click. */
  triggerId?: string;
}

/** The `block_actions` payload of a button click. */
export function blockActionPayload(f: BlockActionFields): Record<string, unknown> {
  const teamId = f.teamId ?? 'T0FAKE';
  const channelId = f.channelId ?? 'C0GENERAL';
  return {
    type: 'block_actions',
    team: { id: teamId, domain: 'fake' },
    user: { id: f.userId ?? 'U123', username: 'someone', team_id: teamId },
    api_app_id: 'A0FAKE',
    token: 'verification-token-unused',
    container: { type: 'message', message_ts: f.messageTs ?? '1700000000.000100', channel_id: channelId, is_ephemeral: false },
    trigger_id: f.triggerId ?? newTriggerId(),
    channel: { id: channelId, name: 'general' },
    message: { type: 'message', ts: f.messageTs ?? '1700000000.000100', text: '' },
    response_url: f.responseUrl,
    actions: [{ type: 'button', action_id: f.actionId, block_id: f.blockId ?? 'imagine_actions', value: f.value, action_ts: `${Date.now() / 1000}` }],
  };
}

/** Send a signed `block_actions` interactivity payload (a button click). */
export function sendBlockAction(url: string, secret: string, f: BlockActionFields, opts?: SignedPostOptions): Promise<SignedPostResult> {
  const body = new URLSearchParams({ payload: JSON.stringify(blockActionPayload(f)) }).toString();
  return signedPost(url, body, 'application/x-www-form-urlencoded', secret, opts);
}

export interface ReactionEventFields {
  type: 'reaction_added' | 'reaction_removed';
  userId: string;
  reaction: string;
  channelId: string;
  ts: string;
  teamId?: string;
}

/** The Events API callback of a reaction. */
export function reactionEventPayload(f: ReactionEventFields): Record<string, unknown> {
  const now = Date.now() / 1000;
  return {
    token: 'verification-token-unused',
    team_id: f.teamId ?? 'T0FAKE',
    api_app_id: 'A0FAKE',
    event: { type: f.type, user: f.userId, reaction: f.reaction, item: { type: 'message', channel: f.channelId, ts: f.ts }, item_user: 'UBOT', event_ts: `${now}` },
    type: 'event_callback',
    event_id: `Ev${crypto.randomBytes(6).toString('hex')}`,
    event_time: Math.floor(now),
    authorizations: [{ team_id: f.teamId ?? 'T0FAKE', user_id: 'UBOT', is_bot: true }],
  };
}

/** Send a signed Events API callback for a reaction. */
export function sendReactionEvent(url: string, secret: string, f: ReactionEventFields, opts?: SignedPostOptions): Promise<SignedPostResult> {
  return signedPost(url, JSON.stringify(reactionEventPayload(f)), 'application/json', secret, opts);
}
