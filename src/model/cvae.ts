/**
 * The CLIP-conditioned variational autoencoder of the seed paper, built with tf.layers from a preset.
 *
 * Encoder  [image (HxWx3 in [0,1]), embedding] -> [mu, logvar]:
 *   Conv2D (stride 2, same) -> LeakyReLU -> BatchNorm, per preset conv; Flatten; concat(embedding);
 *   Dense -> LeakyReLU -> BatchNorm, per preset dense; two linear Dense heads (mu, logvar).
 * Decoder  [z, embedding] -> image:
 *   linear Dense(condDim) on the embedding, concat([z, cond]); Dense -> LeakyReLU -> BatchNorm; Reshape;
 *   Conv2DTranspose (same) -> LeakyReLU -> BatchNorm, per preset layer; Conv2D(3, sigmoid).
 * Every Dense/Conv has a bias and a He-normal kernel. `forward` samples z = mu + exp(logvar / 2) * eps and
 * applies dropout to z when training.
 */
import * as tf from '@tensorflow/tfjs';
import type { ConvSpec, Preset } from './presets.js';

/** Options of `buildCvae`. */
export interface BuildOptions {
  /** Seed of the kernel initialisers: the same seed builds the same weights. Random when absent. */
  seed?: number;
}

/** Output of one forward pass. */
export type ForwardResult = {
  /** Reconstruction, NHWC in [0, 1]. */
  xHat: tf.Tensor4D;
  mu: tf.Tensor2D;
  logvar: tf.Tensor2D;
};

/** Options of `Cvae.forward`. */
export interface ForwardOptions {
  /** Training mode: BatchNorm uses (and updates) batch statistics, dropout on z is active. */
  training: boolean;
  /** Seed of eps (and of the dropout mask, seed + 1): the same seed gives the same pass. Random when absent. */
  seed?: number;
}

/** An encoder/decoder pair and the preset that describes it. */
export class Cvae {
  /**
   * Wraps two models built by `buildCvae` or loaded from a checkpoint.
   * @param preset the architecture the models follow
   * @param encoder [image, embedding] -> [mu, logvar]
   * @param decoder [z, embedding] -> image
   */
  constructor(
    readonly preset: Preset,
    readonly encoder: tf.LayersModel,
    readonly decoder: tf.LayersModel,
  ) {}

  /** Size of z. */
  get latentDim(): number {
    return this.preset.latentDim;
  }

  /** Image side in pixels. */
  get resolution(): number {
    return this.preset.resolution;
  }

  /** Number of trainable scalars (kernels, biases, BatchNorm gamma and beta). */
  trainableParams(): number {
    return this.trainableWeights().reduce((n, v) => n + v.size, 0);
  }

  /** Trainable variables, encoder first, in a stable order (optimizer state is stored in this order). */
  trainableWeights(): tf.Variable[] {
    return [...this.encoder.trainableWeights, ...this.decoder.trainableWeights].map((w) => w.read() as tf.Variable);
  }

  /**
   * Encodes, samples z with the reparameterisation trick, and decodes. The caller owns the returned tensors.
   * @param x images NHWC in [0, 1], `resolution` x `resolution` x 3
   * @param emb CLIP embeddings [N, embeddingDim]
   */
  forward(x: tf.Tensor4D, emb: tf.Tensor2D, opts: ForwardOptions): ForwardResult {
    const { training, seed } = opts;
    return tf.tidy(() => {
      const [mu, logvar] = this.encoder.apply([x, emb], { training }) as tf.Tensor2D[];
      const eps = tf.randomNormal(mu.shape, 0, 1, 'float32', seed);
      let z: tf.Tensor2D = tf.add(mu, tf.mul(tf.exp(tf.div(logvar, 2)), eps));
      if (training && this.preset.dropout > 0) {
        z = tf.dropout(z, this.preset.dropout, undefined, seed === undefined ? undefined : seed + 1) as tf.Tensor2D;
      }
      const xHat = this.decoder.apply([z, emb], { training }) as tf.Tensor4D;
      return { xHat, mu, logvar };
    });
  }

  /**
   * Decodes latent vectors in inference mode (BatchNorm moving statistics, no dropout).
   * @param z [N, latentDim]
   * @param emb [N, embeddingDim]
   * @returns images NHWC in [0, 1]
   */
  decode(z: tf.Tensor2D, emb: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => this.decoder.apply([z, emb], { training: false }) as tf.Tensor4D);
  }

  /** Frees the weights of both models. */
  dispose(): void {
    this.encoder.dispose();
    this.decoder.dispose();
  }
}

