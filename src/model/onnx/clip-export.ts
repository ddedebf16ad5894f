/**
 * ONNX graphs of a scene CLIP's two towers, built from its weights in TypeScript, in the form transformers.js
 * 2.17 loads (`onnx/text_model.onnx` for `CLIPTextModelWithProjection`, `onnx/vision_model.onnx` for
 * `CLIPVisionModelWithProjection`), with the same input and output names as the Hugging Face export of
 * `openai/clip-vit-base-patch32`. The math is Hugging Face `CLIPModel`'s, in float32:
 *
 *   text:   x = token_embedding[input_ids] + position_embedding[0..T-1]
 *           per layer: x += out_proj(attention(layer_norm1(x), mask)); x += fc2(quick_gelu(fc1(layer_norm2(x))))
 *           (mask: causal, plus the padding keys of attention_mask, as Hugging Face does; both additive)
 *           last_hidden_state = final_layer_norm(x)
 *           text_embeds = last_hidden_state[b, first position of the end token] @ text_projection^T
 *   vision: x = Conv(pixel_values, patch_embedding, stride = kernel = patch) flattened row-major to [B, patches, W]
 *           x = [class_embedding, x] + position_embedding; x = pre_layrnorm(x); the same layers, no mask
 *           last_hidden_state = x; image_embeds = post_layernorm(x[:, 0]) @ visual_projection^T
 *
 * Attention: heads split the width, scores scaled by 1/sqrt(headDim), softmax over the keys. The pooled end
 * token is found as the first position where `input_ids` equals the end token (Hugging Face's rule for every
 * CLIP whose end token is not id 2); the end token being the largest id, this is also the arg-max of the ids.
 *
 * Opset 17 (LayerNormalization is a standard op from 17; onnxruntime-node 1.14 runs it, as the Hugging Face
 * export of the test fixture shows). Ops: Gather, Slice, Shape, Concat, Add, Sub, Mul, Cast, Unsqueeze,
 * Reshape, Transpose, MatMul, Softmax, Sigmoid, LayerNormalization, Equal, ArgMax, GatherND, Conv, Expand.
 * Batch (both towers) and sequence length (text, up to `contextLength`) are dynamic.
 */
import type { ClipTensor, ClipWeights, SceneClipConfig } from '../../training/clip/scene-clip-config.js';
import { OnnxGraphBuilder } from './proto.js';

/** ONNX opset of both towers. */
export const CLIP_ONNX_OPSET = 17;

/** Input and output names of the text tower (those of the Hugging Face / transformers.js export). */
export const CLIP_TEXT_INPUTS = { inputIds: 'input_ids', attentionMask: 'attention_mask' } as const;
export const CLIP_TEXT_OUTPUTS = { embeds: 'text_embeds', lastHiddenState: 'last_hidden_state' } as const;
/** Input and output names of the vision tower. */
export const CLIP_VISION_INPUT = 'pixel_values';
export const CLIP_VISION_OUTPUTS = { embeds: 'image_embeds', lastHiddenState: 'last_hidden_state' } as const;

/**
 * What the masks add to a masked attention score. Finite (Hugging Face uses the float32 minimum): a causal
 * and a padding mask add up without overflowing, and exp() of it is exactly 0 next to any real score.
 */
export const ATTENTION_MASK_VALUE = -1e9;

/** Coefficient of quick_gelu: `x * sigmoid(1.702 x)`. */
export const QUICK_GELU_ALPHA = 1.702;

