/**
 * The scene CLIP in TensorFlow.js: the Hugging Face `CLIPModel` forward pass (pre-LayerNorm transformer blocks
 * with quick_gelu MLPs; a causal text tower pooled at the first end token; a ViT vision tower pooled at the
 * class token; bias-free projections; a learnable log temperature) written with plain ops on `tf.Variable`s,
 * so it trains on every backend, the wasm one included.
 *
 * Choices made for the wasm backend, which has no UnsortedSegmentSum (the gradient of `gather`): the token
 * embedding is a one-hot matmul and the end-token pooling a masked sum. Q, K and V are one fused matmul. The
 * variables are kept in TensorFlow's layouts (`[in, out]` matrices, HWIO patch filter) and converted to the
 * Hugging Face names and PyTorch layouts of {@link ClipWeights} only by {@link SceneClipModel.toClipWeights}.
 */
import * as tf from '@tensorflow/tfjs';
import { gaussian, mulberry32 } from '../../util/prng.js';
import type { ClipTensor, ClipWeights, SceneClipConfig } from './scene-clip-config.js';

let instances = 0;

/** Largest logit scale, as in CLIP (exp(logit_scale) ≤ 100). */
export const MAX_LOGIT_SCALE = Math.log(100);

/** One attention head's share of the q, k, v projections (`[width, headDim]`) and of the output one (`[headDim, width]`). */
interface Head {
  qW: tf.Variable; qB: tf.Variable;
  kW: tf.Variable; kB: tf.Variable;
  vW: tf.Variable; vB: tf.Variable;
  oW: tf.Variable;
}

interface Block {
  ln1g: tf.Variable; ln1b: tf.Variable;
  heads: Head[];
  outB: tf.Variable;
  ln2g: tf.Variable; ln2b: tf.Variable;
  fc1W: tf.Variable; fc1B: tf.Variable;
  fc2W: tf.Variable; fc2B: tf.Variable;
}

interface Tower {
  blocks: Block[];
}

/** Token ids of a batch of texts, each `[bos, ..., eos, pad...]`, padded to one length. */
export interface TokenBatch {
  /** Row-major `[batch, length]`. */
  ids: Int32Array;
  batch: number;
  length: number;
}

/** A trainable scene CLIP. Create with {@link SceneClipModel.create} or {@link SceneClipModel.fromWeights}. */
export class SceneClipModel {
  readonly config: SceneClipConfig;
  private readonly vars = new Map<string, tf.Variable>();
  private readonly text: Tower;
  private readonly vision: Tower;

