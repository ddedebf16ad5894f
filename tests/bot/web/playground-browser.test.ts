/**
 * The playground in a real browser: headless Chromium (the one @sparticuz/chromium ships, or CHROMIUM_PATH) driven
 * by playwright-core against the real app
 * (startApp on 127.0.0.1:0, a temp data dir, a tiny checkpoint built here, the tiny CLIP fixture). Typing
 * `/imagine cows in snow` shows a progress indicator, then a grid image that the browser decoded; clicking 👍
 * records the reaction in the feedback store.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { RunningApp } from '../../../src/app.js';
import { chromiumExecutable, launchChromium } from './helpers.js';
import { addTinyModel, startTestApp, tempDataDir, waitFor } from '../../app/helpers.js';

describe('the browser of the tests', () => {
  it('is the Chromium packaged in node_modules (extracted to the temp dir), not a system one, unless CHROMIUM_PATH says', async () => {
    const exe = await chromiumExecutable({});
    assert.ok(fs.existsSync(exe), exe);
    assert.ok(exe.startsWith(os.tmpdir()), `${exe} is under ${os.tmpdir()}`);
    assert.notEqual(exe, '/usr/bin/chromium');
  });

  it('takes CHROMIUM_PATH when set, and says what to do when it names nothing', async () => {
    assert.equal(await chromiumExecutable({ CHROMIUM_PATH: process.execPath }), process.execPath);
    await assert.rejects(chromiumExecutable({ CHROMIUM_PATH: '/nonexistent/chromium' }), /CHROMIUM_PATH is \/nonexistent\/chromium, which does not exist: unset it/);
  });
});

describe('playground in headless Chromium', { timeout: 180_000 }, () => {
  let dataDir: string;
  let profile: string;
  let app: RunningApp;
  let browser: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    dataDir = tempDataDir('web-browser-');
    await addTinyModel(dataDir, 'tiny-browser');
    app = await startTestApp(dataDir);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
    // A new, empty profile (user data dir) for each run.
    browser = (await launchChromium(profile)).context;
    page = browser.pages()[0] ?? await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(msg.text()); });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await app?.stop();
    for (const d of [dataDir, profile]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('types /imagine, shows the grid, and records a 👍 in the feedback store', async () => {
    await page.goto(app.url, { waitUntil: 'domcontentloaded' });
    await page.locator('#status.ok').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#status').textContent(), 'ready');
    assert.match((await page.locator('#model').textContent()) ?? '', /tiny-browser/);

    await page.locator('#prompt').fill('/imagine cows in snow');
    await page.locator('#prompt').press('Enter');
    // The typed command shows up as the user's message, then the bot's reply with its picture.
    await page.locator('li.from-you', { hasText: '/imagine cows in snow' }).waitFor({ timeout: 10_000 });
    const reply = page.locator('li.kind-generation.state-done').first();
    await reply.waitFor({ timeout: 60_000 });
    const img = reply.locator('img.picture');
    await waitFor(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth > 0), 'the grid image to decode', 30_000);
    const size = await img.evaluate((el: HTMLImageElement) => ({ w: el.naturalWidth, h: el.naturalHeight }));
    assert.ok(size.w >= 16 && size.h >= 16, `a real picture (${size.w}x${size.h})`);
    assert.match((await reply.locator('.text').textContent()) ?? '', /cows in snow.*seed \d+.*model tiny-browser/);
    // Text labels (the emoji is decoration, hidden from the accessible name), so no button is an empty box.
    for (const label of ['Reroll', 'Variations', 'Image 1', 'Like', 'Dislike', 'Favourite']) {
      assert.equal(await reply.getByRole('button', { name: label, exact: true }).count(), 1, `button ${label}`);
    }
    assert.equal(await reply.getByRole('button', { name: 'Reroll', exact: true }).textContent(), '🎲 Reroll');

    const messageId = await reply.getAttribute('data-id');
    assert.ok(messageId);
    const store = app.runtime()!.store;
    const before = (await store.feedback.list()).length;
    await reply.locator('button.reaction[data-reaction="👍"]').click();
    const fb = await waitFor(async () => (await store.feedback.list()).slice(before)[0], 'the reaction in the store', 10_000);
    const gen = await store.generations.byMessage('web', messageId);
    assert.ok(gen, 'the message is the generation\'s web message');
    assert.deepEqual([fb.generationId, fb.reaction, fb.kind, fb.added, fb.platform, fb.userId], [gen.generation.id, '👍', 'up', true, 'web', 'local']);
    // The page shows the reaction as pressed once the server has it.
    await page.locator(`li[data-id="${messageId}"] button.reaction[data-reaction="👍"][aria-pressed="true"]`).waitFor({ timeout: 10_000 });
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });

  it('works with the keyboard alone: Enter sends, and the focus comes back to the prompt after a button', async () => {
    const prompt = page.locator('#prompt');
    await prompt.focus();
    await page.keyboard.type('/imagine sheep on a hill --seed 5');
    await page.keyboard.press('Enter');
    const reply = page.locator('li.kind-generation.state-done', { hasText: 'sheep on a hill' }).first();
    await reply.waitFor({ timeout: 60_000 });
    assert.equal(await prompt.inputValue(), '', 'the prompt is cleared');
    assert.ok(await prompt.evaluate((el) => el === document.activeElement), 'the prompt keeps the focus after Enter');
    const before = await page.locator('li.kind-generation').count();
    await reply.getByRole('button', { name: 'Reroll', exact: true }).focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await page.locator('li.kind-generation').count()) > before, 'the reroll reply', 30_000);
    await waitFor(() => prompt.evaluate((el) => el === document.activeElement), 'the focus back on the prompt', 10_000);
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });
});
