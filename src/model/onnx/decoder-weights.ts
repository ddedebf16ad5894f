/**
 * The trained weights of a CVAE decoder (the tf.layers model of cvae.ts) as plain arrays, with the layer
 * settings the export needs read from the layers themselves (kernel sizes, strides, LeakyReLU slope,
 * BatchNorm epsilon), so the export follows the model, not a preset that may have changed since.
 *
 * Layouts are TensorFlow's: Dense kernel [in, out]; Conv2D kernel [kh, kw, in, out];
 * Conv2DTranspose kernel [kh, kw, out, in]; activations NHWC.
 */
import type * as tf from '@tensorflow/tfjs';

/** A Dense layer: y = x W + b. */
export interface DenseWeights {
  /** [inDim, outDim], row-major. */
  kernel: Float32Array;
  bias: Float32Array;
  inDim: number;
  outDim: number;
}

/** Inference-mode BatchNormalization over the last axis. */
export interface BatchNormWeights {
  gamma: Float32Array;
  beta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  epsilon: number;
}

/** A Conv2D or Conv2DTranspose layer with 'same' padding and square kernel and stride. */
export interface ConvWeights {
  /** TensorFlow layout (see the module comment). */
  kernel: Float32Array;
  bias: Float32Array;
  kernelSize: number;
  stride: number;
  inChannels: number;
  outChannels: number;
}

/** Everything the ONNX export needs from a decoder. */
export interface DecoderWeights {
  latentDim: number;
  embeddingDim: number;
  /** Linear condition layer on the embedding. */
  condition: DenseWeights;
  /** Dense on concat([z, condition]), followed by LeakyReLU and `denseBn`. */
  dense: DenseWeights;
  denseBn: BatchNormWeights;
  /** [height, width, channels] of the NHWC reshape after the dense block. */
  reshape: [number, number, number];
  /** Conv2DTranspose layers, each followed by LeakyReLU and its BatchNorm. */
  convTranspose: { conv: ConvWeights; bn: BatchNormWeights }[];
  /** Final Conv2D with a sigmoid. */
  output: ConvWeights;
  /** Negative slope of every LeakyReLU. */
  leakySlope: number;
  /** Output image side in pixels. */
  resolution: number;
}

type Config = Record<string, unknown>;

function layer(model: tf.LayersModel, name: string, className: string): tf.layers.Layer {
  let l: tf.layers.Layer;
  try {
    l = model.getLayer(name);
  } catch {
    throw new Error(`the decoder has no layer ${name}; it was not built by cvae.ts`);
  }
  if (l.getClassName() !== className) throw new Error(`decoder layer ${name} is a ${l.getClassName()}, expected ${className}`);
  return l;
}

function weights(l: tf.layers.Layer, count: number): Float32Array[] {
  const ws = l.getWeights();
  if (ws.length !== count) throw new Error(`decoder layer ${l.name} has ${ws.length} weights, expected ${count}`);
  return ws.map((w) => {
    if (w.dtype !== 'float32') throw new Error(`decoder layer ${l.name} has ${w.dtype} weights`);
    return Float32Array.from(w.dataSync() as Float32Array);
  });
}

function denseOf(l: tf.layers.Layer): DenseWeights {
  const cfg = l.getConfig() as Config;
  if (cfg.activation !== 'linear') throw new Error(`decoder layer ${l.name} has activation ${String(cfg.activation)}, expected linear`);
  const [kernel, bias] = weights(l, 2);
  const shape = l.getWeights()[0].shape;
  return { kernel, bias, inDim: shape[0] as number, outDim: shape[1] as number };
}

function bnOf(l: tf.layers.Layer): BatchNormWeights {
  const cfg = l.getConfig() as Config;
  if (cfg.center !== true || cfg.scale !== true) throw new Error(`BatchNorm ${l.name} must have center and scale`);
  if (cfg.axis !== -1 && cfg.axis !== 3 && cfg.axis !== 1) throw new Error(`BatchNorm ${l.name} normalises axis ${String(cfg.axis)}`);
  const [gamma, beta, movingMean, movingVariance] = weights(l, 4);
  return { gamma, beta, movingMean, movingVariance, epsilon: Number(cfg.epsilon) };
}