  private constructor(config: SceneClipConfig, init: (name: string, shape: number[]) => tf.Tensor) {
    this.config = config;
    const c = config;
    // TensorFlow.js variable names are global to the engine: each model gets its own prefix.
    const prefix = `scene_clip_${++instances}`;
    const v = (name: string, shape: number[]) => {
      const variable = tf.variable(init(name, shape), true, `${prefix}/${name}`);
      this.vars.set(name, variable);
      return variable;
    };
    const tower = (prefix: string, width: number, mlp: number, layers: number, heads: number): Tower => {
      if (width % heads !== 0) throw new RangeError(`${prefix} width ${width} is not a multiple of its ${heads} heads`);
      const blocks: Block[] = [];
      for (let i = 0; i < layers; i++) {
        const p = `${prefix}.encoder.layers.${i}`;
        blocks.push({
          ln1g: v(`${p}.layer_norm1.weight`, [width]), ln1b: v(`${p}.layer_norm1.bias`, [width]),
          heads: Array.from({ length: heads }, (_, h) => {
            const a = `${p}.self_attn`;
            const d = width / heads;
            return {
              qW: v(`${a}.q_proj.weight#${h}`, [width, d]), qB: v(`${a}.q_proj.bias#${h}`, [d]),
              kW: v(`${a}.k_proj.weight#${h}`, [width, d]), kB: v(`${a}.k_proj.bias#${h}`, [d]),
              vW: v(`${a}.v_proj.weight#${h}`, [width, d]), vB: v(`${a}.v_proj.bias#${h}`, [d]),
              oW: v(`${a}.out_proj.weight#${h}`, [d, width]),
            };
          }),
          outB: v(`${p}.self_attn.out_proj.bias`, [width]),
          ln2g: v(`${p}.layer_norm2.weight`, [width]), ln2b: v(`${p}.layer_norm2.bias`, [width]),
          fc1W: v(`${p}.mlp.fc1.weight`, [width, mlp]), fc1B: v(`${p}.mlp.fc1.bias`, [mlp]),
          fc2W: v(`${p}.mlp.fc2.weight`, [mlp, width]), fc2B: v(`${p}.mlp.fc2.bias`, [width]),
        });
      }
      return { blocks };
    };
    const patches = (c.imageSize / c.patchSize) ** 2;
    if (!Number.isInteger(patches)) throw new RangeError(`image size ${c.imageSize} is not a multiple of the patch size ${c.patchSize}`);
    v('text_model.embeddings.token_embedding.weight', [c.vocabSize, c.textWidth]);
    v('text_model.embeddings.position_embedding.weight', [c.contextLength, c.textWidth]);
    this.text = tower('text_model', c.textWidth, c.textMlp, c.textLayers, c.textHeads);
    v('text_model.final_layer_norm.weight', [c.textWidth]);
    v('text_model.final_layer_norm.bias', [c.textWidth]);
    v('text_projection.weight', [c.textWidth, c.projectionDim]);
    v('vision_model.embeddings.class_embedding', [c.visionWidth]);
    v('vision_model.embeddings.patch_embedding.weight', [c.patchSize, c.patchSize, 3, c.visionWidth]);
    v('vision_model.embeddings.position_embedding.weight', [patches + 1, c.visionWidth]);
    v('vision_model.pre_layrnorm.weight', [c.visionWidth]);
    v('vision_model.pre_layrnorm.bias', [c.visionWidth]);
    this.vision = tower('vision_model', c.visionWidth, c.visionMlp, c.visionLayers, c.visionHeads);
    v('vision_model.post_layernorm.weight', [c.visionWidth]);
    v('vision_model.post_layernorm.bias', [c.visionWidth]);
    v('visual_projection.weight', [c.visionWidth, c.projectionDim]);
    v('logit_scale', []);
  }

