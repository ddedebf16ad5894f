import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLIPVisionModelWithProjection, Tensor, type PreTrainedModel } from '@xenova/transformers';
import sharp from 'sharp';
import { UserError } from '../../../src/errors.js';
import { ClipEmbedder } from '../../../src/model/clip/embedder.js';
import { loadOptions, resolveClipModelSource, withModelEnv } from '../../../src/model/clip/model-source.js';
import { distance, LONG_PROMPT, maxAbsDiff, norm, normalise, reference, TINY_CLIP_DIR } from './helpers.js';

const IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073];
const IMAGE_STD = [0.26862954, 0.26130258, 0.27577711];

/** A deterministic 224x224 RGB image (no resize or crop needed for CLIP). */
function pattern224(): Uint8Array {
  const px = new Uint8Array(224 * 224 * 3);
  let s = 12345;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const y = Math.floor(i / (224 * 3));
    px[i] = (((s >>> 16) & 63) + y) & 255; // noise on a vertical gradient
  }
  return px;
}

describe('ClipEmbedder (tiny CLIP, fp32)', () => {
  let clip: ClipEmbedder;
  before(async () => {
    clip = await ClipEmbedder.load({ model: TINY_CLIP_DIR, quantized: false, textBatchSize: 3 });
  });
  after(async () => {
    await clip.dispose();
  });

  it('reports the model folder, 512 dims and the 77-token context', () => {
    assert.equal(clip.modelId, TINY_CLIP_DIR);
    assert.equal(clip.dim, 512);
    assert.equal(clip.maxTokens, 77);
    assert.equal(clip.quantized, false);
  });

  it('returns nothing for no input without running a model', async () => {
    assert.deepEqual(await clip.embedTexts([]), []);
    assert.deepEqual(await clip.embedImages([]), []);
    assert.equal(clip.stats().textModelRuns, 0);
    assert.equal(clip.stats().imageModelRuns, 0);
  });

  it('tokenizes the reference texts exactly as Hugging Face does', () => {
    reference.texts.forEach((t, i) => assert.deepEqual(clip.tokenize(t), reference.input_ids[i]));
  });

  it('matches the reference text embeddings within 1e-4 after L2 normalisation', async () => {
    const embs = await clip.embedTexts(reference.texts);
    assert.equal(embs.length, 4);
    embs.forEach((e, i) => {
      assert.ok(e instanceof Float32Array);
      assert.equal(e.length, 512);
      assert.ok(Math.abs(norm(e) - 1) < 1e-5);
      const d = maxAbsDiff(e, normalise(reference.text_embeds[i]));
      assert.ok(d < 1e-4, `text ${i}: max diff ${d}`);
    });
  });

  it('embeds a 400-character prompt from start token, its first 75 tokens and end token', async () => {
    const full = clip.tokenize(LONG_PROMPT);
    assert.equal(full.length, 77);
    // Built by hand from the untruncated tokenization, independently of the embedder's cut.
    const all = (clip as unknown as { tokenizer: { encode(t: string): number[] } }).tokenizer.encode(LONG_PROMPT);
    assert.ok(all.length > 77);
    const manual = [all[0], ...all.slice(1, 76), all[all.length - 1]];
    assert.equal(manual[0], 732);
    assert.equal(manual[76], 733);
    const [viaText] = await clip.embedTexts([LONG_PROMPT]);
    const [viaIds] = await clip.embedTokenIds([manual]);
    assert.ok(maxAbsDiff(viaText, viaIds) < 1e-6);
    // The cut that drops the end token (transformers.js truncation) pools elsewhere: a different vector.
    const [dropped] = await clip.embedTokenIds([all.slice(0, 77)]);
    assert.ok(maxAbsDiff(viaText, dropped) > 1e-3);
  });

  it('gives every text whose first 75 tokens agree the same embedding', async () => {
    const a = 'cows '.repeat(75).trim();
    const b = 'cows '.repeat(120) + 'and a horse';
    assert.equal(clip.tokenize(a).length, 77);
    assert.deepEqual(clip.tokenize(a), clip.tokenize(b));
    const [ea, eb] = await clip.embedTexts([a, b]);
    assert.ok(maxAbsDiff(ea, eb) < 1e-6);
  });

  it('gives batched results equal to one-by-one results (padding does not leak)', async () => {
    const texts = ['a', 'cows in snow', LONG_PROMPT, 'White sheep on a mountain under blue sky', 'horse', 'zebra xylophone quartz'];
    const single = await ClipEmbedder.load({ model: TINY_CLIP_DIR, textBatchSize: 1, textCacheSize: 0 });
    try {
      const batched = await clip.embedTexts(texts);
      for (let i = 0; i < texts.length; i++) {
        const [one] = await single.embedTexts([texts[i]]);
        assert.ok(maxAbsDiff(batched[i], one) < 1e-5, texts[i]);
      }
      assert.equal(single.stats().textModelRuns, texts.length);
    } finally {
      await single.dispose();
    }
  });

  it('runs the text tower in batches of textBatchSize', async () => {
    const texts = Array.from({ length: 7 }, (_, i) => `batch probe ${i} sheep`);
    const before = clip.stats();
    await clip.embedTexts(texts);
    const s = clip.stats();
    assert.equal(s.textModelRuns - before.textModelRuns, 3); // 3 + 3 + 1
    assert.equal(s.textsEmbedded - before.textsEmbedded, 7);
  });

  it('answers repeated prompts from the cache without running the model', async () => {
    const [first] = await clip.embedTexts(['cache probe: cows in a field']);
    const s0 = clip.stats();
    const again = await clip.embedTexts(['cache probe: cows in a field', 'cache probe: cows in a field']);
    const s1 = clip.stats();
    assert.equal(s1.textModelRuns, s0.textModelRuns);
    assert.equal(s1.textsEmbedded, s0.textsEmbedded);
    assert.equal(s1.textCacheHits - s0.textCacheHits, 2);
    assert.deepEqual(again[0], first);
    // Callers get copies: changing a result does not change later answers.
    again[0].fill(0);
    const [third] = await clip.embedTexts(['cache probe: cows in a field']);
    assert.deepEqual(third, first);
  });

  it('embeds a text repeated within one call once', async () => {
    const s0 = clip.stats();
    const out = await clip.embedTexts(['dup probe', 'other probe', 'dup probe']);
    assert.equal(clip.stats().textsEmbedded - s0.textsEmbedded, 2);
    assert.deepEqual(out[0], out[2]);
    assert.notEqual(out[0], out[2]); // separate arrays
  });

  it('embeds the fixture PNGs like the reference (Pillow resize: within 1e-3, not the 5% of plain transformers.js)', async () => {
    const files = reference.images.map((f) => path.join(TINY_CLIP_DIR, 'images', f));
    const embs = await clip.embedImages(files);
    embs.forEach((e, i) => {
      assert.equal(e.length, 512);
      assert.ok(Math.abs(norm(e) - 1) < 1e-5);
      const d = distance(e, normalise(reference.image_embeds[i]));
      assert.ok(d < 1e-3, `${reference.images[i]}: relative difference ${d}`);
    });
  });

  it('gives the same embedding for a path and its bytes, deterministically', async () => {
    const file = path.join(TINY_CLIP_DIR, 'images', 'sheep_scene.png');
    const [a, b, c] = await clip.embedImages([file, fs.readFileSync(file), new Uint8Array(fs.readFileSync(file))]);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    const [d] = await clip.embedImages([file]);
    assert.deepEqual(a, d);
  });

  it('preprocesses a 224x224 image exactly as CLIP does (checked against hand-normalised pixels)', async () => {
    const raw = pattern224();
    const png = await sharp(raw, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
    const [ours] = await clip.embedImages([png]);
    const pixels = new Float32Array(3 * 224 * 224);
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < 224 * 224; i++) pixels[c * 224 * 224 + i] = (raw[i * 3 + c] / 255 - IMAGE_MEAN[c]) / IMAGE_STD[c];
    const src = resolveClipModelSource({ model: TINY_CLIP_DIR, quantized: false });
    const vision = (await withModelEnv(src, () =>
      CLIPVisionModelWithProjection.from_pretrained(src.loadId, loadOptions(src)),
    )) as PreTrainedModel;
    try {
      const run = vision as unknown as (i: Record<string, Tensor>) => Promise<Record<string, Tensor>>;
      const out = await run({ pixel_values: new Tensor('float32', pixels, [1, 3, 224, 224]) });
      const d = maxAbsDiff(ours, normalise(out.image_embeds.data as Float32Array));
      assert.ok(d < 1e-5, `max diff ${d}`);
    } finally {
      await vision.dispose();
    }
  });

  it('reads PNG, lossless WebP, JPEG, grayscale and RGBA images', async () => {
    const raw = pattern224();
    const img = () => sharp(raw, { raw: { width: 224, height: 224, channels: 3 } });
    const [png, webp, jpeg, rgba, gray] = await Promise.all([
      img().png().toBuffer(),
      img().webp({ lossless: true }).toBuffer(),
      img().jpeg({ quality: 95 }).toBuffer(),
      img().ensureAlpha(0.5).png().toBuffer(),
      img().grayscale().png().toBuffer(),
    ]);
    const [ePng, eWebp, eJpeg, eRgba, eGray] = await clip.embedImages([png, webp, jpeg, rgba, gray]);
    assert.deepEqual(eWebp, ePng);
    assert.deepEqual(eRgba, ePng); // alpha is dropped, as PIL's convert('RGB')
    assert.ok(distance(eJpeg, ePng) < 0.05);
    assert.equal(eGray.length, 512);
    assert.ok(distance(eGray, ePng) > 1e-4);
  });

  it('batches images like single images', async () => {
    const files = reference.images.map((f) => path.join(TINY_CLIP_DIR, 'images', f));
    const both = await clip.embedImages(files);
    const [one] = await clip.embedImages([files[1]]);
    assert.ok(maxAbsDiff(both[1], one) < 1e-5);
  });

  it('rejects a missing image file and undecodable bytes with a UserError naming them', async () => {
    await assert.rejects(clip.embedImages(['/no/such/picture.png']), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /\/no\/such\/picture\.png.*does not exist/);
      return true;
    });
    await assert.rejects(clip.embedImages([Buffer.from('definitely not an image')]), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /Cannot decode image bytes/);
      return true;
    });
  });
});