function layerShapes(prefix: string, width: number, mlp: number, layers: number, out: Map<string, number[]>): void {
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.encoder.layers.${i}`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      out.set(`${p}.self_attn.${proj}.weight`, [width, width]);
      out.set(`${p}.self_attn.${proj}.bias`, [width]);
    }
    out.set(`${p}.layer_norm1.weight`, [width]);
    out.set(`${p}.layer_norm1.bias`, [width]);
    out.set(`${p}.mlp.fc1.weight`, [mlp, width]);
    out.set(`${p}.mlp.fc1.bias`, [mlp]);
    out.set(`${p}.mlp.fc2.weight`, [width, mlp]);
    out.set(`${p}.mlp.fc2.bias`, [width]);
    out.set(`${p}.layer_norm2.weight`, [width]);
    out.set(`${p}.layer_norm2.bias`, [width]);
  }
}

/** Number of patches along one side of the image. Throws if the image is not a whole number of patches. */
export function patchesPerSide(config: SceneClipConfig): number {
  if (config.imageSize % config.patchSize !== 0) {
    throw new Error(`imageSize ${config.imageSize} is not a multiple of patchSize ${config.patchSize}`);
  }
  return config.imageSize / config.patchSize;
}

/** Checks the sizes of a config that the graphs rely on (heads divide the width, whole patches, end token). */
export function checkSceneClipConfig(config: SceneClipConfig): void {
  const problems: string[] = [];
  const positive = [
    'vocabSize', 'contextLength', 'textWidth', 'textLayers', 'textHeads', 'textMlp', 'imageSize', 'patchSize',
    'visionWidth', 'visionLayers', 'visionHeads', 'visionMlp', 'projectionDim',
  ] as const;
  for (const k of positive) if (!Number.isInteger(config[k]) || config[k] <= 0) problems.push(`${k} must be a positive integer (got ${config[k]})`);
  if (config.textWidth % config.textHeads !== 0) problems.push(`textWidth ${config.textWidth} is not divisible by textHeads ${config.textHeads}`);
  if (config.visionWidth % config.visionHeads !== 0) problems.push(`visionWidth ${config.visionWidth} is not divisible by visionHeads ${config.visionHeads}`);
  if (config.imageSize % config.patchSize !== 0) problems.push(`imageSize ${config.imageSize} is not a multiple of patchSize ${config.patchSize}`);
  for (const k of ['bosTokenId', 'eosTokenId'] as const) {
    if (!Number.isInteger(config[k]) || config[k] < 0 || config[k] >= config.vocabSize) problems.push(`${k} ${config[k]} is not a token id below vocabSize ${config.vocabSize}`);
  }
  if (!(config.layerNormEps > 0)) problems.push(`layerNormEps must be positive (got ${config.layerNormEps})`);
  if (!Number.isFinite(config.logitScaleInit)) problems.push(`logitScaleInit must be a number (got ${config.logitScaleInit})`);
  if (problems.length > 0) throw new Error(`invalid scene CLIP config: ${problems.join('; ')}`);
}

/** Every parameter of a scene CLIP with its PyTorch shape, in Hugging Face `CLIPModel.state_dict()` order. */
export function clipParameterShapes(config: SceneClipConfig): Map<string, number[]> {
  const s = new Map<string, number[]>();
  const tw = config.textWidth;
  const vw = config.visionWidth;
  const g = patchesPerSide(config);
  s.set('text_model.embeddings.token_embedding.weight', [config.vocabSize, tw]);
  s.set('text_model.embeddings.position_embedding.weight', [config.contextLength, tw]);
  layerShapes('text_model', tw, config.textMlp, config.textLayers, s);
  s.set('text_model.final_layer_norm.weight', [tw]);
  s.set('text_model.final_layer_norm.bias', [tw]);
  s.set('vision_model.embeddings.class_embedding', [vw]);
  s.set('vision_model.embeddings.patch_embedding.weight', [vw, 3, config.patchSize, config.patchSize]);
  s.set('vision_model.embeddings.position_embedding.weight', [g * g + 1, vw]);
  s.set('vision_model.pre_layrnorm.weight', [vw]);
  s.set('vision_model.pre_layrnorm.bias', [vw]);
  layerShapes('vision_model', vw, config.visionMlp, config.visionLayers, s);
  s.set('vision_model.post_layernorm.weight', [vw]);
  s.set('vision_model.post_layernorm.bias', [vw]);
  s.set('visual_projection.weight', [config.projectionDim, vw]);
  s.set('text_projection.weight', [config.projectionDim, tw]);
  s.set('logit_scale', []);
  return s;
}

/**
 * Checks that `weights` holds exactly the parameters of `config` (names, shapes, data lengths, finite values).
 * @param prefixes only check the parameters whose names start with one of these (default: all of them)
 * @throws Error listing every missing, extra, misshapen or non-finite tensor
 */
export function checkClipWeights(config: SceneClipConfig, weights: ClipWeights, prefixes?: string[]): void {
  checkSceneClipConfig(config);
  const wanted = (name: string) => !prefixes || prefixes.some((p) => name.startsWith(p));
  const problems: string[] = [];
  const expected = clipParameterShapes(config);
  for (const [name, shape] of expected) {
    if (!wanted(name)) continue;
    const t = weights.get(name);
    if (!t) {
      problems.push(`${name} is missing`);
      continue;
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (!(t.data instanceof Float32Array) || t.data.length !== size) {
      problems.push(`${name} has ${t.data?.length} values, expected ${size} float32`);
    } else if (!t.data.every(Number.isFinite)) {
      problems.push(`${name} has non-finite values`);
    }
  }
  for (const name of weights.keys()) if (wanted(name) && !expected.has(name)) problems.push(`${name} is not a scene CLIP parameter`);
  if (problems.length > 0) throw new Error(`scene CLIP weights do not match the config: ${problems.join('; ')}`);
}

/** The `[out, in]` (PyTorch Linear) matrix as `[in, out]` for MatMul. */
function transposed(t: ClipTensor): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  return out;
}

/** The builder names a value by its hint unless taken: the outputs must have exactly the names transformers.js reads. */
function assertOutputNames(got: string[], expected: string[]): void {
  got.forEach((name, i) => {
    if (name !== expected[i]) throw new Error(`internal: graph output ${expected[i]} was named ${name}`);
  });
}

/** Graph-building helpers shared by both towers. */
class ClipGraph {
  readonly g = new OnnxGraphBuilder();
  private readonly constants = new Map<string, string>();

  constructor(
    private readonly weights: ClipWeights,
    private readonly eps: number,
  ) {}

  tensor(name: string): ClipTensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`scene CLIP weight ${name} is missing`);
    return t;
  }

  /** A weight as an initializer, in its own shape. */
  param(name: string): string {
    const t = this.tensor(name);
    return this.g.floats(name, t.data, t.shape);
  }

  /** An int64 constant, shared by every node that uses the same values. */
  ints(values: number[]): string {
    const key = `i:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.g.int64s(`const_${values.join('_').replace(/-/g, 'm')}`, values);
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant, shared. */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.g.floats(`const_f${this.constants.size}`, Float32Array.of(value), []);
      this.constants.set(key, name);
    }
    return name;
  }

  /** `x @ W^T + b` for a PyTorch Linear `prefix.weight` `[out, in]` (and `prefix.bias` unless `bias` is false). */
  linear(x: string, prefix: string, hint: string, bias = true): string {
    const w = this.tensor(`${prefix}.weight`);
    const y = this.g.node('MatMul', [x, this.g.floats(`${prefix}.weight_T`, transposed(w), [w.shape[1], w.shape[0]])], {}, bias ? `${hint}_mm` : hint);
    return bias ? this.g.node('Add', [y, this.param(`${prefix}.bias`)], {}, hint) : y;
  }

  layerNorm(x: string, prefix: string, hint: string): string {
    return this.g.node('LayerNormalization', [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)], { axis: { int: -1 }, epsilon: { float: this.eps } }, hint);
  }

  /**
   * One pre-LN encoder layer on `x` `[B, T, width]`.
   * @param mask additive attention mask broadcastable to `[B, heads, T, T]`, or null
   */
  encoderLayer(x: string, prefix: string, width: number, heads: number, mask: string | null, hint: string): string {
    const g = this.g;
    const headDim = width / heads;
    const h = this.layerNorm(x, `${prefix}.layer_norm1`, `${hint}_ln1`);
    const a = `${prefix}.self_attn`;
    const split = this.ints([0, 0, heads, headDim]);
    const q = g.node('Transpose', [g.node('Reshape', [this.linear(h, `${a}.q_proj`, `${hint}_q`), split], {}, `${hint}_q_heads`)], { perm: { ints: [0, 2, 1, 3] } }, `${hint}_q_t`);
    const k = g.node('Transpose', [g.node('Reshape', [this.linear(h, `${a}.k_proj`, `${hint}_k`), split], {}, `${hint}_k_heads`)], { perm: { ints: [0, 2, 3, 1] } }, `${hint}_k_t`);
    const v = g.node('Transpose', [g.node('Reshape', [this.linear(h, `${a}.v_proj`, `${hint}_v`), split], {}, `${hint}_v_heads`)], { perm: { ints: [0, 2, 1, 3] } }, `${hint}_v_t`);
    let scores = g.node('Mul', [g.node('MatMul', [q, k], {}, `${hint}_qk`), this.scalar(1 / Math.sqrt(headDim))], {}, `${hint}_scores`);
    if (mask) scores = g.node('Add', [scores, mask], {}, `${hint}_masked`);
    const probs = g.node('Softmax', [scores], { axis: { int: -1 } }, `${hint}_probs`);
    const ctx = g.node('MatMul', [probs, v], {}, `${hint}_ctx`);
    const merged = g.node('Reshape', [g.node('Transpose', [ctx], { perm: { ints: [0, 2, 1, 3] } }, `${hint}_ctx_t`), this.ints([0, 0, width])], {}, `${hint}_ctx_merged`);
    x = g.node('Add', [x, this.linear(merged, `${a}.out_proj`, `${hint}_attn_out`)], {}, `${hint}_res1`);
    const h2 = this.layerNorm(x, `${prefix}.layer_norm2`, `${hint}_ln2`);
    const f1 = this.linear(h2, `${prefix}.mlp.fc1`, `${hint}_fc1`);
    const act = g.node('Mul', [f1, g.node('Sigmoid', [g.node('Mul', [f1, this.scalar(QUICK_GELU_ALPHA)], {}, `${hint}_gelu_in`)], {}, `${hint}_gelu_gate`)], {}, `${hint}_gelu`);
    return g.node('Add', [x, this.linear(act, `${prefix}.mlp.fc2`, `${hint}_fc2`)], {}, `${hint}_out`);
  }

  encode(graphName: string, config: SceneClipConfig): Uint8Array {
    return this.g.encode({
      opset: CLIP_ONNX_OPSET,
      graphName,
      producer: 'clip-cvae-bot scene CLIP',
      docString: 'Hugging Face CLIP tower, exported from the scene CLIP weights',
      metadata: { scene_clip_config: JSON.stringify(config) },
    });
  }
}

