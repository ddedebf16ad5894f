/**
 * Checks of deploy/Dockerfile and deploy/Dockerfile.gpu without a Docker engine: they lint clean
 * (dockerfile-utils, the validator behind VS Code's Dockerfile support), every file they copy exists in
 * the build context and is not left out by .dockerignore, the bases are the documented ones, the command
 * is `npm start`'s entry, and the HEALTHCHECK command works against a real HTTP server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import {
  argsOf,
  envOf,
  finalStage,
  flagsOf,
  healthcheckCommand,
  isDockerIgnored,
  parseDockerfile,
  parseDockerignore,
  readRepoFile,
  repoRoot,
} from './helpers.js';

const DOCKERFILES = ['deploy/Dockerfile', 'deploy/Dockerfile.gpu'] as const;
const GPU_BASE = 'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04';
const NODE_BASE = 'node:20-bookworm-slim';
const HTTP_PORT = '8787';

const pkg = JSON.parse(readRepoFile('package.json')) as {
  scripts: Record<string, string>;
  engines?: { node?: string };
  optionalDependencies?: Record<string, string>;
};
const ignoreRules = parseDockerignore(readRepoFile('.dockerignore'));

/** The entry file that `npm start` runs (`tsx FILE` or `node --import tsx FILE`). */
function startEntry(): string {
  const start = pkg.scripts.start;
  assert.ok(start, 'package.json has a "start" script');
  const m = /^(?:tsx|node\s+--import[=\s]tsx)\s+(\S+\.[cm]?[jt]s)$/.exec(start.trim());
  assert.ok(m, `"start" runs one file through tsx (got "${start}")`);
  return m[1];
}

test('the linter flags a broken Dockerfile (so a clean result below means something)', () => {
  const bad = 'FROM node:20-bookworm-slim\nHEALTHCHECK --intervl=30s CMD true\nEXPOSE 8787/tcpx\nCMD ["node"\n';
  assert.ok(validate(bad).length >= 2, 'dockerfile-utils reports problems in a broken file');
});

