/**
 * The local playground: a chat-like page and a small JSON + SSE API onto the same BotCore the chat bots use.
 * It holds no generation logic of its own: commands typed in the page are parsed with the shared command-text
 * parser and go to `core.imagine` / `reroll` / `variations` / `singleImage` / `trainStart` ...; reactions go to
 * `core.recordReaction` with the message's web id as message reference.
 *
 * The page's user is the local admin (platform `web`, user `local`) only on a loopback bind or with
 * `PLAYGROUND_ADMIN_TOKEN`; otherwise a guest (`web:guest`, no admin commands): see playground-access.ts.
 * Requests must come from the page itself: JSON bodies only (a cross-site form cannot send them), an allowed
 * `Host` (no DNS rebinding) and, for every POST, a same-origin `Origin`.
 *
 * API (all JSON):
 * - `GET /api/state` readiness, served model, presets, whether the user is admin, training status
 * - `GET /api/messages`, `GET /api/messages/:id` the channel (for polling)
 * - `GET /api/events` SSE: `hello` {messages} once, then `message` (a new or changed message), `bye` at shutdown
 * - `POST /api/command` {text}: `/imagine <prompt> [--count N] [--seed N] [--model NAME]` (plain text is a prompt),
 *   `/train start preset:NAME [epochs:N] [dataset:NAME]`, `/train status`, `/train stop`, `/model list`,
 *   `/model use NAME`, `/help` → 202 {messageId} of the reply, whose state goes queued → done | failed
 * - `POST /api/generations/:id/reroll`, `.../variations`, `.../images/:index` → 202 {messageId}
 * - `POST /api/reactions` {messageId, reaction, added} → {recorded: true} (404 when not a generation message)
 * - `POST /api/train/start` {preset, epochs?, dataset?}, `POST /api/train/stop`, `GET /api/train/status`
 * - `GET /media/:messageId/:name.png` the images
 */
import fs from 'node:fs';
import type http from 'node:http';
import { childLogger } from '../../log.js';
import { HttpError, readJson, sendJson, sendText, type Route } from '../../http/server.js';
import { IMAGINE_USAGE, parseImagineText, parseModelText, parseTrainText, runModelCommand, runTrainCommand } from '../core/command-text.js';
import { isUserError, NotAllowedError, userMessageOf } from '../core/errors.js';
import type { Actor, BotCore, ImagineHooks, ImagineReply } from '../core/types.js';
import { ChatLog, type ChatMessage } from './chat-log.js';
import { PlaygroundTrainingSink } from './training-sink.js';
import { PLAYGROUND_ADMIN, PlaygroundAccess } from './playground-access.js';

const log = childLogger('playground');

/** The playground's one user. */
export const PLAYGROUND_ACTOR: Actor = PLAYGROUND_ADMIN;

/** Help shown for `/help` and unknown commands. */
export const PLAYGROUND_HELP = [
  IMAGINE_USAGE,
  'Training (local admin): `/train start preset:<name> [epochs:N] [dataset:NAME|synthetic]`, `/train status`, `/train stop`',
  'Models: `/model list`, `/model use <name>`, `/model publish <name>`, `/model unpublish <name>`',
].join('\n');

/** What the playground needs from the process. */
export interface PlaygroundDeps {
  /** The bot core, or null while it loads (or when loading failed). */
  core(): BotCore | null;
  /** Why the core is not there (shown when it is null). */
  unavailableReason(): string;
  /** Readiness and the served model, for the page's header. */
  status(): Promise<{ ready: boolean; reason: string | null; model: { name: string; clipModel: string } | null }>;
  /** Whether a training run is going (the progress message is final once it is not). */
  trainingBusy(): boolean;
  /** Extra help shown with a failed generation while no model is served (null: a model is served). */
  noModelHelp(): Promise<string | null>;
  /** Preset names for the training form. */
  presets: string[];
  /** Marks a response as a long-lived stream (the HTTP server ends it at close). */
  trackStream(res: http.ServerResponse): void;
  /** The server listens on a loopback address only (used when `access` is not given). */
  loopbackOnly: boolean;
  /** Who may use the page and as whom (default: from `loopbackOnly`, no admin token). */
  access?: PlaygroundAccess;
}

const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/static/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/static/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The playground; see the module comment. */
export class Playground {
  readonly log = new ChatLog();
  private readonly access: PlaygroundAccess;
  private readonly files = new Map<string, Buffer>();
  private readonly streams = new Set<http.ServerResponse>();
  private readonly pending = new Set<Promise<unknown>>();
  private accepting = true;

