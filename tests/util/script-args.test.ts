import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parsePositionalArgs, parseScriptArgs } from '../../src/util/script-args.js';

const USAGE = 'Usage: npm run bench -- [--quick] [--json FILE]';
const OPTIONS = { quick: { type: 'boolean' }, json: { type: 'string' } } as const;

it('parses known flags', () => {
  const r = parseScriptArgs(USAGE, OPTIONS, ['--quick', '--json', 'r.json']);
  assert.deepEqual(r.ok && { ...r.values }, { quick: true, json: 'r.json' });
});

it('answers --help and -h with the usage and exit code 0', () => {
  for (const flag of ['--help', '-h']) assert.deepEqual(parseScriptArgs(USAGE, OPTIONS, ['--quick', flag]), { ok: false, exitCode: 0, text: `${USAGE}\n` });
});

it('answers a bad flag with what is wrong and the usage, exit code 2, no stack trace', () => {
  for (const args of [['--nope'], ['--json'], ['stray']]) {
    const r = parseScriptArgs(USAGE, OPTIONS, args);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.exitCode === 2 && r.text.endsWith(`\n\n${USAGE}\n`), JSON.stringify(r));
    assert.ok(!r.ok && !/\n\s+at /.test(r.text), 'no stack trace');
  }
  const unknown = parseScriptArgs(USAGE, OPTIONS, ['--nope']);
  assert.match(!unknown.ok ? unknown.text : '', /Unknown option '--nope'/);
});

it('scripts with positional arguments: up to max of them, --help, and a flag or extra argument refused with the usage', () => {
  const usage = 'Usage: npx tsx bench/synth.ts [COUNT]';
  assert.deepEqual(parsePositionalArgs(usage, 1, ['500']), { ok: true, positionals: ['500'] });
  assert.deepEqual(parsePositionalArgs(usage, 1, []), { ok: true, positionals: [] });
  assert.deepEqual(parsePositionalArgs(usage, 1, ['--help']), { ok: false, exitCode: 0, text: `${usage}\n` });
  assert.deepEqual(parsePositionalArgs(usage, 1, ['1', '2']), { ok: false, exitCode: 2, text: `Too many arguments: 2\n\n${usage}\n` });
  const flag = parsePositionalArgs(usage, 1, ['--count']);
  assert.ok(!flag.ok && flag.exitCode === 2 && /Unknown option '--count'/.test(flag.text));
});
