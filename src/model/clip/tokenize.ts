/**
 * CLIP tokenization with the reference truncation rule.
 *
 * CLIP's text tower reads at most `max_position_embeddings` (77) tokens. The reference CLIP
 * tokenizer (Hugging Face `CLIPTokenizer(truncation=True)`, OpenAI's `clip.tokenize`) keeps the start
 * token, the first 75 content tokens and the end token. transformers.js 2.17 instead cuts the whole
 * sequence at 77 and so drops the end token; CLIP pools the text at the end token (the arg-max of the
 * ids), so that cut moves the pooled position and changes the embedding. Here we tokenize without
 * truncation and cut ourselves.
 */
import { Tensor, type PreTrainedTokenizer } from '@xenova/transformers';

/** The context length of every released CLIP text tower. */
export const CLIP_CONTEXT_LENGTH = 77;

/**
 * Cuts a full token sequence (start token, content, end token) to `maxLength` the way the reference
 * CLIP tokenizer does: start token, the first `maxLength - 2` content tokens, end token.
 * Sequences that already fit are returned unchanged (as a copy).
 */
export function truncateClipIds(ids: readonly number[], maxLength: number = CLIP_CONTEXT_LENGTH): number[] {
  if (maxLength < 2) throw new RangeError(`maxLength must be at least 2 (start and end token), got ${maxLength}`);
  if (ids.length <= maxLength) return [...ids];
  return [ids[0], ...ids.slice(1, maxLength - 1), ids[ids.length - 1]];
}

/** Token ids and attention mask of a padded batch, row-major `[batch, length]`. */
export interface TextBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  batch: number;
  length: number;
}

/**
 * Pads token sequences to the longest one with `padId` (attention mask 0 on padding), the layout
 * the CLIP text tower takes. Padding goes on the right, as in CLIP: the causal attention mask keeps
 * padding from changing any real position, so a padded row embeds exactly like the row alone.
 */
export function padTextBatch(sequences: readonly (readonly number[])[], padId: number): TextBatch {
  const length = Math.max(1, ...sequences.map((s) => s.length));
  const batch = sequences.length;
  const inputIds = new BigInt64Array(batch * length).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * length);
  sequences.forEach((seq, row) => {
    for (let i = 0; i < seq.length; i++) {
      inputIds[row * length + i] = BigInt(seq[i]);
      attentionMask[row * length + i] = 1n;
    }
  });
  return { inputIds, attentionMask, batch, length };
}

/** The `input_ids` / `attention_mask` tensors transformers.js models take, from a padded batch. */
export function textBatchTensors(b: TextBatch): { input_ids: Tensor; attention_mask: Tensor } {
  return {
    input_ids: new Tensor('int64', b.inputIds, [b.batch, b.length]),
    attention_mask: new Tensor('int64', b.attentionMask, [b.batch, b.length]),
  };
}

/**
 * Tokenizes with a CLIP tokenizer, cut to `maxLength` like the reference tokenizer.
 * Always starts with the start token and ends with the end token.
 */
export function clipTokenIds(tokenizer: PreTrainedTokenizer, text: string, maxLength: number = CLIP_CONTEXT_LENGTH): number[] {
  const ids = tokenizer.encode(text, null, { add_special_tokens: true }) as number[];
  return truncateClipIds(ids, maxLength);
}