  constructor(private readonly deps: PlaygroundDeps) {
    this.access = deps.access ?? new PlaygroundAccess({ bindHost: deps.loopbackOnly ? '127.0.0.1' : '0.0.0.0', adminToken: null, allowedHosts: [] });
    for (const { file } of Object.values(STATIC_FILES)) {
      if (!this.files.has(file)) this.files.set(file, fs.readFileSync(new URL(`./public/${file}`, import.meta.url)));
    }
  }

  /** Refuses new commands from now on (shutdown); streams stay open until close(). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves when the generations and images asked for so far have been answered (shown or failed). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** Keeps track of a piece of work until it settles (see idle()). */
  private track(work: Promise<unknown>): void {
    const settled = work.catch((err: unknown) => log.error({ err }, 'showing a playground result failed'));
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /** Says goodbye on every open stream and ends it. */
  close(): void {
    for (const res of this.streams) {
      res.write('event: bye\ndata: {"reason":"The playground is shutting down."}\n\n');
      res.end();
    }
    this.streams.clear();
  }

  /** The HTTP route of the page, its files, the API and the media. */
  route(): Route {
    return async (req, res, url) => {
      const p = url.pathname;
      const isPage = p in STATIC_FILES;
      if (!isPage && !p.startsWith('/api/') && !p.startsWith('/media/') && p !== '/favicon.ico') return false;
      this.access.check(req);
      if (p === '/favicon.ico') {
        res.writeHead(204).end();
        return true;
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        if (isPage) return this.sendFile(res, STATIC_FILES[p].file, STATIC_FILES[p].type);
        return this.get(req, res, p, this.access.actorFor(req));
      }
      if (req.method === 'POST' && p.startsWith('/api/')) return this.post(req, res, p, this.access.actorFor(req));
      sendJson(res, 405, { error: 'Method not allowed.' });
      return true;
    };
  }

  // ---- requests -------------------------------------------------------------------------------------------

  private sendFile(res: http.ServerResponse, file: string, type: string): boolean {
    const body = this.files.get(file)!;
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    res.end(body);
    return true;
  }

  private async get(req: http.IncomingMessage, res: http.ServerResponse, p: string, actor: Actor): Promise<boolean> {
    let m: RegExpExecArray | null;
    if (p === '/api/state') {
      sendJson(res, 200, await this.state(actor));
    } else if (p === '/api/messages') {
      sendJson(res, 200, { messages: this.log.recent() });
    } else if ((m = /^\/api\/messages\/([\w-]{1,64})$/.exec(p))) {
      const msg = this.log.get(m[1]);
      if (msg) sendJson(res, 200, msg);
      else sendJson(res, 404, { error: 'No such message (it may have dropped out of the recent ones).' });
    } else if (p === '/api/events') {
      this.openStream(req, res);
    } else if (p === '/api/train/status') {
      const core = this.requireCore();
      const text = await core.trainStatus(actor).catch((err: unknown) => { throw asHttp(err); });
      sendJson(res, 200, { busy: this.deps.trainingBusy(), text });
    } else if ((m = /^\/media\/([\w-]{1,64})\/([\w-]{1,32})\.png$/.exec(p))) {
      const png = this.log.image(m[1], m[2]);
      if (!png) {
        sendJson(res, 404, { error: 'That image is no longer kept; generate it again.' });
      } else {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, 'cache-control': 'private, max-age=3600', 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : png);
      }
    } else {
      sendJson(res, 404, { error: `Nothing at ${p}.` });
    }
    return true;
  }