for (const file of DOCKERFILES) {
  test(`${file}: lints clean`, () => {
    const problems = validate(readRepoFile(file)).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    assert.deepEqual(problems, []);
  });

  test(`${file}: every COPY/ADD source exists in the build context and is not excluded by .dockerignore`, () => {
    const df = parseDockerfile(file);
    const stages = new Set(df.getFROMs().map((f) => f.getBuildStage()).filter((s): s is string => Boolean(s)));
    const copies = df.getInstructions().filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD');
    assert.ok(copies.some((c) => !flagsOf(c).has('from')), 'copies something from the build context');
    for (const ins of copies) {
      const from = flagsOf(ins).get('from');
      const args = argsOf(ins);
      assert.ok(args.length >= 2, `${ins.getKeyword()} has a source and a destination`);
      if (from) {
        // From another stage of this file or an image named in a FROM: not in the build context.
        const images = df.getFROMs().map((f) => f.getImageName());
        assert.ok(stages.has(from) || images.includes(from), `COPY --from=${from} names a stage of ${file}`);
        continue;
      }
      for (const src of args.slice(0, -1)) {
        assert.ok(!/^https?:/.test(src), `${file} does not ADD from a URL (${src})`);
        assert.ok(fs.existsSync(path.join(repoRoot, src)), `${file}: ${ins.getKeyword()} source "${src}" exists`);
        if (src !== '.') assert.ok(!isDockerIgnored(ignoreRules, src), `"${src}" is not excluded by .dockerignore`);
      }
    }
  });

  test(`${file}: runs npm start's entry as an unprivileged user with tini, data in /data`, () => {
    const df = parseDockerfile(file);
    const last = finalStage(df);
    const cmd = last.filter((i) => i.getKeyword() === 'CMD').map(argsOf).at(-1);
    assert.ok(cmd, 'the final stage has a CMD');
    const entry = startEntry();
    const viaNode = cmd[0] === 'node' && cmd[1] === '--import' && cmd[2] === 'tsx' && cmd[3] === entry;
    const viaNpm = cmd[0] === 'npm' && cmd[1] === 'start';
    assert.ok(viaNode || viaNpm, `CMD runs "${entry}" like npm start does (got ${JSON.stringify(cmd)})`);
    assert.ok(fs.existsSync(path.join(repoRoot, entry)), `npm start's entry ${entry} exists`);
    assert.ok(!isDockerIgnored(ignoreRules, entry), `${entry} is in the build context`);

    const entrypoint = last.filter((i) => i.getKeyword() === 'ENTRYPOINT').map(argsOf).at(-1);
    assert.deepEqual(entrypoint, ['/usr/bin/tini', '--'], 'tini is PID 1 and forwards SIGTERM');
    const runs = last.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
    assert.ok(runs.some((r) => /apt-get install[^&]*\btini\b/.test(r)), 'the final stage installs tini');

    const user = last.filter((i) => i.getKeyword() === 'USER').map((i) => argsOf(i)[0]).at(-1);
    assert.ok(user && user !== 'root' && user !== '0', `the final stage runs as a non-root user (got ${user})`);

    const env = envOf(last);
    assert.equal(env.get('DATA_DIR'), '/data');
    assert.equal(env.get('PORT'), HTTP_PORT);
    assert.equal(env.get('HOST'), '0.0.0.0', 'listens on all interfaces so that the published port reaches it');
    const volumes = last.filter((i) => i.getKeyword() === 'VOLUME').flatMap(argsOf);
    assert.ok(volumes.includes('/data'), '/data is a volume');
    const exposed = last.filter((i) => i.getKeyword() === 'EXPOSE').flatMap(argsOf);
    assert.ok(exposed.includes(HTTP_PORT), `EXPOSE ${HTTP_PORT}`);
  });

  test(`${file}: installs production dependencies from the lockfile, TensorFlow binding picked per image`, () => {
    const df = parseDockerfile(file);
    const runs = df.getInstructions().filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
    const install = runs.find((r) => /\bnpm ci\b/.test(r));
    assert.ok(install, 'runs npm ci');
    assert.match(install, /--omit=dev/);
    assert.match(install, /\bnpm rebuild\b/, 'runs the install scripts of the packages it keeps');
    const optional = Object.keys(pkg.optionalDependencies ?? {});
    const keep = file.endsWith('.gpu') ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
    const drop = file.endsWith('.gpu') ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
    assert.ok(optional.includes(keep) && optional.includes(drop), `${keep} and ${drop} are optional dependencies`);
    assert.ok(install.includes(`rm -rf node_modules/${drop} `), `the image drops ${drop}`);
    assert.ok(install.includes(`node_modules/${keep}/lib/napi-v*/tfjs_binding.node`), `the build checks that ${keep} installed`);
    // Build tools stay out of the final image.
    const lastRuns = finalStage(df).filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
    assert.ok(!lastRuns.some((r) => /\bg\+\+|\bmake\b|python3/.test(r)), 'no build tools in the final stage');
    assert.ok(runs.some((r) => /apt-get install[^&]*python3[^&]*make[^&]*g\+\+/.test(r)), 'a build stage installs python3, make, g++');
  });

  test(`${file}: HEALTHCHECK asks /healthz on the HTTP port and exits 0 only when it answers 2xx`, async () => {
    const df = parseDockerfile(file);
    const hcs = finalStage(df).filter((i) => i.getKeyword() === 'HEALTHCHECK');
    assert.equal(hcs.length, 1, 'one HEALTHCHECK in the final stage');
    const cmd = healthcheckCommand(hcs[0]);
    assert.ok(cmd, 'HEALTHCHECK uses the exec form CMD [...]');
    assert.equal(cmd[0], 'node', 'the check needs only node (no curl in the image)');
    assert.match(cmd.join(' '), /127\.0\.0\.1/);
    assert.match(cmd.join(' '), /\/healthz/);
    assert.match(cmd.join(' '), new RegExp(`process\\.env\\.PORT \\|\\| ${HTTP_PORT}`));
    assert.ok(flagsOf(hcs[0]).has('start-period'), 'a start period covers model loading on first run');

    let status = 200;
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const runCheck = (p: number): Promise<number> =>
      new Promise((resolve) => {
        execFile(cmd[0] === 'node' ? process.execPath : cmd[0], cmd.slice(1), { env: { ...process.env, PORT: String(p) }, timeout: 20_000 }, (err) =>
          resolve(err ? ((err as { code?: number }).code ?? -1) : 0),
        );
      });
    try {
      assert.equal(await runCheck(port), 0, 'healthy server: exit 0');
      status = 503;
      assert.equal(await runCheck(port), 1, 'not ready (503): exit 1');
      assert.deepEqual(seen, ['/healthz', '/healthz']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    assert.equal(await runCheck(port), 1, 'nothing listening: exit 1');
  });
}

test('the app serves /healthz (the path both images check)', () => {
  const files = fs.readdirSync(path.join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const serving = files.filter((f) => /['"`]\/healthz['"`]/.test(fs.readFileSync(path.join(repoRoot, 'src', f), 'utf8')));
  assert.ok(serving.length > 0, 'some module under src/ routes "/healthz"');
});

test('Dockerfile.gpu: CUDA 11.2 + cuDNN 8 base for tfjs-node-gpu 4.x, GPU memory growth on, CUDA JIT cache on /data', () => {
  const df = parseDockerfile('deploy/Dockerfile.gpu');
  const images = df.getFROMs().map((f) => f.getImageName() + (f.getImageTag() ? `:${f.getImageTag()}` : ''));
  assert.ok(images.includes(GPU_BASE), `based on ${GPU_BASE} (got ${images.join(', ')})`);
  assert.ok(images.includes(NODE_BASE), `Node comes from the official ${NODE_BASE} image`);
  const runtimeFrom = finalStage(df)[0];
  assert.equal(runtimeFrom.getKeyword(), 'FROM');
  // The final stage must descend from the CUDA base (directly or through a named stage).
  const stageBase = new Map(df.getFROMs().map((f) => [f.getBuildStage() ?? '', f.getImageName() + (f.getImageTag() ? `:${f.getImageTag()}` : '')]));
  let base = argsOf(runtimeFrom)[0];
  for (let i = 0; i < 5 && stageBase.has(base); i++) base = stageBase.get(base)!;
  assert.equal(base, GPU_BASE, 'the runtime stage runs on the CUDA base');
  // libtensorflow 2.9 (tfjs-node-gpu 4.x) is built against CUDA 11.2 / cuDNN 8.1: a major bump needs a new base.
  const gpuVersion = pkg.optionalDependencies?.['@tensorflow/tfjs-node-gpu'] ?? '';
  assert.match(gpuVersion, /^\D?4\./, 'tfjs-node-gpu is 4.x (else revisit the CUDA base image)');

  const env = envOf(finalStage(df));
  assert.equal(env.get('TF_FORCE_GPU_ALLOW_GROWTH'), 'true');
  assert.ok(env.get('CUDA_CACHE_PATH')?.startsWith('/data/'), 'the CUDA JIT cache lives on the data volume');
  assert.equal(env.get('CUDA_CACHE_MAXSIZE'), String(4 * 1024 ** 3));
});

test('Dockerfile (CPU): node:20-bookworm-slim, same Node major as package.json engines', () => {
  const df = parseDockerfile('deploy/Dockerfile');
  const images = df.getFROMs().map((f) => f.getImageName() + (f.getImageTag() ? `:${f.getImageTag()}` : ''));
  assert.ok(images.includes(NODE_BASE), `based on ${NODE_BASE}`);
  assert.ok(!images.some((i) => i.startsWith('nvidia/')), 'no CUDA in the CPU image');
  const engines = pkg.engines?.node ?? '';
  const major = Number(/(\d+)/.exec(engines)?.[1]);
  assert.equal(major, 20, `package.json engines (${engines}) asks for Node 20, which both images ship`);
});

test('.dockerignore keeps secrets, host state and tests out, and the app in', () => {
  for (const p of ['.env', '.env.local', 'node_modules/sharp/package.json', 'data/store.sqlite', '.git/config', 'tests/deploy/helpers.ts', 'bench/run.ts', 'x.log']) {
    assert.ok(isDockerIgnored(ignoreRules, p), `${p} is excluded`);
  }
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/paths.ts', 'bin/cvae.js', 'tests/fixtures/tiny-clip/config.json']) {
    assert.ok(!isDockerIgnored(ignoreRules, p), `${p} is in the build context`);
    assert.ok(fs.existsSync(path.join(repoRoot, p)), `${p} exists`);
  }
});

test('the .dockerignore matcher follows Docker: parents, `**`, negation, last rule wins', () => {
  const rules = parseDockerignore('# c\n/build\n**/*.tmp\nlogs/*\n!logs/keep.txt\ndocs\n!docs/a\n');
  assert.equal(isDockerIgnored(rules, 'build/x/y.js'), true);
  assert.equal(isDockerIgnored(rules, 'src/build/y.js'), false);
  assert.equal(isDockerIgnored(rules, 'a/b/c.tmp'), true);
  assert.equal(isDockerIgnored(rules, 'c.tmp'), true);
  assert.equal(isDockerIgnored(rules, 'logs/a.txt'), true);
  assert.equal(isDockerIgnored(rules, 'logs/keep.txt'), false);
  assert.equal(isDockerIgnored(rules, 'docs/a/readme.md'), false);
  assert.equal(isDockerIgnored(rules, 'docs/b.md'), true);
  assert.equal(isDockerIgnored(rules, 'src/main.ts'), false);
});
