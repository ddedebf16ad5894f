/**
 * The tokenizer of the scene CLIP: CLIP's byte-level BPE, learnt from the caption corpus.
 *
 * Text goes through exactly the steps of the CLIP tokenizer (`tokenizer.json` of
 * `openai/clip-vit-base-patch32`, as transformers.js runs it): the special tokens are split out of the raw
 * text, the rest is normalised (NFC, every whitespace run to one space, lowercase), cut into words by CLIP's
 * regex, each word's UTF-8 bytes are mapped to GPT-2's printable byte symbols, and `</w>` is appended to the
 * last symbol of the word. BPE merges then join symbols. Learning repeats the standard BPE step on the
 * word-frequency table (merge the most frequent adjacent pair) until every word is one token, so every word
 * of the scene grammar becomes a single token and the text tower sees words, as in the reference sketch.
 *
 * The vocabulary is laid out as CLIP's: the 256 byte symbols, the same with `</w>`, the merged symbols in
 * merge order, then `<|startoftext|>` and `<|endoftext|>` as the last two ids. The end token thus has the
 * largest id, which the text tower needs: it pools at the arg-max of `input_ids`, as Hugging Face CLIP does.
 * Every byte symbol is in the vocabulary, so an unknown word still tokenizes, to byte pieces, never to unk.
 *
 * {@link clipTokenizerFiles} gives the files transformers.js's `AutoTokenizer` loads (the same shape as
 * `tests/fixtures/tiny-clip`), so the scene CLIP loads through the embedder like any released CLIP.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** The start token. */
export const CLIP_BOS_TOKEN = '<|startoftext|>';
/** The end token, also padding and unk. */
export const CLIP_EOS_TOKEN = '<|endoftext|>';
/** Appended to the last symbol of a word. */
export const END_OF_WORD = '</w>';

/** CLIP's word regex (the `Split` pre-tokenizer of its tokenizer.json), as a JSON regex source. */
export const CLIP_SPLIT_REGEX =
  "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

const SPLIT = new RegExp(CLIP_SPLIT_REGEX, 'gu');
const SPECIAL_SPLIT = /(<\|startoftext\|>|<\|endoftext\|>)/;
const WHITESPACE = /\s+/gu;

/**
 * GPT-2's byte → symbol map, in its order: the printable bytes keep their own character, the other 68
 * (controls, space, 0x7f–0xa0, 0xad) map to U+0100 onwards. Index i of the result is [byte, symbol].
 */
function bytesToUnicode(): [number, string][] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => [b, String.fromCharCode(cs[i])]);
}

const BYTE_SYMBOLS = bytesToUnicode();
const BYTE_TO_SYMBOL: string[] = new Array(256);
const SYMBOL_TO_BYTE = new Map<string, number>();
for (const [b, s] of BYTE_SYMBOLS) {
  BYTE_TO_SYMBOL[b] = s;
  SYMBOL_TO_BYTE.set(s, b);
}
const UTF8 = new TextEncoder();

/** A learnt CLIP byte-level BPE: plain data (JSON-serialisable), ids are indices of `tokens`. */
export interface ClipBpe {
  /** Every token, indexed by id: byte symbols, byte symbols + `</w>`, merged symbols, start, end. */
  readonly tokens: readonly string[];
  /** The merges in rank order, each `"left right"` (byte-level symbols never contain a space). */
  readonly merges: readonly string[];
  /** Id of `<|startoftext|>` (`vocabSize - 2`). */
  readonly bosTokenId: number;
  /** Id of `<|endoftext|>` (`vocabSize - 1`, the largest), also padding and unk. */
  readonly eosTokenId: number;
  /** Number of tokens, special tokens included. */
  readonly vocabSize: number;
}

/** Options of {@link learnClipBpe}. */
export interface LearnClipBpeOptions {
  /**
   * Most tokens in the vocabulary, the 512 byte symbols and 2 special tokens included (at least 514).
   * Learning stops there even if some words are still several tokens. Default: no limit.
   */
  maxVocab?: number;
  /**
   * A pair is merged only if it occurs at least this often in the corpus (default 1). Every word seen at
   * least this often ends as one token (given `maxVocab` room); rarer words may stay in pieces.
   */
  minFrequency?: number;
}

