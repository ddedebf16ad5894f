/**
 * Export of a CVAE decoder to an ONNX graph, built from the trained weights in TypeScript.
 *
 * Graph (NCHW inside, like ONNX convolutions):
 *   cond = Gemm(embedding, Wc, bc); h = Concat(z, cond)
 *   d = LeakyReLU(Gemm(h, Wd, bd)) * a0 + b0          Dense columns permuted so the reshape gives NCHW directly
 *   x = Reshape(d, [N, C, H, W])
 *   per Conv2DTranspose: x = LeakyReLU(ConvTranspose(x) + bias)   TensorFlow 'same' pads / output padding
 *   image = Sigmoid(Conv(x) + bias)                               'same' pads
 *   uint8 output: Cast(Clip(Round(image * 255))) transposed to NHWC; float output: image transposed to NHWC.
 *
 * BatchNorm in the decoder follows the LeakyReLU (layer -> LeakyReLU -> BatchNorm), so it cannot fold into
 * the layer before it. With `batchNorm: 'fold'` (default) each conv block's BatchNorm folds into the NEXT
 * layer: its scale multiplies that layer's kernel per input channel, and its shift, pushed through that
 * layer, becomes a constant bias map (zero padding makes it vary near borders and across the output phases of
 * a strided transpose), so it stays exact. With `batchNorm: 'explicit'` each BatchNorm is an ONNX
 * BatchNormalization node. The Dense block's BatchNorm is per feature (per pixel and channel after the
 * reshape), so it stays a Mul + Add on the [N, 16384] vector in both modes.
 */
import { childLogger } from '../../log.js';
import type { Cvae } from '../cvae.js';
import { readDecoderWeights, type ConvWeights, type DecoderWeights } from './decoder-weights.js';
import {
  batchNormAffine,
  constantInputResponse,
  nhwcToNchwColumns,
  onnxKernel,
  permuteColumns,
  permuteVector,
  sameConvPads,
  sameConvTransposePads,
  type Affine,
} from './lowering.js';
import { OnnxGraphBuilder } from './proto.js';

const log = childLogger('onnx-export');

/** Version of the export format: bump it when the graph changes, so stored exports are regenerated. */
export const EXPORT_FORMAT_VERSION = 1;
/** ONNX opset of the exported graph. */
export const EXPORT_OPSET = 13;

/** Graph input and output names. */
export const DECODER_INPUTS = { z: 'z', embedding: 'embedding' } as const;
export const DECODER_OUTPUT = 'image';

/** Options of the export. */
export interface DecoderExportOptions {
  /** `uint8` (default): RGB bytes NHWC, rounded like the TensorFlow.js sampler. `float`: NHWC in [0, 1]. */
  output?: 'uint8' | 'float';
  /** How conv-block BatchNorms are exported (see the module comment); default `fold`. */
  batchNorm?: 'fold' | 'explicit';
  /** String metadata stored in the model (`metadata_props`). */
  metadata?: Record<string, string>;
}

const f32 = (v: ArrayLike<number>) => Float32Array.from(v);

/**
 * Builds the ONNX model of a decoder from its weights.
 * @returns the encoded ModelProto (an `.onnx` file's bytes); inputs `z` [N, latentDim] and
 *   `embedding` [N, embeddingDim] (float32), output `image` [N, H, W, 3]
 */