function square(v: unknown, what: string, name: string): number {
  const arr = Array.isArray(v) ? (v as number[]) : [v as number, v as number];
  if (arr.length !== 2 || arr[0] !== arr[1]) throw new Error(`decoder layer ${name} has a non-square ${what} ${JSON.stringify(v)}`);
  return arr[0];
}

function convOf(l: tf.layers.Layer, activation: string, transpose: boolean): ConvWeights {
  const cfg = l.getConfig() as Config;
  if (cfg.padding !== 'same') throw new Error(`decoder layer ${l.name} has padding ${String(cfg.padding)}, expected same`);
  if (cfg.dataFormat !== 'channelsLast') throw new Error(`decoder layer ${l.name} is not channels-last`);
  if (square(cfg.dilationRate ?? 1, 'dilation', l.name) !== 1) throw new Error(`decoder layer ${l.name} is dilated`);
  if (cfg.activation !== activation) throw new Error(`decoder layer ${l.name} has activation ${String(cfg.activation)}, expected ${activation}`);
  const [kernel, bias] = weights(l, 2);
  const shape = l.getWeights()[0].shape; // [kh, kw, in, out] or, transposed, [kh, kw, out, in]
  return {
    kernel,
    bias,
    kernelSize: square(cfg.kernelSize, 'kernel', l.name),
    stride: square(cfg.strides, 'stride', l.name),
    inChannels: (transpose ? shape[3] : shape[2]) as number,
    outChannels: (transpose ? shape[2] : shape[3]) as number,
  };
}

function slopeOf(l: tf.layers.Layer): number {
  return Number((l.getConfig() as Config).alpha);
}

/**
 * Reads the weights and settings of a decoder built by `buildCvae` (or loaded from a checkpoint).
 * @throws Error when the decoder does not have the structure of cvae.ts
 */
export function readDecoderWeights(decoder: tf.LayersModel): DecoderWeights {
  const [zInput, embInput] = decoder.inputs;
  const latentDim = zInput.shape[1] as number;
  const embeddingDim = embInput.shape[1] as number;
  const condition = denseOf(layer(decoder, 'condition', 'Dense'));
  const dense = denseOf(layer(decoder, 'dec_dense', 'Dense'));
  const leakySlope = slopeOf(layer(decoder, 'dec_dense_lrelu', 'LeakyReLU'));
  const denseBn = bnOf(layer(decoder, 'dec_dense_bn', 'BatchNormalization'));
  const reshape = (layer(decoder, 'dec_reshape', 'Reshape').getConfig() as Config).targetShape as [number, number, number];
  const convTranspose: DecoderWeights['convTranspose'] = [];
  for (let i = 1; ; i++) {
    const name = `dec_convT${i}`;
    if (!decoder.layers.some((l) => l.name === name)) break;
    const conv = convOf(layer(decoder, name, 'Conv2DTranspose'), 'linear', true);
    const slope = slopeOf(layer(decoder, `${name}_lrelu`, 'LeakyReLU'));
    if (slope !== leakySlope) throw new Error(`decoder LeakyReLU slopes differ (${slope} vs ${leakySlope})`);
    convTranspose.push({ conv, bn: bnOf(layer(decoder, `${name}_bn`, 'BatchNormalization')) });
  }
  const output = convOf(layer(decoder, 'dec_out', 'Conv2D'), 'sigmoid', false);
  if (output.stride !== 1) throw new Error('the decoder output conv must have stride 1');
  const resolution = decoder.outputs[0].shape[1] as number;
  if (dense.inDim !== latentDim + condition.outDim) throw new Error('the decoder dense layer does not take concat([z, condition])');
  if (reshape[0] * reshape[1] * reshape[2] !== dense.outDim) throw new Error('the decoder reshape does not fit its dense layer');
  return { latentDim, embeddingDim, condition, dense, denseBn, reshape, convTranspose, output, leakySlope, resolution };
}