/** CLIP's normaliser: NFC, every whitespace run to one space, lowercase (no trimming). */
export function normalizeClipText(text: string): string {
  return text.normalize('NFC').replace(WHITESPACE, ' ').toLowerCase();
}

/** Maps a string's UTF-8 bytes to GPT-2 byte symbols. */
function byteLevel(word: string): string {
  let out = '';
  for (const b of UTF8.encode(word)) out += BYTE_TO_SYMBOL[b];
  return out;
}

/** A text cut at the special tokens: each piece is a special token or a plain section (before normalising). */
function splitSpecial(text: string): { special: boolean; text: string }[] {
  return text
    .split(SPECIAL_SPLIT)
    .filter((x) => x.length > 0)
    .map((x) => ({ special: x === CLIP_BOS_TOKEN || x === CLIP_EOS_TOKEN, text: x }));
}

/** The byte-level words of a plain section (no special-token split): normalise, CLIP regex, byte symbols. */
function sectionWords(section: string): string[] {
  return (normalizeClipText(section).match(SPLIT) ?? []).map(byteLevel);
}

/**
 * The words of a text as the CLIP pre-tokenizer yields them, in GPT-2 byte symbols (without `</w>`):
 * normalised, cut by CLIP's regex. Special tokens written in the text are left out.
 */
export function preTokenizeClip(text: string): string[] {
  return splitSpecial(text).flatMap((p) => (p.special ? [] : sectionWords(p.text)));
}

/** The initial symbols of a byte-level word: one per character, `</w>` on the last. */
function wordSymbols(word: string): string[] {
  const symbols = Array.from(word);
  symbols[symbols.length - 1] += END_OF_WORD;
  return symbols;
}

/**
 * Learns a CLIP byte-level BPE from texts (see the module comment). Works on the word-frequency table, so
 * its cost depends on the distinct words, not on the corpus size. Deterministic: the most frequent pair is
 * merged first, ties go to the pair whose left, then right, symbol sorts first (by UTF-16 code units).
 */
export function learnClipBpe(texts: readonly string[], opts: LearnClipBpeOptions = {}): ClipBpe {
  const minFrequency = opts.minFrequency ?? 1;
  const maxVocab = opts.maxVocab ?? Infinity;
  const baseSize = 2 * BYTE_SYMBOLS.length + 2;
  if (!(maxVocab >= baseSize)) throw new RangeError(`maxVocab must be at least ${baseSize} (512 byte symbols and 2 special tokens), got ${maxVocab}`);
  if (!(minFrequency >= 1)) throw new RangeError(`minFrequency must be at least 1, got ${minFrequency}`);

  const tokens: string[] = [...BYTE_SYMBOLS.map(([, s]) => s), ...BYTE_SYMBOLS.map(([, s]) => s + END_OF_WORD)];
  const known = new Set(tokens);
  const merges: string[] = [];

  // The word-frequency table. The merges depend only on it (pair choice: frequency, then symbol order).
  const counts = new Map<string, number>();
  for (const text of texts) for (const w of preTokenizeClip(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts.keys()].map((w) => ({ symbols: wordSymbols(w), freq: counts.get(w)! }));

  // Pair statistics, updated incrementally: the corpus frequency of each pair and the words holding it.
  const pairFreq = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (index: number, sign: 1 | -1) => {
    const { symbols, freq } = words[index];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i] + ' ' + symbols[i + 1];
      pairFreq.set(key, (pairFreq.get(key) ?? 0) + sign * freq);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(index);
      }
    }
  };
  words.forEach((_, i) => addPairs(i, 1));

  while (tokens.length + 2 < maxVocab) {
    let best: string | null = null;
    let bestFreq = 0;
    for (const [key, freq] of pairFreq) {
      if (freq < minFrequency || freq <= 0) continue;
      if (freq > bestFreq || (freq === bestFreq && comparePairs(key, best!) < 0)) {
        best = key;
        bestFreq = freq;
      }
    }
    if (best === null) break;
    const [left, right] = best.split(' ');
    const merged = left + right;
    merges.push(best);
    if (!known.has(merged)) {
      known.add(merged);
      tokens.push(merged);
    }
    const holders = [...pairWords.get(best)!].sort((a, b) => a - b);
    for (const index of holders) {
      addPairs(index, -1);
      words[index].symbols = mergeSymbols(words[index].symbols, left, right, merged);
      addPairs(index, 1);
    }
    pairWords.delete(best);
    pairFreq.delete(best);
    for (const [key, freq] of pairFreq) if (freq <= 0) pairFreq.delete(key);
  }

  tokens.push(CLIP_BOS_TOKEN, CLIP_EOS_TOKEN);
  return { tokens, merges, bosTokenId: tokens.length - 2, eosTokenId: tokens.length - 1, vocabSize: tokens.length };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePairs(a: string, b: string): number {
  const [al, ar] = a.split(' ');
  const [bl, br] = b.split(' ');
  return compareStrings(al, bl) || compareStrings(ar, br);
}

