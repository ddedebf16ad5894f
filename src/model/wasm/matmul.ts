/**
 * BatchMatMul and _FusedMatMul for the wasm backend when an operand is transposed: the stock kernels run
 * XNNPACK's fast path only for plain A·B and fall back to scalar loops (30-100x slower) otherwise, which is
 * every matrix product of a Dense layer's gradient. Here transposed operands are transposed explicitly
 * (the wasm Transpose kernel) and the stock kernel then multiplies plain matrices.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { free, transpose, WASM } from './kernel-utils.js';

type Args = { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap };

/** Swaps the last two axes. */
function transposeLast2(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return transpose(backend, x, perm);
}

/**
 * Wraps a stock matmul kernel: operands with a transpose flag are transposed first and the flag cleared.
 * @param kernelName 'BatchMatMul' or '_FusedMatMul'
 * @param stock the package's kernel config (its setup runs with this one)
 */
export function makeMatMulConfig(kernelName: 'BatchMatMul' | '_FusedMatMul', stock: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: Args) => {
    const { inputs, backend, attrs } = args;
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const a = inputs.a as tf.TensorInfo;
    const b = inputs.b as tf.TensorInfo;
    if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') {
      return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const a2 = transposeA ? transposeLast2(backend, a) : a;
    const b2 = transposeB ? transposeLast2(backend, b) : b;
    try {
      return stock.kernelFunc({
        inputs: { ...inputs, a: a2, b: b2 },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      } as unknown as Parameters<tf.KernelFunc>[0]);
    } finally {
      if (a2 !== a) free(backend, a2);
      if (b2 !== b) free(backend, b2);
    }
  };
  return { kernelName, backendName: WASM, kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: stock.setupFunc };
}
