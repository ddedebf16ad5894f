/** src/log.ts: JSON lines for machines; human-readable lines (pino-pretty) when the log goes to a terminal. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import pino from 'pino';
import { logDestination } from '../src/log.js';

function logTo(tty: boolean): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'log-')), 'out.log');
  const fd = fs.openSync(file, 'w');
  try {
    pino({ base: undefined }, logDestination(tty, fd)).child({ module: 'test' }).info({ port: 8787 }, 'HTTP server listening');
  } finally {
    fs.closeSync(fd);
  }
  return fs.readFileSync(file, 'utf8');
}

it('writes one JSON object per line when the log does not go to a terminal', () => {
  const line = JSON.parse(logTo(false).trim());
  assert.deepEqual([line.level, line.module, line.port, line.msg], [30, 'test', 8787, 'HTTP server listening']);
});

it('writes readable lines (level, message, fields) when the log goes to a terminal', () => {
  const text = logTo(true).replace(/\x1b\[[0-9;]*m/g, ''); // without the colours
  assert.ok(!text.trimStart().startsWith('{'), text);
  assert.match(text, /INFO.*HTTP server listening/);
  assert.match(text, /port: 8787/);
});
