/**
 * Helpers for the deployment checks: no Docker engine or systemd runs in CI, so the deploy files are parsed
 * and checked against the repository (files they reference, variables the code reads, ports, signals).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Dockerfile, type Instruction } from 'dockerfile-ast';

/** The repository root (the Docker build context). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Reads a file of the repository as UTF-8. */
export function readRepoFile(rel: string): string {
  return fs.readFileSync(path.join(repoRoot, rel), 'utf8');
}

/** Parses a Dockerfile of the repository. */
export function parseDockerfile(rel: string): Dockerfile {
  return DockerfileParser.parse(readRepoFile(rel));
}

/** The instructions of the last build stage (the image that `docker build` produces by default). */
export function finalStage(df: Dockerfile): Instruction[] {
  const all = df.getInstructions();
  let start = 0;
  all.forEach((ins, i) => {
    if (ins.getKeyword() === 'FROM') start = i;
  });
  return all.slice(start);
}

/** `--name=value` flags of an instruction (COPY --from, HEALTHCHECK --interval, ...). */
export function flagsOf(ins: Instruction): Map<string, string | null> {
  const flags = (ins as unknown as { getFlags?: () => { getName(): string; getValue(): string | null }[] }).getFlags?.() ?? [];
  return new Map(flags.map((f) => [f.getName(), f.getValue()]));
}

/** Arguments of an instruction, without its flags, as Docker sees them (JSON form decoded). */
export function argsOf(ins: Instruction): string[] {
  const content = ins.getArgumentsContent() ?? '';
  const json = content.replace(/^(--\S+\s+)*/, '').trim();
  if (json.startsWith('[')) return JSON.parse(json) as string[];
  return ins.getArguments().map((a) => a.getValue()).filter((v) => !v.startsWith('--'));
}