/** Replaces every occurrence of `left right` by `merged`, left to right, non-overlapping. */
function mergeSymbols(symbols: readonly string[], left: string, right: string, merged: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/** Lookup tables of a ClipBpe for encoding and decoding, built once per ClipBpe. */
interface Codec {
  ids: Map<string, number>;
  ranks: Map<string, number>;
  cache: Map<string, number[]>;
}

const codecs = new WeakMap<ClipBpe, Codec>();

function codecOf(bpe: ClipBpe): Codec {
  let codec = codecs.get(bpe);
  if (!codec) {
    codec = {
      ids: new Map(bpe.tokens.map((t, i) => [t, i])),
      ranks: new Map(bpe.merges.map((m, i) => [m, i])),
      cache: new Map(),
    };
    codecs.set(bpe, codec);
  }
  return codec;
}

/**
 * The token ids of one byte-level word: merges applied by rank (lowest first; among equal ranks the
 * leftmost), as Hugging Face tokenizers and transformers.js do.
 */
function encodeWord(codec: Codec, word: string): number[] {
  const cached = codec.cache.get(word);
  if (cached) return cached;
  let symbols = wordSymbols(word);
  for (;;) {
    let bestRank = Infinity;
    let bestAt = -1;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const rank = codec.ranks.get(symbols[i] + ' ' + symbols[i + 1]);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        bestAt = i;
      }
    }
    if (bestAt < 0) break;
    const left = symbols[bestAt];
    const right = symbols[bestAt + 1];
    symbols = mergeSymbols(symbols, left, right, left + right);
  }
  const ids = symbols.map((s) => {
    const id = codec.ids.get(s);
    if (id === undefined) throw new Error(`BPE symbol "${s}" is not in the vocabulary (merges and tokens disagree)`);
    return id;
  });
  codec.cache.set(word, ids);
  return ids;
}

/**
 * Token ids of a text, as the CLIP tokenizer written by {@link clipTokenizerFiles} gives them
 * (transformers.js `tokenizer.encode(text)`): start token, the word pieces, end token. Special tokens
 * written in the text become those tokens. No truncation (see `truncateClipIds`).
 */
export function encodeClipText(bpe: ClipBpe, text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
  const codec = codecOf(bpe);
  const ids: number[] = [];
  if (opts.addSpecialTokens ?? true) ids.push(bpe.bosTokenId);
  for (const piece of splitSpecial(text)) {
    if (piece.special) ids.push(piece.text === CLIP_BOS_TOKEN ? bpe.bosTokenId : bpe.eosTokenId);
    else for (const word of sectionWords(piece.text)) ids.push(...encodeWord(codec, word));
  }
  if (opts.addSpecialTokens ?? true) ids.push(bpe.eosTokenId);
  return ids;
}

