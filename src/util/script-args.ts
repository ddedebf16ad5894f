/**
 * Flags of the project's scripts (`npm start`, `npm run bench`): node:util's parseArgs plus `--help`, with a
 * person's answer instead of a stack trace: `--help` prints the usage and exits 0; an unknown or malformed
 * flag prints what is wrong and the usage, and exits 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** What {@link parseScriptArgs} decided: the parsed values, or the text to print and the exit code. */
export type ScriptArgs<O extends Options> =
  | { ok: true; values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: false; strict: true }>>['values'] }
  | { ok: false; exitCode: 0 | 2; text: string };

/** Parses `args` (pure: nothing printed, no exit). */
export function parseScriptArgs<O extends Options>(usage: string, options: O, args: string[]): ScriptArgs<O> {
  if (args.includes('--help') || args.includes('-h')) return { ok: false, exitCode: 0, text: `${usage.trim()}\n` };
  try {
    const { values } = parseArgs({ args, options, allowPositionals: false, strict: true });
    return { ok: true, values };
  } catch (err) {
    return { ok: false, exitCode: 2, text: `${(err as Error).message}\n\n${usage.trim()}\n` };
  }
}

/** Parses the process's flags; on `--help` or a bad flag prints (stdout for help, stderr for errors) and exits. */
export function scriptArgsOrExit<O extends Options>(usage: string, options: O, args: string[] = process.argv.slice(2)) {
  const parsed = parseScriptArgs(usage, options, args);
  if (parsed.ok) return parsed.values;
  (parsed.exitCode === 0 ? process.stdout : process.stderr).write(parsed.text);
  process.exit(parsed.exitCode);
}

/** Like {@link parseScriptArgs} for scripts that take up to `max` positional arguments and no flags but `--help`. */
export function parsePositionalArgs(usage: string, max: number, args: string[]): { ok: true; positionals: string[] } | { ok: false; exitCode: 0 | 2; text: string } {
  if (args.includes('--help') || args.includes('-h')) return { ok: false, exitCode: 0, text: `${usage.trim()}\n` };
  try {
    const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
    if (positionals.length > max) throw new Error(`Too many arguments: ${positionals.slice(max).join(' ')}`);
    return { ok: true, positionals };
  } catch (err) {
    return { ok: false, exitCode: 2, text: `${(err as Error).message}\n\n${usage.trim()}\n` };
  }
}

/** The process's positional arguments; on `--help` or a bad argument prints and exits (see {@link scriptArgsOrExit}). */
export function positionalArgsOrExit(usage: string, max: number, args: string[] = process.argv.slice(2)): string[] {
  const parsed = parsePositionalArgs(usage, max, args);
  if (parsed.ok) return parsed.positionals;
  (parsed.exitCode === 0 ? process.stdout : process.stderr).write(parsed.text);
  process.exit(parsed.exitCode);
}
