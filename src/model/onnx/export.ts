/**
 * Export of a CVAE decoder to an ONNX graph, built from the trained weights in TypeScript, exact to float
 * rounding (parity with TensorFlow.js is tested at 1e-4; it is about 2e-7 in practice).
 *
 * Graph (NCHW inside, like ONNX convolutions):
 *   cond = Gemm(embedding, Wc, bc); h = Concat(z, cond)
 *   d = LeakyReLU(Gemm(h, Wd, bd)) * a0 + b0      Dense columns permuted so the reshape gives NCHW directly;
 *                                                 the Dense block's BatchNorm is per feature: a Mul + Add
 *   x = Reshape(d, [N, C, H, W])
 *   per Conv2DTranspose block (TensorFlow 'same': output = input * stride), default `convTranspose: 'phases'`:
 *     stride 2: one Conv per output phase with only the taps that phase uses (no multiplications by zero),
 *     each fused with its LeakyReLU by ONNX Runtime, Concat, DepthToSpace; stride 1: a Conv with the flipped
 *     kernel; then the block's BatchNorm (a BatchNormalization node: one cheap pass).
 *   the last block stays as phases and the output Conv2D runs on the phase grid (phaseSpaceConv), its
 *   BatchNorm folded in (scale into the kernel, shift as a bias map), then DepthToSpace on the 3 channels.
 *   image = Sigmoid(...); uint8 output: Cast(Clip(Round(image * 255))) transposed to NHWC (float: NHWC).
 *
 * BatchNorm in the decoder follows the LeakyReLU (layer -> LeakyReLU -> BatchNorm), so it cannot fold into
 * the layer before it. Folding it into the NEXT layer is exact: its scale multiplies that layer's kernel per
 * input channel, and its shift, pushed through that layer, is a constant bias map (zero padding makes it vary
 * near borders and across the output phases of a strided transpose). But an Add of a map between a Conv and
 * its LeakyReLU stops ONNX Runtime from fusing them, and a standalone LeakyReLU costs more than a
 * BatchNormalization pass, so the default (`batchNorm: 'mixed'`) keeps BatchNormalization nodes between
 * blocks and folds only the last one (into the output conv). `fold`, `explicit` and `convTranspose:
 * 'native' | 'subpixel'` remain as measured alternatives (bench/decode.ts; all exact).
 * Measured on the 128 px decoder, batch 4, one thread, 2-core AMD EPYC (Zen 4) under load: native
 * ConvTranspose ~285 ms CPU, sub-pixel (one Conv with all phases, zero taps included) ~257 ms, exact phases
 * ~205 ms, phases with the output conv on the phase grid ~185 ms (about 100 GFLOP/s: compute-bound).
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
  sameConvAttributes,
  phaseConvs,
  phaseSpaceConv,
  subPixelConv,
  type Affine,
} from './lowering.js';
import { OnnxGraphBuilder } from './proto.js';

const log = childLogger('onnx-export');

/** Version of the export format: bump it when the graph changes, so stored exports are regenerated. */
export const EXPORT_FORMAT_VERSION = 2;
/** ONNX opset of the exported graph. */
export const EXPORT_OPSET = 13;

/** Graph input and output names. */
export const DECODER_INPUTS = { z: 'z', embedding: 'embedding' } as const;
export const DECODER_OUTPUT = 'image';