/**
 * The text of token ids with the special tokens skipped, as transformers.js and Hugging Face decode a CLIP
 * tokenizer (`decode(ids, { skip_special_tokens: true })`): `</w>` becomes a space, the ends are trimmed,
 * and the clean-up of tokenization spaces is applied (" ," → ",", " ." → ".", " 's" → "'s", …). For text
 * of words separated by single spaces and commas (the captions), that is the normalised text.
 */
export function decodeClipIds(bpe: ClipBpe, ids: readonly number[]): string {
  const bytes: number[] = [];
  for (const id of ids) {
    if (id === bpe.bosTokenId || id === bpe.eosTokenId) continue;
    const token = bpe.tokens[id];
    if (token === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (${bpe.vocabSize})`);
    for (const ch of token) bytes.push(SYMBOL_TO_BYTE.get(ch)!);
  }
  const text = new TextDecoder().decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' ').trim();
  return cleanUpTokenization(text);
}

/** The clean-up of tokenization spaces of Hugging Face (and transformers.js) decoding. */
function cleanUpTokenization(text: string): string {
  return text
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}

/** The files of a CLIP tokenizer, as transformers.js (and Hugging Face) load them from a model folder. */
export interface ClipTokenizerFiles {
  'tokenizer.json': object;
  'tokenizer_config.json': object;
  'special_tokens_map.json': object;
}

/**
 * The tokenizer files of a learnt BPE, in the shape of `openai/clip-vit-base-patch32`'s (and of the
 * tiny-clip fixture): `tokenizer.json` (normaliser, CLIP split + ByteLevel pre-tokenizer, BPE model with
 * `</w>`, RobertaProcessing adding start and end, ByteLevel decoder), `tokenizer_config.json`
 * (`CLIPTokenizer`, `model_max_length` = contextLength, padding and unk = the end token) and
 * `special_tokens_map.json`. Note that `JSON.stringify` writes the vocabulary's integer-like keys
 * ("0"…"9") first; the ids, not the key order, define the vocabulary.
 */
export function clipTokenizerFiles(bpe: ClipBpe, contextLength: number): ClipTokenizerFiles {
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new RangeError(`contextLength must be an integer of at least 2 (start and end token), got ${contextLength}`);
  }
  const vocab: Record<string, number> = {};
  bpe.tokens.forEach((t, i) => (vocab[t] = i));
  const added = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(bpe.bosTokenId, CLIP_BOS_TOKEN), added(bpe.eosTokenId, CLIP_EOS_TOKEN)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_REGEX }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [CLIP_EOS_TOKEN, bpe.eosTokenId],
      cls: [CLIP_BOS_TOKEN, bpe.bosTokenId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: CLIP_EOS_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: END_OF_WORD,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [...bpe.merges],
    },
  };
  const specialToken = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return {
    'tokenizer.json': tokenizer,
    'tokenizer_config.json': {
      backend: 'tokenizers',
      bos_token: CLIP_BOS_TOKEN,
      eos_token: CLIP_EOS_TOKEN,
      model_max_length: contextLength,
      pad_token: CLIP_EOS_TOKEN,
      tokenizer_class: 'CLIPTokenizer',
      unk_token: CLIP_EOS_TOKEN,
    },
    'special_tokens_map.json': {
      bos_token: specialToken(CLIP_BOS_TOKEN),
      eos_token: specialToken(CLIP_EOS_TOKEN),
      pad_token: CLIP_EOS_TOKEN,
      unk_token: specialToken(CLIP_EOS_TOKEN),
    },
  };
}

/**
 * Writes the tokenizer files of {@link clipTokenizerFiles} into `dir` (created if missing), replacing
 * files of the same names. Returns the paths written.
 */
export async function writeClipTokenizer(dir: string, bpe: ClipBpe, contextLength: number): Promise<string[]> {
  const files = clipTokenizerFiles(bpe, contextLength);
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await fs.writeFile(file, JSON.stringify(content, null, 2) + '\n');
    written.push(file);
  }
  return written;
}
