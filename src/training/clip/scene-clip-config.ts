/**
 * The shape of the scene CLIP the project trains for the offline demo: the Hugging Face CLIP architecture
 * (`CLIPModel`: a causal text transformer pooled at the end token, a ViT vision tower pooled at the class
 * token, both projected into one space, and a learnable temperature), at a size that trains on a CPU.
 *
 * Weights cross module boundaries as {@link ClipWeights}: Hugging Face parameter names and PyTorch layouts
 * (a Linear weight is `[out, in]`, the patch embedding is `[width, 3, patch, patch]`), so the TensorFlow.js
 * trainer, the ONNX writer and the transformers.js loader agree on one documented format.
 */

/** Sizes and special tokens of a scene CLIP. */
export interface SceneClipConfig {
  /** Tokens in the tokenizer, special tokens included. */
  vocabSize: number;
  /** Most tokens the text tower reads, start and end token included. */
  contextLength: number;
  textWidth: number;
  textLayers: number;
  textHeads: number;
  /** Hidden size of the text MLP. */
  textMlp: number;
  /** Side of the square input image in pixels (renders are this size; the processor resizes to it). */
  imageSize: number;
  /** Side of a square patch; `imageSize` is a multiple of it. */
  patchSize: number;
  visionWidth: number;
  visionLayers: number;
  visionHeads: number;
  visionMlp: number;
  /** Size of the shared embedding space. */
  projectionDim: number;
  /** `<|startoftext|>`. */
  bosTokenId: number;
  /** `<|endoftext|>`, also the padding token; the largest id, so pooling by argmax finds the first one. */
  eosTokenId: number;
  layerNormEps: number;
  /** Initial value of the learnable log temperature (`logit_scale`), ln(1 / 0.07) in CLIP. */
  logitScaleInit: number;
}

/** One parameter tensor: row-major data in PyTorch layout. */
export interface ClipTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Every parameter of a scene CLIP, keyed by its Hugging Face name, e.g.
 * `text_model.embeddings.token_embedding.weight` `[vocab, width]`,
 * `text_model.encoder.layers.0.self_attn.q_proj.weight` `[width, width]` (out, in) and `.bias` `[width]`,
 * `text_model.encoder.layers.0.layer_norm1.weight`, `...mlp.fc1.weight` `[mlp, width]`,
 * `text_model.final_layer_norm.weight`, `text_projection.weight` `[proj, width]` (no bias),
 * `vision_model.embeddings.class_embedding` `[width]`, `vision_model.embeddings.patch_embedding.weight`
 * `[width, 3, patch, patch]` (no bias), `vision_model.embeddings.position_embedding.weight` `[patches + 1, width]`,
 * `vision_model.pre_layrnorm.weight` (sic, as in Hugging Face), `vision_model.post_layernorm.weight`,
 * `visual_projection.weight` `[proj, width]`, `logit_scale` `[]`.
 */
export type ClipWeights = Map<string, ClipTensor>;

/** Activation of every CLIP MLP: `x * sigmoid(1.702 x)`. */
export const CLIP_HIDDEN_ACT = 'quick_gelu';

/** Pixel normalisation of CLIP (OpenAI's mean and std), used by the processor and by training. */
export const CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711] as const;