/**
 * The text tower: inputs `input_ids` and `attention_mask` (int64 `[batch_size, sequence_length]`, padding on
 * the right, every row holding its end token), outputs `text_embeds` `[batch_size, projectionDim]` (the raw
 * projection, not normalised) and `last_hidden_state` `[batch_size, sequence_length, textWidth]`.
 * @returns the encoded ONNX model
 */
export function buildClipTextOnnx(config: SceneClipConfig, weights: ClipWeights): Uint8Array {
  checkClipWeights(config, weights, ['text_model.', 'text_projection.']);
  const c = new ClipGraph(weights, config.layerNormEps);
  const g = c.g;
  const ids = g.input(CLIP_TEXT_INPUTS.inputIds, 'int64', ['batch_size', 'sequence_length']);
  const attention = g.input(CLIP_TEXT_INPUTS.attentionMask, 'int64', ['batch_size', 'sequence_length']);

  // T as a 1-element tensor; positions 0..T-1 of the position table.
  const seqLen = g.node('Slice', [g.node('Shape', [ids], {}, 'ids_shape'), c.ints([1]), c.ints([2])], {}, 'seq_len');
  const tokens = g.node('Gather', [c.param('text_model.embeddings.token_embedding.weight'), ids], { axis: { int: 0 } }, 'token_embeds');
  const positions = g.node('Slice', [c.param('text_model.embeddings.position_embedding.weight'), c.ints([0]), seqLen, c.ints([0])], {}, 'position_embeds');
  let x = g.node('Add', [tokens, positions], {}, 'embeddings');

  // Additive mask [B, 1, T, T]: causal (a constant table cut to T x T) + the padding keys of attention_mask.
  const n = config.contextLength;
  const causalTable = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) causalTable[i * n + j] = ATTENTION_MASK_VALUE;
  const tt = g.node('Concat', [seqLen, seqLen], { axis: { int: 0 } }, 'seq_len_2d');
  const causal = g.node('Slice', [g.floats('causal_mask_table', causalTable, [n, n]), c.ints([0, 0]), tt, c.ints([0, 1])], {}, 'causal_mask');
  const keep = g.node('Cast', [attention], { to: { int: 1 /* FLOAT */ } }, 'attention_float');
  const padding = g.node('Mul', [g.node('Sub', [c.scalar(1), keep], {}, 'attention_inverted'), c.scalar(ATTENTION_MASK_VALUE)], {}, 'padding_mask_2d');
  const paddingKeys = g.node('Unsqueeze', [padding, c.ints([1, 2])], {}, 'padding_mask');
  const mask = g.node('Add', [causal, paddingKeys], {}, 'attention_mask_4d');

  for (let i = 0; i < config.textLayers; i++) {
    x = c.encoderLayer(x, `text_model.encoder.layers.${i}`, config.textWidth, config.textHeads, mask, `text_layer${i}`);
  }
  const hidden = c.layerNorm(x, 'text_model.final_layer_norm', CLIP_TEXT_OUTPUTS.lastHiddenState);

  // First end token per row: arg-max of (ids == eos) picks the first true.
  const isEnd = g.node('Cast', [g.node('Equal', [ids, c.ints([config.eosTokenId])], {}, 'is_end_token')], { to: { int: 6 /* INT32 */ } }, 'is_end_int');
  const endAt = g.node('ArgMax', [isEnd], { axis: { int: 1 }, keepdims: { int: 1 }, select_last_index: { int: 0 } }, 'end_position');
  const pooled = g.node('GatherND', [hidden, endAt], { batch_dims: { int: 1 } }, 'pooled');
  const embeds = c.linear(pooled, 'text_projection', CLIP_TEXT_OUTPUTS.embeds, false);

  assertOutputNames([embeds, hidden], [CLIP_TEXT_OUTPUTS.embeds, CLIP_TEXT_OUTPUTS.lastHiddenState]);
  g.output(embeds, 'float', ['batch_size', config.projectionDim]);
  g.output(hidden, 'float', ['batch_size', 'sequence_length', config.textWidth]);
  return c.encode('scene_clip_text', config);
}

