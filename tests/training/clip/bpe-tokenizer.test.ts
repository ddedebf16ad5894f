import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutoTokenizer, type PreTrainedTokenizer } from '@xenova/transformers';
import { loadOptions, resolveClipModelSource, withModelEnv } from '../../../src/model/clip/model-source.js';
import { clipTokenIds } from '../../../src/model/clip/tokenize.js';
import {
  clipTokenizerFiles,
  CLIP_BOS_TOKEN,
  CLIP_EOS_TOKEN,
  decodeClipIds,
  encodeClipText,
  learnClipBpe,
  normalizeClipText,
  preTokenizeClip,
  writeClipTokenizer,
  type ClipBpe,
} from '../../../src/training/clip/bpe-tokenizer.js';
import { captionScene, heldOutPrompts, randomScene } from '../../../src/training/data/synth/index.js';

const CONTEXT = 32;

/** Captions of `scenes` random scenes. */
function sceneCaptions(scenes: number, seed = 1): string[] {
  const out: string[] = [];
  for (let i = 0; i < scenes; i++) out.push(...captionScene(randomScene(seed * 100_003 + i), seed * 7919 + i));
  return out;
}

const captions = sceneCaptions(300);
const prompts = heldOutPrompts(5, 48).map((p) => p.prompt);
const corpus = [...captions, ...prompts];
/** Every distinct word of the corpus, as written (normalised, not byte-mapped). */
const corpusWords = [...new Set(corpus.flatMap((t) => normalizeClipText(t).match(/[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/gu) ?? []))].sort();

/** Loads the tokenizer files in `dir` the way the embedder does (local folder source, same env and options). */
async function loadLikeEmbedder(dir: string): Promise<PreTrainedTokenizer> {
  const source = resolveClipModelSource({ model: dir, quantized: false });
  return withModelEnv(source, () => AutoTokenizer.from_pretrained(source.loadId, loadOptions(source)));
}

describe('learnClipBpe', () => {
  const bpe = learnClipBpe(corpus);

  it('makes every word of the corpus one token (learner encode)', () => {
    assert.ok(corpusWords.length > 40, `the corpus should have many distinct words, got ${corpusWords.length}`);
    for (const w of corpusWords) {
      const ids = encodeClipText(bpe, w);
      assert.equal(ids.length, 3, `"${w}" -> ${JSON.stringify(ids.map((id) => bpe.tokens[id]))}`);
    }
  });

  it('lays out the vocabulary as CLIP: bytes, bytes + </w>, merges, start, end (the largest id)', () => {
    assert.equal(bpe.vocabSize, bpe.tokens.length);
    assert.equal(new Set(bpe.tokens).size, bpe.vocabSize, 'tokens are distinct');
    assert.equal(bpe.tokens[0], '!');
    assert.equal(bpe.tokens[256], '!</w>');
    assert.equal(bpe.tokens[bpe.bosTokenId], CLIP_BOS_TOKEN);
    assert.equal(bpe.tokens[bpe.eosTokenId], CLIP_EOS_TOKEN);
    assert.equal(bpe.bosTokenId, bpe.vocabSize - 2);
    assert.equal(bpe.eosTokenId, bpe.vocabSize - 1);
    // merged symbols follow the merges in order
    const mergedTokens = bpe.tokens.slice(512, bpe.bosTokenId);
    assert.deepEqual(mergedTokens, [...new Set(bpe.merges.map((m) => m.replace(' ', '')))]);
  });

  it('is deterministic and independent of the order of the texts', () => {
    const again = learnClipBpe([...corpus]);
    const shuffled = learnClipBpe([...corpus].reverse());
    const json = JSON.stringify(clipTokenizerFiles(bpe, CONTEXT));
    assert.equal(JSON.stringify(clipTokenizerFiles(again, CONTEXT)), json);
    assert.equal(JSON.stringify(clipTokenizerFiles(shuffled, CONTEXT)), json);
  });

  it('merges the most frequent pair first, breaking ties by symbol order', () => {
    // "ab" x3, "cd" x3 as words: pairs a b</w> and c d</w> tie at 3 -> "a b</w>" first (a < c)
    const toy = learnClipBpe(['cd ab cd ab cd ab', 'ef']);
    assert.deepEqual(toy.merges, ['a b</w>', 'c d</w>', 'e f</w>']);
    assert.deepEqual(toy.tokens.slice(512), ['ab</w>', 'cd</w>', 'ef</w>', CLIP_BOS_TOKEN, CLIP_EOS_TOKEN]);
    // runs of one letter: merges overlap, yet every word ends as one token
    const runs = learnClipBpe(['aaaaa aaa aa aaaa a', 'aaaaaaa']);
    for (const w of ['a', 'aa', 'aaa', 'aaaa', 'aaaaa', 'aaaaaaa']) assert.equal(encodeClipText(runs, w).length, 3, w);
  });

  it('stops at maxVocab and leaves rare pairs alone below minFrequency', () => {
    const capped = learnClipBpe(corpus, { maxVocab: 520 });
    assert.equal(capped.vocabSize, 520);
    assert.ok(corpusWords.some((w) => encodeClipText(capped, w).length > 3), 'some word must still be in pieces');
    const rare = learnClipBpe(['cows cows cows zebra'], { minFrequency: 2 });
    assert.equal(encodeClipText(rare, 'cows').length, 3);
    assert.ok(encodeClipText(rare, 'zebra').length > 3);
    assert.throws(() => learnClipBpe(corpus, { maxVocab: 513 }), RangeError);
  });

  it('normalises and splits like CLIP: case, whitespace, punctuation, digits, non-ASCII', () => {
    assert.deepEqual(preTokenizeClip('  Two\tCOWS,\n  at 12 sunset!! '), ['two', 'cows', ',', 'at', '1', '2', 'sunset', '!!']);
    assert.deepEqual(preTokenizeClip('café'), ['cafÃ©']); // UTF-8 bytes of é mapped to GPT-2 symbols
    assert.deepEqual(preTokenizeClip(`a ${CLIP_EOS_TOKEN}b`), ['a', 'b']);
  });

  it('learns the corpus of 4,000 scenes quickly', () => {
    const big = sceneCaptions(4000, 2);
    const t0 = performance.now();
    const b = learnClipBpe(big);
    const ms = performance.now() - t0;
    assert.ok(big.length > 12_000, `corpus ${big.length} captions`);
    assert.ok(ms < 3000, `learning took ${ms.toFixed(0)} ms`);
    for (const text of big.slice(0, 500)) {
      const words = preTokenizeClip(text);
      assert.equal(encodeClipText(b, text).length, words.length + 2, text);
    }
  });
});

describe('the written tokenizer in transformers.js', () => {
  let bpe: ClipBpe;
  let tmp: string;
  let tokenizer: PreTrainedTokenizer;

  before(async () => {
    bpe = learnClipBpe(corpus);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scene-clip-tok-'));
    const dir = path.join(tmp, 'scene-clip');
    const written = await writeClipTokenizer(dir, bpe, CONTEXT);
    assert.deepEqual(written.map((f) => path.basename(f)).sort(), ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    tokenizer = await loadLikeEmbedder(dir);
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('loads as a CLIPTokenizer with the right special tokens and length', () => {
    assert.equal(tokenizer.constructor.name, 'CLIPTokenizer');
    assert.equal(tokenizer.model_max_length, CONTEXT);
    assert.equal(tokenizer.pad_token_id, bpe.eosTokenId);
    assert.equal(tokenizer.model.tokens_to_ids.get(CLIP_BOS_TOKEN), bpe.bosTokenId);
    assert.equal(tokenizer.model.tokens_to_ids.size, bpe.vocabSize);
  });

  it('encodes every corpus word to one token between start and end', () => {
    for (const w of corpusWords) {
      const ids = clipTokenIds(tokenizer, w, CONTEXT);
      assert.equal(ids.length, 3, `"${w}" -> ${JSON.stringify(ids)}`);
      assert.equal(ids[0], bpe.bosTokenId);
      assert.equal(ids[2], bpe.eosTokenId);
      assert.equal(bpe.tokens[ids[1]], preTokenizeClip(w)[0] + '</w>');
    }
  });

  it('gives the same ids as the learner for every caption and prompt', () => {
    for (const text of corpus) assert.deepEqual(tokenizer.encode(text), encodeClipText(bpe, text), text);
    const odd = ['  Two  ZEBRAS, at 3 dawn!! ', 'café crème', 'a <|endoftext|> b', "the cow's calf", '🐄 and 🐑', 'baaaa mississippi shhh'];
    for (const text of odd) assert.deepEqual(tokenizer.encode(text), encodeClipText(bpe, text), text);
  });

  it('encodes an unseen word to several byte pieces, none unk; the end token is the largest id', () => {
    const ids = tokenizer.encode('zebra') as number[];
    assert.ok(ids.length > 3, `zebra -> ${JSON.stringify(ids)}`);
    const pieces = ids.slice(1, -1);
    assert.ok(pieces.every((id) => id !== bpe.eosTokenId && id !== bpe.bosTokenId), 'no unk (= end token) inside');
    assert.equal(pieces.map((id) => bpe.tokens[id]).join(''), 'zebra</w>');
    for (const text of [...corpus, 'zebra', '🐄']) {
      const row = tokenizer.encode(text) as number[];
      assert.equal(row.indexOf(Math.max(...row)), row.length - 1, `argmax pooling must find the end token: ${text}`);
    }
  });

  it('decodes to the normalised text, like the learner (a hyphen comes back spaced, as in CLIP)', () => {
    let plain = 0;
    for (const text of [...corpus, '  Two ZEBRAS, at  Dawn ']) {
      const ids = tokenizer.encode(text) as number[];
      const decoded = tokenizer.decode(ids, { skip_special_tokens: true });
      assert.equal(decodeClipIds(bpe, ids), decoded, text);
      const expected = normalizeClipText(text).trim();
      if (expected.includes('-')) {
        // CLIP splits "snow-capped" into three words and decodes them with spaces between
        assert.equal(decoded.replaceAll(' - ', '-'), expected, text);
      } else {
        assert.equal(decoded, expected, text);
        plain++;
      }
    }
    assert.ok(plain > corpus.length / 2, `most texts decode back exactly (${plain} of ${corpus.length})`);
    assert.equal(decodeClipIds(bpe, encodeClipText(bpe, 'Snow-capped')), 'snow - capped');
  });
});
