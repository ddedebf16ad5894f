/**
 * The CLI commands that deploy/README.md tells an operator to run exist, with the options it uses and every
 * option the command requires: checked against the real commander program of src/cli.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command, Option } from 'commander';
import { buildProgram } from '../../src/cli/index.js';
import { readRepoFile } from './helpers.js';

/** CLI invocations in a Markdown text: lines of fenced blocks and inline code spans, as argument lists. */
export function cliInvocations(markdown: string): { line: string; args: string[] }[] {
  const out: { line: string; args: string[] }[] = [];
  const fenced = [...markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].flatMap((m) => m[1].replace(/\\\n\s*/g, ' ').split('\n'));
  const inline = [...markdown.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  for (const raw of [...fenced, ...inline]) {
    const line = raw.trim();
    if (line.startsWith('#') || line.startsWith('alias ')) continue;
    const m = /(?:^cvae\s+|\brun\s+(?:--silent\s+)?cli\s+--\s+)([a-z].*)$/.exec(line);
    if (m) out.push({ line, args: m[1].split(/\s+/).filter(Boolean) });
  }
  return out;
}

/** Follows subcommand names from the program; returns the command and the arguments left over. */
function resolve(program: Command, args: string[]): { cmd: Command; rest: string[]; path: string[] } {
  let cmd = program;
  const path: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]));
    if (!sub) break;
    cmd = sub;
    path.push(sub.name());
  }
  return { cmd, rest: args.slice(i), path };
}

const readme = readRepoFile('deploy/README.md');

test('deploy/README.md: every CLI command it shows exists, with real and required options', () => {
  const program = buildProgram();
  const calls = cliInvocations(readme);
  const names = new Set(calls.map((c) => c.args[0]));
  for (const expected of ['dataset', 'train', 'register-commands']) assert.ok(names.has(expected), `the guide shows \`${expected}\``);
  for (const { line, args } of calls) {
    const { cmd, rest, path } = resolve(program, args);
    assert.ok(path.length > 0, `"${line}": \`${args[0]}\` is a command of the CLI`);
    assert.equal(cmd.commands.length, 0, `"${line}": names a full command (not just the group ${path.join(' ')})`);
    const options = cmd.options as readonly Option[];
    const given = rest.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
    for (const flag of given) {
      assert.ok(flag === '--help' || options.some((o) => o.long === flag), `"${line}": ${path.join(' ')} has the option ${flag}`);
    }
    if (!given.includes('--help')) {
      for (const o of options.filter((x) => x.mandatory)) assert.ok(given.includes(o.long!), `"${line}": gives the required ${o.long}`);
    }
  }
});

test('the README command finder reads fenced blocks, continuations, inline code and the npm form', () => {
  const md = [
    'Run `cvae train --resume` or `npm start`.',
    '```sh',
    '# cvae not-this',
    "alias cvae='docker compose exec bot npm run --silent cli --'",
    'cvae dataset build --source /d \\',
    '  --res 128',
    'docker compose exec bot npm run cli -- register-commands --guild 1',
    '```',
  ].join('\n');
  assert.deepEqual(
    cliInvocations(md).map((c) => c.args.join(' ')),
    ['dataset build --source /d --res 128', 'register-commands --guild 1', 'train --resume'],
  );
});
