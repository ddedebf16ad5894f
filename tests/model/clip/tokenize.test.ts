import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@xenova/transformers';
import { clipTokenIds, padTextBatch, truncateClipIds } from '../../../src/model/clip/tokenize.js';
import { LONG_PROMPT, reference, TINY_CLIP_DIR } from './helpers.js';

const START = 732;
const END = 733;

describe('truncateClipIds', () => {
  it('keeps the start token, the first 75 content tokens and the end token', () => {
    const ids = [START, ...Array.from({ length: 100 }, (_, i) => i), END];
    const cut = truncateClipIds(ids, 77);
    assert.equal(cut.length, 77);
    assert.equal(cut[0], START);
    assert.equal(cut[76], END);
    assert.deepEqual(cut.slice(1, 76), Array.from({ length: 75 }, (_, i) => i));
  });

  it('leaves sequences that fit unchanged, including exactly 77', () => {
    const ids = [START, ...Array.from({ length: 75 }, (_, i) => i), END];
    assert.deepEqual(truncateClipIds(ids, 77), ids);
    assert.deepEqual(truncateClipIds([START, 5, END], 77), [START, 5, END]);
  });

  it('cuts a 78-token sequence by one content token', () => {
    const ids = [START, ...Array.from({ length: 76 }, (_, i) => i), END];
    assert.deepEqual(truncateClipIds(ids, 77), [START, ...Array.from({ length: 75 }, (_, i) => i), END]);
  });
});

describe('padTextBatch', () => {
  it('pads right with the pad id and masks the padding', () => {
    const b = padTextBatch([[START, 5, END], [START, END]], END);
    assert.equal(b.batch, 2);
    assert.equal(b.length, 3);
    assert.deepEqual(Array.from(b.inputIds, Number), [START, 5, END, START, END, END]);
    assert.deepEqual(Array.from(b.attentionMask, Number), [1, 1, 1, 1, 1, 0]);
  });
});

describe('clipTokenIds with the tiny CLIP tokenizer', () => {
  let tokenizer: PreTrainedTokenizer;
  before(async () => {
    env.localModelPath = path.dirname(TINY_CLIP_DIR) + path.sep;
    env.allowRemoteModels = false;
    tokenizer = await AutoTokenizer.from_pretrained(path.basename(TINY_CLIP_DIR));
  });

  it('gives exactly the Hugging Face reference ids for the reference texts', () => {
    assert.equal(reference.texts.length, 4);
    reference.texts.forEach((text, i) => assert.deepEqual(clipTokenIds(tokenizer, text), reference.input_ids[i], text));
  });

  it('cuts a 400-character prompt to 77 ids: start, its first 75 tokens, end', () => {
    assert.equal(LONG_PROMPT.length, 400);
    const full = tokenizer.encode(LONG_PROMPT) as number[];
    assert.ok(full.length > 77, `the prompt must be longer than CLIP reads (got ${full.length} tokens)`);
    const ids = clipTokenIds(tokenizer, LONG_PROMPT);
    assert.equal(ids.length, 77);
    assert.equal(ids[0], START);
    assert.equal(ids[76], END);
    assert.deepEqual(ids.slice(1, 76), full.slice(1, 76));
  });

  it('differs from transformers.js truncation, which drops the end token', () => {
    const theirs = Array.from(tokenizer(LONG_PROMPT, { truncation: true }).input_ids.data as BigInt64Array, Number);
    assert.equal(theirs.length, 77);
    assert.notEqual(theirs[76], END); // the bug this module exists for
    assert.equal(clipTokenIds(tokenizer, LONG_PROMPT)[76], END);
  });
});