  private async post(req: http.IncomingMessage, res: http.ServerResponse, p: string, actor: Actor): Promise<boolean> {
    const body = (await readJson(req)) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'Send a JSON object.');
    let m: RegExpExecArray | null;
    if (p === '/api/reactions') {
      sendJson(res, 200, await this.react(body, actor));
      return true;
    }
    if (!this.accepting) throw new HttpError(503, 'The playground is shutting down; please try again in a minute.');
    if (p === '/api/command') {
      const text = typeof body.text === 'string' ? body.text : '';
      const result = this.command(text, actor);
      sendJson(res, result.ok ? 202 : 400, result.ok ? { messageId: result.messageId } : { messageId: result.messageId, error: result.error });
    } else if ((m = /^\/api\/generations\/([\w-]{1,64})\/(reroll|variations)$/.exec(p))) {
      const [, id, verb] = m;
      const core = this.requireCore();
      const reply = this.generate(`${verb === 'reroll' ? 'Reroll' : 'Variations'} of ${id}`,
        (hooks) => (verb === 'reroll' ? core.reroll(actor, id, hooks) : core.variations(actor, id, hooks)));
      sendJson(res, 202, { messageId: reply.id });
    } else if ((m = /^\/api\/generations\/([\w-]{1,64})\/images\/(\d{1,2})$/.exec(p))) {
      const id = m[1];
      const index = Number(m[2]);
      sendJson(res, 202, { messageId: this.single(id, index).id });
    } else if (p === '/api/train/start') {
      const preset = typeof body.preset === 'string' ? body.preset : '';
      const epochs = body.epochs === undefined || body.epochs === null || body.epochs === '' ? undefined : Number(body.epochs);
      const dataset = typeof body.dataset === 'string' && body.dataset.trim() ? body.dataset.trim() : undefined;
      if (epochs !== undefined && !Number.isInteger(epochs)) throw new HttpError(400, 'epochs must be a whole number.');
      const msg = await this.trainStart(actor, { preset, epochs, dataset });
      sendJson(res, msg.state === 'failed' ? 400 : 200, { messageId: msg.id, text: msg.text, error: msg.state === 'failed' ? msg.text : undefined });
    } else if (p === '/api/train/stop') {
      const core = this.requireCore();
      const text = await core.trainStop(actor).catch((err: unknown) => { throw asHttp(err); });
      this.log.add({ from: 'bot', kind: 'info', text });
      sendJson(res, 200, { text });
    } else {
      sendJson(res, 404, { error: `Nothing at ${p}.` });
    }
    return true;
  }

  // ---- state and streams -------------------------------------------------------------------------------------

  private async state(actor: Actor) {
    const s = await this.deps.status();
    const core = this.deps.core();
    let training: { busy: boolean; text: string } | null = null;
    if (core) {
      training = { busy: this.deps.trainingBusy(), text: await core.trainStatus(actor).catch((err: unknown) => userMessageOf(err)) };
    }
    return {
      ready: s.ready, reason: s.reason, model: s.model, loaded: core !== null,
      admin: actor === PLAYGROUND_ADMIN, user: `${actor.platform}:${actor.userId}`,
      presets: this.deps.presets, help: PLAYGROUND_HELP, training,
    };
  }

  private openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    send('hello', { messages: this.log.recent() });
    const unsubscribe = this.log.subscribe((m) => send('message', m));
    const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000);
    heartbeat.unref();
    this.streams.add(res);
    this.deps.trackStream(res);
    const done = () => {
      unsubscribe();
      clearInterval(heartbeat);
      this.streams.delete(res);
    };
    res.once('close', done);
    req.once('close', done);
  }

  // ---- commands ------------------------------------------------------------------------------------------------

  private requireCore(): BotCore {
    const core = this.deps.core();
    if (!core) throw new HttpError(503, this.deps.unavailableReason());
    return core;
  }

  /** Runs one typed command; the reply (or error) becomes a message of the channel. */
  private command(raw: string, actor: Actor): { ok: true; messageId: string } | { ok: false; messageId: string; error: string } {
    const text = raw.replace(/[\r\n]+/g, ' ').trim().slice(0, 2000);
    this.log.add({ from: 'you', kind: 'command', text: text || '(empty)' });
    const fail = (error: string) => ({ ok: false as const, messageId: this.log.add({ from: 'bot', kind: 'error', text: error, state: 'failed' }).id, error });
    const m = /^\/([\w-]+)\s*(.*)$/s.exec(text);
    const verb = m ? m[1].toLowerCase() : 'imagine';
    const rest = m ? m[2] : text;
    try {
      if (verb === 'help') {
        return { ok: true, messageId: this.log.add({ from: 'bot', kind: 'info', text: PLAYGROUND_HELP }).id };
      }
      const core = this.deps.core();
      if (!core) return fail(this.deps.unavailableReason());
      if (verb === 'imagine') {
        const opts = parseImagineText(rest);
        return { ok: true, messageId: this.generate(opts.prompt, (hooks) => core.imagine(actor, opts, hooks)).id };
      }
      if (verb === 'train' || verb === 'cvae-train') {
        const cmd = parseTrainText(rest);
        const sink = () => new PlaygroundTrainingSink(this.log);
        return { ok: true, messageId: this.reply(() => runTrainCommand(core, actor, cmd, sink), cmd.verb === 'start' ? 'Starting a training run…' : '…').id };
      }
      if (verb === 'model' || verb === 'cvae-model') {
        const cmd = parseModelText(rest);
        return { ok: true, messageId: this.reply(() => runModelCommand(core, actor, cmd)).id };
      }
      return fail(`I do not know \`/${verb}\`.\n${PLAYGROUND_HELP}`);
    } catch (err) {
      if (isUserError(err)) return fail(err.message);
      throw err;
    }
  }

  /** A text reply from the core (model list, train status...), shown when it arrives. */
  private reply(run: () => Promise<string>, placeholder = '…'): ChatMessage {
    const msg = this.log.add({ from: 'bot', kind: 'info', text: placeholder, state: 'working' });
    run().then(
      (text) => this.log.update(msg.id, { text, state: 'done' }),
      (err: unknown) => this.log.update(msg.id, { kind: 'error', text: this.errorText(err), state: 'failed' }),
    );
    return msg;
  }

  /** Starts a generation; its message goes queued (with position) → done (grid and buttons) | failed. */
  private generate(label: string, run: (hooks: ImagineHooks) => Promise<ImagineReply>): ChatMessage {
    const msg = this.log.add({ from: 'bot', kind: 'generation', text: `Drawing “${label.slice(0, 200)}”…`, state: 'queued' });
    const hooks: ImagineHooks = {
      onQueued: (position) => {
        if (this.log.get(msg.id)?.state === 'queued') this.log.update(msg.id, { position, text: `Waiting in the queue: position ${position}.` });
      },
    };
    this.track(Promise.resolve().then(() => run(hooks)).then(
      async (reply) => {
        const grid = this.log.putImage(msg.id, 'grid', reply.grid);
        const images = reply.images.map((png, i) => ({ url: this.log.putImage(msg.id, `image-${i}`, png), index: i }));
        await this.deps.core()?.attachMessage(reply.generationId, msg.id); // never rejects; linked before reactions can come
        this.log.update(msg.id, {
          state: 'done', position: undefined, text: reply.text,
          generation: { generationId: reply.generationId, prompt: reply.prompt, seeds: reply.seeds, model: reply.model },
          images: [{ url: grid, caption: reply.text }, ...images],
        });
      },
      async (err: unknown) => {
        const help = isUserError(err) ? await this.deps.noModelHelp().catch(() => null) : null;
        const text = this.errorText(err);
        this.log.update(msg.id, { state: 'failed', kind: 'error', position: undefined, text: help ? `${text}\n${help}` : text });
      },
    ));
    return msg;
  }

  /** Posts one image of a generation alone; reactions on it count for that image. */
  private single(generationId: string, index: number): ChatMessage {
    const core = this.requireCore();
    const msg = this.log.add({ from: 'bot', kind: 'image', text: `Image ${index + 1}…`, state: 'working' });
    this.track(core.singleImage(generationId, index).then(
      async ({ png, text }) => {
        const url = this.log.putImage(msg.id, 'image', png);
        await core.attachMessage(generationId, msg.id, index); // never rejects; linked before reactions can come
        const g = this.log.recent().find((m) => m.generation?.generationId === generationId && m.generation.imageIndex === undefined)?.generation;
        this.log.update(msg.id, {
          state: 'done', text, images: [{ url, index, caption: text }],
          generation: { generationId, prompt: g?.prompt ?? '', seeds: g ? [g.seeds[index]] : [], model: g?.model ?? '', imageIndex: index },
        });
      },
      (err: unknown) => this.log.update(msg.id, { state: 'failed', kind: 'error', text: this.errorText(err) }),
    ));
    return msg;
  }

  private async react(body: Record<string, unknown>, actor: Actor): Promise<{ recorded: boolean }> {
    const messageId = typeof body.messageId === 'string' ? body.messageId : '';
    const reaction = typeof body.reaction === 'string' ? body.reaction.trim() : '';
    const added = body.added !== false;
    if (!/^[\w-]{1,64}$/.test(messageId)) throw new HttpError(400, 'messageId is missing.');
    if (!reaction || [...reaction].length > 8 || /[\s<>"'`]/.test(reaction)) throw new HttpError(400, 'reaction must be one emoji.');
    const core = this.requireCore();
    if (!(await core.recordReaction({ platform: actor.platform, messageRef: messageId, userId: actor.userId, reaction, added }))) {
      throw new HttpError(404, 'That message is not a generation.');
    }
    const msg = this.log.get(messageId);
    if (msg) this.log.update(messageId, { reactions: { ...msg.reactions, [reaction]: added } });
    return { recorded: true };
  }

  /** Starts a training run (the training form) reported into the channel; the status message of the run comes from the sink. */
  private async trainStart(actor: Actor, opts: { preset: string; epochs?: number; dataset?: string }): Promise<ChatMessage> {
    const msgId = this.log.add({ from: 'bot', kind: 'info', text: 'Starting a training run…', state: 'working' }).id;
    try {
      const core = this.requireCore();
      const sink = new PlaygroundTrainingSink(this.log);
      const text = await core.trainStart(actor, opts, sink);
      return this.log.update(msgId, { text, state: 'done' })!;
    } catch (err) {
      return this.log.update(msgId, { kind: 'error', text: this.errorText(err), state: 'failed' })!;
    }
  }

  private errorText(err: unknown): string {
    if (err instanceof HttpError) return err.message;
    if (!isUserError(err)) log.error({ err }, 'playground request failed');
    return userMessageOf(err);
  }
}

function asHttp(err: unknown): unknown {
  return isUserError(err) ? new HttpError(err instanceof NotAllowedError ? 403 : 400, err.message) : err;
}

