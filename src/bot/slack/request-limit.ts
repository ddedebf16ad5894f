/**
 * A body size limit for Bolt's HTTP receiver. Bolt reads a request's whole body (raw-body, no limit) before it
 * checks the signature, and the receiver listens on all interfaces: anyone could make the bot hold any amount
 * of memory with one unsigned request. This reads the body of a request to the events path first, counting
 * bytes as they arrive: past the limit (or with a Content-Length over it) it answers 413 and closes the
 * connection without reading further; under it, the buffered body is handed to Bolt as `rawBody`, which Bolt
 * uses as it is (and then checks the signature as usual).
 */
import type http from 'node:http';
import type { HTTPReceiver } from '@slack/bolt';
import { childLogger } from '../../log.js';

const log = childLogger('slack-http');

/**
 * Largest request body the Slack receiver reads (256 KiB). Slack's own payloads (slash commands, button
 * actions, events) are a few KB; a message's blocks are capped at 50 blocks of 3,000 characters.
 */
export const SLACK_MAX_BODY_BYTES = 256 * 1024;

/** Thrown by {@link readBodyLimited} past the limit. */
class BodyTooLarge extends Error {}

/** Reads a request body of at most `maxBytes`; rejects with BodyTooLarge as soon as it is exceeded. */
export function readBodyLimited(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new BodyTooLarge(`content-length ${declared}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(new BodyTooLarge(`more than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => { cleanup(); resolve(Buffer.concat(chunks, size)); };
    const onError = (err: Error) => { cleanup(); reject(err); };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Puts the limit in front of the receiver's request listener for POSTs to `paths` (other requests go to Bolt
 * untouched: it answers them 404 without reading a body).
 */
export function limitRequestBodies(receiver: HTTPReceiver, paths: readonly string[], maxBytes = SLACK_MAX_BODY_BYTES): void {
  const bolt = receiver.requestListener;
  receiver.requestListener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method?.toUpperCase() !== 'POST' || !paths.includes(pathname)) {
      bolt(req, res);
      return;
    }
    readBodyLimited(req, maxBytes).then(
      (body) => {
        (req as http.IncomingMessage & { rawBody?: Buffer }).rawBody = body;
        try {
          bolt(req, res);
        } catch (err) {
          log.error({ err }, 'the Slack receiver failed on a request');
          if (!res.headersSent) res.writeHead(500).end();
        }
      },
      (err: Error) => {
        const tooLarge = err instanceof BodyTooLarge;
        log.warn({ path: pathname, reason: err.message, limit: maxBytes, remote: req.socket.remoteAddress }, tooLarge
          ? 'Slack request body over the limit: refused with 413 before the signature check'
          : 'Slack request body could not be read');
        if (!res.headersSent) {
          res.writeHead(tooLarge ? 413 : 400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
          res.end(tooLarge ? `Request body larger than ${maxBytes} bytes.\n` : 'Bad request.\n');
        }
        // Stop reading: close the connection once the answer is out instead of draining the rest of the body.
        res.once('finish', () => req.socket.destroy());
      },
    );
  };
}