/**
 * The vision tower: input `pixel_values` float32 `[batch_size, 3, imageSize, imageSize]` (normalised as the
 * processor does), outputs `image_embeds` `[batch_size, projectionDim]` (raw projection) and
 * `last_hidden_state` `[batch_size, patches + 1, visionWidth]` (before post_layernorm, as in Hugging Face).
 * @returns the encoded ONNX model
 */
export function buildClipVisionOnnx(config: SceneClipConfig, weights: ClipWeights): Uint8Array {
  checkClipWeights(config, weights, ['vision_model.', 'visual_projection.']);
  const c = new ClipGraph(weights, config.layerNormEps);
  const g = c.g;
  const w = config.visionWidth;
  const p = config.patchSize;
  const side = patchesPerSide(config);
  const pixels = g.input(CLIP_VISION_INPUT, 'float', ['batch_size', 3, config.imageSize, config.imageSize]);

  const conv = g.node('Conv', [pixels, c.param('vision_model.embeddings.patch_embedding.weight')], { kernel_shape: { ints: [p, p] }, strides: { ints: [p, p] } }, 'patch_conv');
  // [B, W, g, g] -> [B, W, g*g] -> [B, g*g, W]: patches in row-major order.
  const patches = g.node('Transpose', [g.node('Reshape', [conv, c.ints([0, w, side * side])], {}, 'patch_flat')], { perm: { ints: [0, 2, 1] } }, 'patch_embeds');
  const batch = g.node('Slice', [g.node('Shape', [pixels], {}, 'pixels_shape'), c.ints([0]), c.ints([1])], {}, 'batch');
  const classShape = g.node('Concat', [batch, c.ints([1, w])], { axis: { int: 0 } }, 'class_shape');
  const cls = c.tensor('vision_model.embeddings.class_embedding');
  const classToken = g.node('Expand', [g.floats('vision_model.embeddings.class_embedding', cls.data, [1, 1, w]), classShape], {}, 'class_token');
  let x = g.node('Concat', [classToken, patches], { axis: { int: 1 } }, 'tokens');
  x = g.node('Add', [x, c.param('vision_model.embeddings.position_embedding.weight')], {}, 'embeddings');
  x = c.layerNorm(x, 'vision_model.pre_layrnorm', 'pre_layrnorm');
  for (let i = 0; i < config.visionLayers; i++) {
    x = c.encoderLayer(x, `vision_model.encoder.layers.${i}`, w, config.visionHeads, null, `vision_layer${i}`);
  }
  const hidden = g.node('Identity', [x], {}, CLIP_VISION_OUTPUTS.lastHiddenState);
  const classOut = g.node('Gather', [x, g.int64s('class_index', [0], [])], { axis: { int: 1 } }, 'class_out');
  const pooled = c.layerNorm(classOut, 'vision_model.post_layernorm', 'pooled');
  const embeds = c.linear(pooled, 'visual_projection', CLIP_VISION_OUTPUTS.embeds, false);

  assertOutputNames([embeds, hidden], [CLIP_VISION_OUTPUTS.embeds, CLIP_VISION_OUTPUTS.lastHiddenState]);
  g.output(embeds, 'float', ['batch_size', config.projectionDim]);
  g.output(hidden, 'float', ['batch_size', side * side + 1, w]);
  return c.encode('scene_clip_vision', config);
}