export function buildDecoderOnnx(w: DecoderWeights, opts: DecoderExportOptions = {}): Uint8Array {
  const output = opts.output ?? 'uint8';
  const bnMode = opts.batchNorm ?? 'fold';
  const g = new OnnxGraphBuilder();
  const z = g.input(DECODER_INPUTS.z, 'float', ['N', w.latentDim]);
  const emb = g.input(DECODER_INPUTS.embedding, 'float', ['N', w.embeddingDim]);
  const alpha = { alpha: { float: w.leakySlope } };

  // Condition and dense block.
  const cond = g.node('Gemm', [emb, g.floats('cond_W', w.condition.kernel, [w.condition.inDim, w.condition.outDim]), g.floats('cond_b', w.condition.bias, [w.condition.outDim])], {}, 'cond');
  const h = g.node('Concat', [z, cond], { axis: { int: 1 } }, 'concat');
  const [rh, rw, rc] = w.reshape;
  const perm = nhwcToNchwColumns(rh, rw, rc);
  const dW = permuteColumns(w.dense.kernel, w.dense.inDim, perm);
  let x = g.node('Gemm', [h, g.floats('dense_W', dW, [w.dense.inDim, w.dense.outDim]), g.floats('dense_b', permuteVector(w.dense.bias, perm), [w.dense.outDim])], {}, 'dense');
  x = g.node('LeakyRelu', [x], alpha, 'dense_act');
  const dBn = batchNormAffine(w.denseBn);
  x = g.node('Mul', [x, g.floats('dense_bn_scale', permuteVector(dBn.scale, perm), [w.dense.outDim])], {}, 'dense_bn_mul');
  x = g.node('Add', [x, g.floats('dense_bn_shift', permuteVector(dBn.shift, perm), [w.dense.outDim])], {}, 'dense_bn');
  x = g.node('Reshape', [x, g.int64s('reshape_shape', [-1, rc, rh, rw])], {}, 'reshaped');

  // Conv blocks: `pending` is the BatchNorm of the previous block still to be applied (fold mode).
  let pending: Affine | null = null;
  let size = rh;
  const convLayer = (name: string, conv: ConvWeights, transpose: boolean): string => {
    const k = conv.kernelSize;
    const kernelDims = transpose ? [conv.inChannels, conv.outChannels, k, k] : [conv.outChannels, conv.inChannels, k, k];
    const W = g.floats(`${name}_W`, onnxKernel(conv, transpose, pending?.scale), kernelDims);
    const attrs: Record<string, { ints: number[] }> = { kernel_shape: { ints: [k, k] }, strides: { ints: [conv.stride, conv.stride] } };
    let outSize: number;
    if (transpose) {
      const p = sameConvTransposePads(k, conv.stride);
      attrs.pads = { ints: [p.before, p.before, p.after, p.after] };
      if (p.outputPadding) attrs.output_padding = { ints: [p.outputPadding, p.outputPadding] };
      outSize = size * conv.stride;
    } else {
      const p = sameConvPads(k, conv.stride, size);
      attrs.pads = { ints: [p.before, p.before, p.after, p.after] };
      outSize = p.outSize;
    }
    let y: string;
    if (pending) {
      // Shift pushed through the layer (bias included): a constant [C, H, W] map added to the output.
      const map = constantInputResponse(conv, transpose, pending.shift, size);
      y = g.node(transpose ? 'ConvTranspose' : 'Conv', [x, W], attrs, name);
      y = g.node('Add', [y, g.floats(`${name}_bias_map`, map, [conv.outChannels, outSize, outSize])], {}, `${name}_biased`);
    } else {
      y = g.node(transpose ? 'ConvTranspose' : 'Conv', [x, W, g.floats(`${name}_b`, conv.bias, [conv.outChannels])], attrs, name);
    }
    size = outSize;
    pending = null;
    return y;
  };

  w.convTranspose.forEach(({ conv, bn }, i) => {
    const name = `convT${i + 1}`;
    x = g.node('LeakyRelu', [convLayer(name, conv, true)], alpha, `${name}_act`);
    if (bnMode === 'fold') {
      pending = batchNormAffine(bn);
    } else {
      const c = conv.outChannels;
      x = g.node(
        'BatchNormalization',
        [x, g.floats(`${name}_bn_gamma`, bn.gamma, [c]), g.floats(`${name}_bn_beta`, bn.beta, [c]), g.floats(`${name}_bn_mean`, bn.movingMean, [c]), g.floats(`${name}_bn_var`, bn.movingVariance, [c])],
        { epsilon: { float: bn.epsilon } },
        `${name}_bn`,
      );
    }
  });
  let img = g.node('Sigmoid', [convLayer('out', w.output, false)], {}, 'sigmoid');
  if (size !== w.resolution) throw new Error(`the exported decoder makes ${size} px images, the model ${w.resolution} px`);

  if (output === 'uint8') {
    img = g.node('Mul', [img, g.floats('scale255', f32([255]), [])], {}, 'scaled');
    img = g.node('Round', [img], {}, 'rounded');
    img = g.node('Clip', [img, g.floats('zero', f32([0]), []), g.floats('max255', f32([255]), [])], {}, 'clipped');
    img = g.node('Cast', [img], { to: { int: 2 /* UINT8 */ } }, 'bytes');
  }
  const out = g.node('Transpose', [img], { perm: { ints: [0, 2, 3, 1] } }, DECODER_OUTPUT);
  g.output(out, output === 'uint8' ? 'uint8' : 'float', ['N', w.resolution, w.resolution, 3]);

  const bytes = g.encode({
    opset: EXPORT_OPSET,
    graphName: 'cvae_decoder',
    producer: 'clip-cvae-bot',
    docString: 'CVAE decoder: (z, CLIP embedding) -> RGB image NHWC',
    metadata: {
      exportFormat: String(EXPORT_FORMAT_VERSION),
      output,
      batchNorm: bnMode,
      latentDim: String(w.latentDim),
      embeddingDim: String(w.embeddingDim),
      resolution: String(w.resolution),
      ...opts.metadata,
    },
  });
  log.debug({ nodes: g.nodeCount, bytes: bytes.byteLength, output, batchNorm: bnMode }, 'decoder exported to ONNX');
  return bytes;
}

/** Exports the decoder of a model (its current weights, inference mode) to ONNX. */
export function exportDecoderOnnx(cvae: Cvae, opts: DecoderExportOptions = {}): Uint8Array {
  return buildDecoderOnnx(readDecoderWeights(cvae.decoder), opts);
}
