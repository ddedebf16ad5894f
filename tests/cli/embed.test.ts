import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/embed.js';
import { UserError } from '../../src/errors.js';
import { ClipEmbedder } from '../../src/model/clip/embedder.js';
import { maxAbsDiff, normalise, reference, TINY_CLIP_DIR } from '../model/clip/helpers.js';

/** Runs `embed ...args` in-process and returns what it printed. */
async function runEmbed(args: string[]): Promise<string> {
  let out = '';
  const program = new Command().exitOverride();
  register(program, { write: (text: string) => (out += text) });
  await program.parseAsync(['embed', ...args], { from: 'user' });
  return out;
}

describe('cli embed', () => {
  it('--text --json prints the model and the normalised embedding', async () => {
    const out = await runEmbed(['--text', reference.texts[0], '--clip-model', TINY_CLIP_DIR, '--json']);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 1);
    const r = JSON.parse(lines[0]);
    assert.equal(r.model, TINY_CLIP_DIR);
    assert.equal(r.quantized, false);
    assert.equal(r.text, reference.texts[0]);
    assert.equal(r.tokens, reference.input_ids[0].length);
    assert.equal(r.embedding.length, 512);
    assert.ok(maxAbsDiff(r.embedding, normalise(reference.text_embeds[0])) < 1e-4);
  });

  it('prints one JSON line per --text and --image, in order', async () => {
    const image = path.join(TINY_CLIP_DIR, 'images', 'gradient.png');
    const out = await runEmbed(['--text', 'cows in snow', '--text', 'a', '--image', image, '--clip-model', TINY_CLIP_DIR, '--json']);
    const rows = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => r.text ?? r.image), ['cows in snow', 'a', image]);
    const clip = await ClipEmbedder.load({ model: TINY_CLIP_DIR });
    try {
      const [img] = await clip.embedImages([image]);
      assert.ok(maxAbsDiff(rows[2].embedding, img) < 1e-7);
    } finally {
      await clip.dispose();
    }
  });

  it('--quantized uses the quantized towers', async () => {
    const out = await runEmbed(['--text', reference.texts[1], '--clip-model', TINY_CLIP_DIR, '--quantized', '--json']);
    const r = JSON.parse(out);
    assert.equal(r.quantized, true);
    const d = maxAbsDiff(r.embedding, normalise(reference.text_embeds[1]));
    assert.ok(d > 1e-4 && d < 0.01);
  });

  it('without --json prints a short summary', async () => {
    const out = await runEmbed(['--text', 'cows in snow', '--clip-model', TINY_CLIP_DIR]);
    assert.match(out, /text "cows in snow" \(5 tokens\)/);
    assert.match(out, /512-d, \|v\| = 1\.000/);
  });

  it('a nonexistent image file is a UserError naming it', async () => {
    await assert.rejects(runEmbed(['--image', '/no/such/cows.png', '--clip-model', TINY_CLIP_DIR]), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /Image file "\/no\/such\/cows\.png" does not exist/);
      return true;
    });
  });

  it('nothing to embed is a UserError', async () => {
    await assert.rejects(runEmbed(['--clip-model', TINY_CLIP_DIR]), (e: unknown) => e instanceof UserError && /Nothing to embed/.test(e.message));
  });
});