  /**
   * A freshly initialised model, seeded: normal weights (std 0.02 for embeddings, width^-0.5 scaled for
   * projections as in Hugging Face's `_init_weights`), LayerNorms at identity, zero biases.
   */
  static create(config: SceneClipConfig, seed: number): SceneClipModel {
    const random = mulberry32(seed);
    const normal = (shape: number[], std: number) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = gaussian(random) * std;
      return tf.tensor(data, shape);
    };
    return new SceneClipModel(config, (name, shape) => {
      if (name === 'logit_scale') return tf.scalar(config.logitScaleInit);
      if (/(layer_norm\d|final_layer_norm|pre_layrnorm|post_layernorm)\.weight$/.test(name)) return tf.ones(shape);
      if (/\.bias(#\d+)?$/.test(name)) return tf.zeros(shape);
      // The fan-in of a head's share of out_proj is the whole width.
      const fanIn = name.includes('patch_embedding') ? shape[0] * shape[1] * shape[2] : name.includes('out_proj.weight#') ? shape[1] : shape[0];
      if (name.includes('embedding')) return normal(shape, name.includes('patch') ? fanIn ** -0.5 : 0.02);
      return normal(shape, fanIn ** -0.5);
    });
  }

  /** A model holding the given weights (Hugging Face names and layouts), e.g. from a saved scene CLIP folder. */
  static fromWeights(config: SceneClipConfig, weights: ClipWeights): SceneClipModel {
    const tfWeights = hfToTf(config, weights);
    return new SceneClipModel(config, (name, shape) => {
      const t = tfWeights.get(name);
      if (!t) throw new Error(`the scene CLIP weights lack ${name}`);
      if (t.shape.join() !== shape.join()) throw new Error(`the scene CLIP weight ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      return tf.tensor(t.data, shape);
    });
  }

  /** Every trainable variable. */
  get trainableVariables(): tf.Variable[] {
    return [...this.vars.values()];
  }

  /** Number of parameters. */
  get parameterCount(): number {
    return this.trainableVariables.reduce((n, v) => n + v.size, 0);
  }

  private get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no scene CLIP variable ${name}`);
    return v;
  }

  /** Text embeddings `[batch, projectionDim]` (not normalised) of a token batch. */
  encodeText(tokens: TokenBatch): tf.Tensor2D {
    const c = this.config;
    const { batch, length } = tokens;
    if (length > c.contextLength) throw new RangeError(`${length} tokens exceed the context length ${c.contextLength}`);
    return tf.tidy(() => {
      const ids = tf.tensor1d(tokens.ids, 'int32');
      // int32 one-hot, then cast: the wasm backend's OneHot writes zeros when asked for float32 directly.
      const oneHot = tf.cast(tf.oneHot(ids, c.vocabSize), 'float32');
      const tok = tf.matMul(oneHot, this.get('text_model.embeddings.token_embedding.weight'));
      const pos = this.get('text_model.embeddings.position_embedding.weight').slice([0, 0], [length, c.textWidth]);
      let x = tf.add(tok.reshape([batch, length, c.textWidth]), pos) as tf.Tensor3D;
      const mask = causalMask(length);
      for (const b of this.text.blocks) x = block(x, b, c.layerNormEps, mask);
      x = layerNorm(x, this.get('text_model.final_layer_norm.weight'), this.get('text_model.final_layer_norm.bias'), c.layerNormEps) as tf.Tensor3D;
      const pool = tf.tensor3d(endTokenOneHot(tokens, c.eosTokenId), [batch, 1, length]);
      const pooled = tf.matMul(pool, x).reshape([batch, c.textWidth]);
      return tf.matMul(pooled, this.get('text_projection.weight')) as tf.Tensor2D;
    });
  }

  /**
   * Image embeddings `[batch, projectionDim]` (not normalised) of images `[batch, size, size, 3]` already
   * normalised like the CLIP processor does ((x / 255 - mean) / std).
   */
  encodeImage(images: tf.Tensor4D): tf.Tensor2D {
    const c = this.config;
    const [batch, h, w] = images.shape;
    if (h !== c.imageSize || w !== c.imageSize) throw new RangeError(`images are ${h}x${w}, the scene CLIP takes ${c.imageSize}x${c.imageSize}`);
    return tf.tidy(() => {
      const patches = tf.conv2d(images, this.get('vision_model.embeddings.patch_embedding.weight') as tf.Tensor4D, c.patchSize, 'valid');
      const n = (c.imageSize / c.patchSize) ** 2;
      const flat = patches.reshape([batch, n, c.visionWidth]);
      const cls = tf.tile(this.get('vision_model.embeddings.class_embedding').reshape([1, 1, c.visionWidth]), [batch, 1, 1]);
      let x = tf.add(tf.concat([cls, flat], 1), this.get('vision_model.embeddings.position_embedding.weight')) as tf.Tensor3D;
      x = layerNorm(x, this.get('vision_model.pre_layrnorm.weight'), this.get('vision_model.pre_layrnorm.bias'), c.layerNormEps) as tf.Tensor3D;
      for (const b of this.vision.blocks) x = block(x, b, c.layerNormEps, null);
      const first = x.slice([0, 0, 0], [batch, 1, c.visionWidth]).reshape([batch, c.visionWidth]);
      const pooled = layerNorm(first, this.get('vision_model.post_layernorm.weight'), this.get('vision_model.post_layernorm.bias'), c.layerNormEps);
      return tf.matMul(pooled, this.get('visual_projection.weight')) as tf.Tensor2D;
    });
  }

  /**
   * Symmetric InfoNCE of a batch of matching (image, text) pairs: row i of each is one pair; the mean of the
   * image→text and text→image cross-entropies of `exp(logit_scale) · cos` logits. `targets` (symmetric,
   * rows summing to 1) replaces the identity where several pairs of a batch are positives of each other.
   */
  contrastiveLoss(images: tf.Tensor4D, tokens: TokenBatch, targets?: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const img = l2Normalize(this.encodeImage(images));
      const txt = l2Normalize(this.encodeText(tokens));
      const scale = tf.exp(tf.minimum(this.get('logit_scale'), MAX_LOGIT_SCALE));
      const logits = tf.mul(tf.matMul(img, txt, false, true), scale) as tf.Tensor2D;
      const labels = targets ?? tf.eye(tokens.batch);
      const i2t = tf.losses.softmaxCrossEntropy(labels, logits);
      const t2i = tf.losses.softmaxCrossEntropy(labels, logits.transpose());
      return tf.div(tf.add(i2t, t2i), 2) as tf.Scalar;
    });
  }

  /** The current temperature's inverse, exp(logit_scale), clamped as in the loss. */
  logitScale(): number {
    return Math.exp(Math.min(this.get('logit_scale').dataSync()[0], MAX_LOGIT_SCALE));
  }

  /** The weights with Hugging Face names and PyTorch layouts (heads joined, matrices transposed). */
  toClipWeights(): ClipWeights {
    const out: ClipWeights = new Map();
    const parts = new Map<string, { shape: number[]; data: Float32Array }[]>();
    for (const [name, v] of this.vars) {
      const data = v.dataSync() as Float32Array;
      const head = /^(.*)#(\d+)$/.exec(name);
      if (head) {
        const list = parts.get(head[1]) ?? [];
        list[Number(head[2])] = { shape: [...v.shape], data };
        parts.set(head[1], list);
      } else if (name.endsWith('patch_embedding.weight')) {
        out.set(name, hwioToOihw(data, v.shape));
      } else if (v.shape.length === 2 && !name.includes('embedding')) {
        out.set(name, transposeMatrix(data, v.shape[0], v.shape[1]));
      } else {
        out.set(name, { shape: [...v.shape], data: Float32Array.from(data) });
      }
    }
    for (const [name, list] of parts) {
      if (name.endsWith('.bias')) {
        out.set(name, { shape: [list.reduce((n, p) => n + p.data.length, 0)], data: concatData(list.map((p) => p.data)) });
      } else if (name.includes('out_proj')) {
        // [headDim, width] per head, stacked along the input rows.
        const width = list[0].shape[1];
        out.set(name, transposeMatrix(concatData(list.map((p) => p.data)), width, width));
      } else {
        // [width, headDim] per head, side by side along the output columns.
        const width = list[0].shape[0];
        const d = list[0].shape[1];
        const full = new Float32Array(width * width);
        list.forEach((p, h) => {
          for (let r = 0; r < width; r++) full.set(p.data.subarray(r * d, (r + 1) * d), r * width + h * d);
        });
        out.set(name, transposeMatrix(full, width, width));
      }
    }
    return out;
  }

  /** Frees every variable. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** Row i: one at the first end token of text i (its pooled position), zeros elsewhere. */
export function endTokenOneHot(tokens: TokenBatch, eosTokenId: number): Float32Array {
  const out = new Float32Array(tokens.batch * tokens.length);
  for (let b = 0; b < tokens.batch; b++) {
    let at = tokens.length - 1;
    for (let t = 0; t < tokens.length; t++) {
      if (tokens.ids[b * tokens.length + t] === eosTokenId) {
        at = t;
        break;
      }
    }
    out[b * tokens.length + at] = 1;
  }
  return out;
}

function causalMask(length: number): tf.Tensor2D {
  const m = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) m[i * length + j] = -1e9;
  return tf.tensor2d(m, [length, length]);
}

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}