/** Options of the export. */
export interface DecoderExportOptions {
  /** `uint8` (default): RGB bytes NHWC, rounded like the TensorFlow.js sampler. `float`: NHWC in [0, 1]. */
  output?: 'uint8' | 'float';
  /**
   * How conv-block BatchNorms are exported (see the module comment): `fold` into the next layer, `explicit`
   * BatchNormalization nodes, or `mixed` (default): nodes between conv blocks, the last one folded into the
   * output conv.
   */
  batchNorm?: 'fold' | 'explicit' | 'mixed';
  /**
   * `phases` (default): one exact Conv per output phase + DepthToSpace. `native`: ONNX ConvTranspose.
   * `subpixel`: each Conv2DTranspose as one stride-1 Conv whose channels are all output phases (zero taps
   * included), then DepthToSpace. Stride-1 layers are a plain Conv with the flipped kernel except in `native`.
   */
  convTranspose?: 'native' | 'subpixel' | 'phases';
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
  const bnMode = opts.batchNorm ?? 'mixed';
  const convMode = opts.convTranspose ?? 'phases';
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
  const subPixelLayer = (name: string, conv: ConvWeights): string => {
    const sp = subPixelConv(conv, pending?.scale);
    const s = conv.stride;
    const W = g.floats(`${name}_W`, sp.weights, [s * s * conv.outChannels, conv.inChannels, sp.kernel, sp.kernel]);
    const attrs = { kernel_shape: { ints: [sp.kernel, sp.kernel] }, pads: { ints: [sp.padBefore, sp.padBefore, sp.padAfter, sp.padAfter] } };
    const toSpace = (v: string) => (s > 1 ? g.node('DepthToSpace', [v], { blocksize: { int: s }, mode: { string: 'DCR' } }, `${name}_d2s`) : v);
    let y: string;
    if (pending) {
      const map = constantInputResponse(conv, true, pending.shift, size);
      y = toSpace(g.node('Conv', [x, W], attrs, name));
      y = g.node('Add', [y, g.floats(`${name}_bias_map`, map, [conv.outChannels, size * s, size * s])], {}, `${name}_biased`);
      y = g.node('LeakyRelu', [y], alpha, `${name}_act`);
    } else {
      y = g.node('Conv', [x, W, g.floats(`${name}_b`, sp.bias, [s * s * conv.outChannels])], attrs, name);
      y = toSpace(g.node('LeakyRelu', [y], alpha, `${name}_act`));
    }
    size *= s;
    pending = null;
    return y;
  };
  /** Stride of the phases `x` holds instead of an image (the last block's output, not yet interleaved), or 1. */
  let xPhases = 1;
  const phaseLayer = (name: string, conv: ConvWeights, keepPhases = false): string | null => {
    const s = conv.stride;
    const phases = s > 1 && !pending ? phaseConvs(conv) : null;
    if (!phases) return null;
    const bias = g.floats(`${name}_b`, conv.bias, [conv.outChannels]);
    const outs = phases.map((ph, i) => {
      const W = g.floats(`${name}_p${i}_W`, ph.weights, [conv.outChannels, conv.inChannels, ph.kernel[0], ph.kernel[1]]);
      const y = g.node('Conv', [x, W, bias], { kernel_shape: { ints: ph.kernel }, pads: { ints: ph.pads } }, `${name}_p${i}`);
      return g.node('LeakyRelu', [y], alpha, `${name}_p${i}_act`);
    });
    const cat = g.node('Concat', outs, { axis: { int: 1 } }, `${name}_phases`);
    size *= s;
    if (keepPhases) {
      xPhases = s;
      return cat;
    }
    return g.node('DepthToSpace', [cat], { blocksize: { int: s }, mode: { string: 'DCR' } }, `${name}_d2s`);
  };
  const convLayer = (name: string, conv: ConvWeights, transpose: boolean): string => {
    const k = conv.kernelSize;
    const kernelDims = transpose ? [conv.inChannels, conv.outChannels, k, k] : [conv.outChannels, conv.inChannels, k, k];
    const W = g.floats(`${name}_W`, onnxKernel(conv, transpose, pending?.scale), kernelDims);
    const { attrs, outSize } = sameConvAttributes(conv, transpose, size);
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

  /** The output conv on the phases of the last block; the last BatchNorm folded in (scale in W, shift as a bias map). */
  function phaseSpaceOutput(): string {
    const conv = w.output;
    const s = xPhases;
    const sp = phaseSpaceConv(conv, s, pending?.scale);
    const W = g.floats('out_W', sp.weights, [s * s * conv.outChannels, s * s * conv.inChannels, sp.kernel, sp.kernel]);
    const attrs = { kernel_shape: { ints: [sp.kernel, sp.kernel] }, pads: { ints: [sp.padBefore, sp.padBefore, sp.padAfter, sp.padAfter] } };
    const toSpace = (v: string) => g.node('DepthToSpace', [v], { blocksize: { int: s }, mode: { string: 'DCR' } }, 'out_d2s');
    let y: string;
    if (pending) {
      const map = constantInputResponse(conv, false, pending.shift, size);
      y = g.node('Add', [toSpace(g.node('Conv', [x, W], attrs, 'out')), g.floats('out_bias_map', map, [conv.outChannels, size, size])], {}, 'out_biased');
    } else {
      y = toSpace(g.node('Conv', [x, W, g.floats('out_b', sp.bias, [s * s * conv.outChannels])], attrs, 'out'));
    }
    pending = null;
    return y;
  }
  const last = w.convTranspose.length - 1;
  w.convTranspose.forEach(({ conv, bn }, i) => {
    const name = `convT${i + 1}`;
    // The last block may stay as phases: the output conv then runs on the phase grid (phaseSpaceConv).
    const keepPhases = i === last && bnMode !== 'explicit';
    x =
      (convMode === 'phases' ? phaseLayer(name, conv, keepPhases) : null) ??
      (convMode === 'native' ? g.node('LeakyRelu', [convLayer(name, conv, true)], alpha, `${name}_act`) : subPixelLayer(name, conv));
    if (bnMode === 'fold' || (bnMode === 'mixed' && i === last)) {
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
  let img = g.node('Sigmoid', [xPhases > 1 ? phaseSpaceOutput() : convLayer('out', w.output, false)], {}, 'sigmoid');
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
      convTranspose: convMode,
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