/** Builds the encoder and decoder described by a preset, with fresh He-normal weights. */
export function buildCvae(preset: Preset, opts: BuildOptions = {}): Cvae {
  let layerIndex = 0;
  /** A distinct, reproducible initialiser per layer. */
  const kernelInit = () => {
    layerIndex += 1;
    return tf.initializers.heNormal(opts.seed === undefined ? {} : { seed: opts.seed * 1000 + layerIndex });
  };
  const bn = (name: string) =>
    tf.layers.batchNormalization({ momentum: preset.batchNorm.momentum, epsilon: preset.batchNorm.epsilon, name });
  const lrelu = (name: string) => tf.layers.leakyReLU({ alpha: preset.leakySlope, name });

  type Layer = Pick<ReturnType<typeof tf.layers.dense>, 'apply'>;
  /** Layer, then LeakyReLU, then BatchNorm: the block of every hidden layer of the seed model. */
  const block = (x: tf.SymbolicTensor, layer: Layer, name: string): tf.SymbolicTensor => {
    const y = lrelu(`${name}_lrelu`).apply(layer.apply(x)) as tf.SymbolicTensor;
    return bn(`${name}_bn`).apply(y) as tf.SymbolicTensor;
  };
  const convOptions = (c: ConvSpec, name: string) => ({
    filters: c.filters,
    kernelSize: c.kernel,
    strides: c.stride,
    padding: 'same' as const,
    useBias: true,
    kernelInitializer: kernelInit(),
    name,
  });
  const dense = (units: number, name: string) =>
    tf.layers.dense({ units, useBias: true, kernelInitializer: kernelInit(), name });

  // Encoder
  const image = tf.input({ shape: [preset.resolution, preset.resolution, 3], name: 'image' });
  const encEmb = tf.input({ shape: [preset.embeddingDim], name: 'embedding' });
  let h: tf.SymbolicTensor = image;
  preset.encoder.convs.forEach((c, i) => {
    h = block(h, tf.layers.conv2d(convOptions(c, `enc_conv${i + 1}`)), `enc_conv${i + 1}`);
  });
  h = tf.layers.flatten({ name: 'enc_flatten' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.concatenate({ name: 'enc_concat' }).apply([h, encEmb]) as tf.SymbolicTensor;
  preset.encoder.dense.forEach((units, i) => {
    h = block(h, dense(units, `enc_dense${i + 1}`), `enc_dense${i + 1}`);
  });
  const mu = dense(preset.latentDim, 'mu').apply(h) as tf.SymbolicTensor;
  const logvar = dense(preset.latentDim, 'logvar').apply(h) as tf.SymbolicTensor;
  const encoder = tf.model({ inputs: [image, encEmb], outputs: [mu, logvar], name: 'encoder' });

  // Decoder
  const z = tf.input({ shape: [preset.latentDim], name: 'z' });
  const decEmb = tf.input({ shape: [preset.embeddingDim], name: 'embedding' });
  const cond = dense(preset.condDim, 'condition').apply(decEmb) as tf.SymbolicTensor;
  let d = tf.layers.concatenate({ name: 'dec_concat' }).apply([z, cond]) as tf.SymbolicTensor;
  d = block(d, dense(preset.decoder.dense, 'dec_dense'), 'dec_dense');
  d = tf.layers.reshape({ targetShape: preset.decoder.reshape, name: 'dec_reshape' }).apply(d) as tf.SymbolicTensor;
  preset.decoder.convTranspose.forEach((c, i) => {
    d = block(d, tf.layers.conv2dTranspose(convOptions(c, `dec_convT${i + 1}`)), `dec_convT${i + 1}`);
  });
  const out = tf.layers
    .conv2d({
      filters: 3,
      kernelSize: preset.decoder.outputKernel,
      strides: 1,
      padding: 'same',
      activation: 'sigmoid',
      useBias: true,
      kernelInitializer: kernelInit(),
      name: 'dec_out',
    })
    .apply(d) as tf.SymbolicTensor;
  const decoder = tf.model({ inputs: [z, decEmb], outputs: out, name: 'decoder' });

  return new Cvae(preset, encoder, decoder);
}