/** `ENV` values of a list of instructions (later ones win). */
export function envOf(instructions: Instruction[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of instructions) {
    if (ins.getKeyword() !== 'ENV') continue;
    const props = (ins as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties();
    for (const p of props) env.set(p.getName(), p.getValue() ?? '');
  }
  return env;
}

/** The command of a `HEALTHCHECK ... CMD [...]` instruction (exec form), or null for another form. */
export function healthcheckCommand(ins: Instruction): string[] | null {
  const content = (ins.getArgumentsContent() ?? '').replace(/\\\r?\n/g, ' ');
  const m = /(?:^|\s)CMD\s+(\[.*\])\s*$/s.exec(content);
  return m ? (JSON.parse(m[1]) as string[]) : null;
}

// --- .dockerignore ----------------------------------------------------------------------------------

interface IgnoreRule {
  negate: boolean;
  /** The pattern as written, without `!` and leading `/`. */
  pattern: string;
  re: RegExp;
}

/** Converts one .dockerignore pattern (Go filepath.Match syntax plus `**`) to a regular expression. */
function patternToRegExp(pattern: string): RegExp {
  let p = path.posix.normalize(pattern.replace(/^\/+/, ''));
  if (p === '.') p = '';
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      // `**` matches any number of path segments (also none).
      i++;
      if (p[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else {
        re += '.*';
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = p.indexOf(']', i);
      if (end < 0) throw new Error(`bad .dockerignore pattern: ${pattern}`);
      re += `[${p.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
      i = end;
    } else {
      re += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Parses a .dockerignore file into ordered rules. */
export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1).trim() : l).replace(/^\/+/, '');
      return { negate, pattern, re: patternToRegExp(pattern) };
    });
}

/**
 * Whether Docker leaves `rel` (a path relative to the build context) out of the context: like BuildKit,
 * a rule applies when it matches the path or one of its parent folders, and the last rule that applies wins.
 */
export function isDockerIgnored(rules: IgnoreRule[], rel: string): boolean {
  const clean = path.posix.normalize(rel.split(path.sep).join('/')).replace(/^\.\//, '').replace(/\/$/, '');
  const parts = clean.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.re.test(c))) ignored = !rule.negate;
  }
  return ignored;
}

// --- environment variables ------------------------------------------------------------------------

/** All files under a folder of the repository with one of the given extensions. */
export function listFiles(relDir: string, exts: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (exts.some((x) => e.name.endsWith(x))) out.push(p);
    }
  };
  walk(path.join(repoRoot, relDir));
  return out.sort();
}

/**
 * Names of the environment variables that a source text reads: `process.env.X`, `process.env['X']`, and
 * literal names passed to helpers (`envFlag('X')`, `readEnv("X")`: any function whose name contains "env").
 */
export function envVarsReadBy(source: string): Set<string> {
  const names = new Set<string>();
  const patterns = [
    /process\.env\.([A-Z][A-Z0-9_]*)\b/g,
    /process\.env\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\]/g,
    /\b[A-Za-z_$]*[Ee]nv[A-Za-z_$]*\(\s*['"`]([A-Z][A-Z0-9_]*)['"`]/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) names.add(m[1]);
  return names;
}

/** Keys of an object literal written as `  NAME: ...` in upper case (a zod env schema). */
export function upperCaseKeys(source: string): Set<string> {
  return new Set([...source.matchAll(/^\s*['"]?([A-Z][A-Z0-9_]{2,})['"]?\s*:/gm)].map((m) => m[1]));
}

/** One variable of .env.example: its name, example value, whether it is commented out, and its doc lines. */
export interface EnvExampleEntry {
  name: string;
  value: string;
  commentedOut: boolean;
  doc: string[];
  line: number;
}

/**
 * Parses .env.example: each `KEY=value` or `# KEY=value` line is a variable, documented by the comment
 * lines right above it (up to a blank line or another variable).
 */
export function parseEnvExample(text: string): EnvExampleEntry[] {
  const lines = text.split(/\r?\n/);
  const entries: EnvExampleEntry[] = [];
  let doc: string[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) {
      entries.push({ name: m[2], value: m[3], commentedOut: Boolean(m[1]), doc, line: i + 1 });
      // Variables listed together (e.g. CUDA_CACHE_PATH and CUDA_CACHE_MAXSIZE) share the comment above.
      return;
    }
    if (line === '' || /^#\s*-{3}/.test(line)) doc = [];
    else if (line.startsWith('#')) {
      const prev = lines[i - 1]?.trim() ?? '';
      if (/^(#\s*)?[A-Z][A-Z0-9_]*=/.test(prev)) doc = [];
      doc = [...doc, line.replace(/^#\s?/, '')];
    }
  });
  return entries;
}

// --- systemd unit ---------------------------------------------------------------------------------

/** A unit file as section -> key -> values (keys may repeat). Continuation lines are joined. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  const joined = text.replace(/\\\r?\n/g, ' ');
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = new Map();
      sections.set(sec[1], current);
      continue;
    }
    const kv = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`not a unit file line: ${line}`);
    current.set(kv[1], [...(current.get(kv[1]) ?? []), kv[2]]);
  }
  return sections;
}

/** Converts a duration written as compose (`90s`, `1m30s`) or systemd (`60`, `2min`) does, to seconds. */
export function durationSeconds(v: string | number): number {
  if (typeof v === 'number') return v;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const units: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 };
  let total = 0;
  let rest = s;
  const re = /^\s*(\d+(?:\.\d+)?)\s*(ms|sec|s|min|m|hr|h)/;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) throw new Error(`cannot read the duration "${v}"`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length).trim();
  }
  return total;
}

/**
 * Copies what `docker build` would send as context (the repository minus .dockerignore) into `dest`, the way
 * `COPY . .` lays it out in the image. Skips `.git` and `node_modules` without looking inside (both ignored).
 */
export function copyBuildContext(dest: string): string[] {
  const rules = parseDockerignore(readRepoFile('.dockerignore'));
  const copied: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(repoRoot, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name === '.git' || e.name === 'node_modules') continue;
        // An ignored folder is entered only when an exception (`!pattern`) may re-include something below it.
        if (isDockerIgnored(rules, child) && !rules.some((r) => r.negate && r.pattern.startsWith(`${child}/`))) continue;
        walk(child);
      } else if (e.isFile() && !isDockerIgnored(rules, child)) {
        fs.mkdirSync(path.join(dest, rel), { recursive: true });
        fs.copyFileSync(path.join(repoRoot, child), path.join(dest, child));
        copied.push(child);
      }
    }
  };
  walk('');
  return copied;
}
