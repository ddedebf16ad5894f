import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { distance, maxAbsDiff, norm, normalise, reference, TINY_CLIP_DIR } from './helpers.js';

describe('ClipEmbedder (tiny CLIP, quantized)', () => {
  let clip: ClipEmbedder;
  before(async () => {
    clip = await ClipEmbedder.load({ model: TINY_CLIP_DIR, quantized: true });
  });
  after(async () => {
    await clip.dispose();
  });

  it('keeps text embeddings within the README bound (0.1 absolute on the raw projections)', async () => {
    assert.equal(clip.quantized, true);
    const embs = await clip.embedTexts(reference.texts);
    embs.forEach((e, i) => {
      const ref = reference.text_embeds[i];
      const scale = norm(ref);
      // Compare on the reference's scale: our vectors are unit length.
      const raw = Array.from(e, (x) => x * scale);
      assert.ok(maxAbsDiff(raw, ref) < 0.1, `text ${i}`);
      assert.ok(Math.abs(norm(e) - 1) < 1e-5);
    });
  });

  it('really uses the quantized towers (results differ from fp32)', async () => {
    const fp32 = await ClipEmbedder.load({ model: TINY_CLIP_DIR, quantized: false });
    try {
      const [q] = await clip.embedTexts([reference.texts[1]]);
      const [f] = await fp32.embedTexts([reference.texts[1]]);
      assert.ok(maxAbsDiff(q, f) > 1e-4);
      assert.ok(maxAbsDiff(f, normalise(reference.text_embeds[1])) < 1e-4);
    } finally {
      await fp32.dispose();
    }
  });

  it('embeds images close to the reference', async () => {
    const embs = await clip.embedImages(reference.images.map((f) => path.join(TINY_CLIP_DIR, 'images', f)));
    embs.forEach((e, i) => assert.ok(distance(e, normalise(reference.image_embeds[i])) < 0.1, reference.images[i]));
  });
});
