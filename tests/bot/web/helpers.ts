/**
 * The Chromium that the browser tests drive through playwright-core: the one that `@sparticuz/chromium` ships
 * inside its npm package (brotli-compressed; extracted to the temp dir on first use, nothing is downloaded), or
 * a system Chromium when `CHROMIUM_PATH` names one. So `npm ci && npm test` needs nothing but Node.
 */
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

/** Flags for a headless browser that reaches nothing but the app under test. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

/** Path of the browser binary: `CHROMIUM_PATH` when set, else the packaged Chromium (extracted on first call). */
export async function chromiumExecutable(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = env.CHROMIUM_PATH?.trim();
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH is ${fromEnv}, which does not exist: unset it to use the Chromium of @sparticuz/chromium`);
    return fromEnv;
  }
  const { default: packaged } = await import('@sparticuz/chromium');
  packaged.setGraphicsMode = false; // no WebGL needed: skips extracting SwiftShader
  return packaged.executablePath();
}

/** Launches the browser with a new, empty profile in `profileDir`. */
export async function launchChromium(profileDir: string): Promise<{ context: BrowserContext; executablePath: string }> {
  const executablePath = await chromiumExecutable();
  const context = await chromium.launchPersistentContext(profileDir, { executablePath, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
  return { context, executablePath };
}