function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.sum(tf.square(x), 1, true))) as tf.Tensor2D;
}

function dense(x2d: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(x2d, w as tf.Tensor2D), b) as tf.Tensor2D;
}

/**
 * One pre-LayerNorm transformer block on `[batch, tokens, width]`; `mask` is added to the attention logits.
 * Each head has its own projections, so no tensor is ever transposed (the wasm backend's 5-D transposes
 * took half of a training step).
 */
function block(x: tf.Tensor3D, b: Block, eps: number, mask: tf.Tensor2D | null): tf.Tensor3D {
  const [batch, tokens, width] = x.shape;
  const headDim = width / b.heads.length;
  const h = layerNorm(x, b.ln1g, b.ln1b, eps).reshape([batch * tokens, width]) as tf.Tensor2D;
  let attended: tf.Tensor2D | null = null;
  for (const head of b.heads) {
    const q = dense(h, head.qW, head.qB).reshape([batch, tokens, headDim]) as tf.Tensor3D;
    const k = dense(h, head.kW, head.kB).reshape([batch, tokens, headDim]) as tf.Tensor3D;
    const v = dense(h, head.vW, head.vB).reshape([batch, tokens, headDim]) as tf.Tensor3D;
    let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)) as tf.Tensor3D;
    if (mask) scores = tf.add(scores, mask) as tf.Tensor3D;
    const out: tf.Tensor2D = tf.matMul(tf.matMul(tf.softmax(scores), v).reshape([batch * tokens, headDim]) as tf.Tensor2D, head.oW as tf.Tensor2D);
    attended = attended ? (tf.add(attended, out) as tf.Tensor2D) : out;
  }
  const x1 = tf.add(x, tf.add(attended!, b.outB).reshape([batch, tokens, width])) as tf.Tensor3D;
  const h2 = layerNorm(x1, b.ln2g, b.ln2b, eps).reshape([batch * tokens, width]) as tf.Tensor2D;
  const mlp = dense(quickGelu(dense(h2, b.fc1W, b.fc1B)) as tf.Tensor2D, b.fc2W, b.fc2B);
  return tf.add(x1, mlp.reshape([batch, tokens, width])) as tf.Tensor3D;
}

