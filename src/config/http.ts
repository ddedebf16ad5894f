/**
 * Settings of the process's HTTP server (health, metrics, playground) from the environment:
 * `HOST` (default 127.0.0.1), `PORT` (default 8787; 0 picks a free port) and `PLAYGROUND`
 * (1/true: serve the playground even with chat tokens; 0/false: never; unset: only when no chat platform is configured).
 */
import { UserError } from '../errors.js';

/** The HTTP server's settings. */
export interface HttpSettings {
  host: string;
  port: number;
  /** undefined: decide from the configured platforms. */
  playground: boolean | undefined;
}

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const DEFAULT_HTTP_PORT = 8787;

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/** Parses HOST, PORT and PLAYGROUND; throws one UserError listing every bad value. */
export function httpSettingsFrom(env: NodeJS.ProcessEnv = process.env): HttpSettings {
  const readEnv = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const problems: string[] = [];
  const host = readEnv('HOST') ?? DEFAULT_HTTP_HOST;
  if (!/^[A-Za-z0-9.:_[\]-]{1,253}$/.test(host)) problems.push('HOST: must be an address like 127.0.0.1, 0.0.0.0 or ::');
  const rawPort = readEnv('PORT');
  let port = DEFAULT_HTTP_PORT;
  if (rawPort !== undefined) {
    port = Number(rawPort);
    if (!/^\d+$/.test(rawPort) || port > 65535) problems.push('PORT: must be a port number from 1 to 65535 (0: any free port)');
  }
  const rawPlayground = readEnv('PLAYGROUND')?.toLowerCase();
  let playground: boolean | undefined;
  if (rawPlayground !== undefined) {
    if (TRUE.includes(rawPlayground)) playground = true;
    else if (FALSE.includes(rawPlayground)) playground = false;
    else problems.push('PLAYGROUND: must be 1 or 0 (true/false)');
  }
  if (problems.length) throw new UserError(`The configuration has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return { host, port, playground };
}

/** True for loopback addresses (the playground then checks that requests name a loopback host). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}