function transposeMatrix(data: Float32Array, rows: number, cols: number): ClipTensor {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return { shape: [cols, rows], data: out };
}

function columns(data: Float32Array, rows: number, cols: number, start: number, count: number): Float32Array {
  const out = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + start, r * cols + start + count), r * count);
  return out;
}

function hwioToOihw(data: Float32Array, shape: readonly number[]): ClipTensor {
  const [h, w, i, o] = shape;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < i; c++) for (let k = 0; k < o; k++) {
    out[((k * i + c) * h + y) * w + x] = data[((y * w + x) * i + c) * o + k];
  }
  return { shape: [o, i, h, w], data: out };
}

function oihwToHwio(t: ClipTensor): Float32Array {
  const [o, i, h, w] = t.shape;
  const out = new Float32Array(t.data.length);
  for (let k = 0; k < o; k++) for (let c = 0; c < i; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((y * w + x) * i + c) * o + k] = t.data[((k * i + c) * h + y) * w + x];
  }
  return out;
}

/** Hugging Face weights → this module's variable names and layouts (the inverse of `toClipWeights`). */
function hfToTf(config: SceneClipConfig, weights: ClipWeights): Map<string, ClipTensor> {
  const out = new Map<string, ClipTensor>();
  for (const [name, t] of weights) {
    const attn = /^(text_model|vision_model)\.encoder\.layers\.\d+\.self_attn\.(q|k|v|out)_proj\.(weight|bias)$/.exec(name);
    if (attn && !(attn[2] === 'out' && attn[3] === 'bias')) {
      const heads = attn[1] === 'text_model' ? config.textHeads : config.visionHeads;
      const width = t.shape[0];
      const d = width / heads;
      if (attn[3] === 'bias') {
        for (let h = 0; h < heads; h++) out.set(`${name}#${h}`, { shape: [d], data: t.data.slice(h * d, (h + 1) * d) });
        continue;
      }
      const full = transposeMatrix(t.data, t.shape[0], t.shape[1]).data; // [in, out]
      for (let h = 0; h < heads; h++) {
        if (attn[2] === 'out') {
          out.set(`${name}#${h}`, { shape: [d, width], data: full.slice(h * d * width, (h + 1) * d * width) });
        } else {
          out.set(`${name}#${h}`, { shape: [width, d], data: columns(full, width, width, h * d, d) });
        }
      }
    } else if (name.endsWith('patch_embedding.weight')) {
      const [o, i, h, w] = t.shape;
      out.set(name, { shape: [h, w, i, o], data: oihwToHwio(t) });
    } else if (t.shape.length === 2 && !name.includes('embedding')) {
      out.set(name, transposeMatrix(t.data, t.shape[0], t.shape[1]));
    } else {
      out.set(name, t);
    }
  }
  return out;
}

function concatData(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
