/**
 * Sub-pixel ("phase") decomposition of a strided transposed convolution along one axis.
 *
 * The input gradient of a convolution with stride s, dx[p] = Σ_{a} dy[(p + pad − a) / s] · w[a] (terms with a
 * non-integer or out-of-range index left out), splits by the phase r = (p + pad) mod s into s stride-1
 * correlations: for p = s·u + r − pad, dx[p] = Σ_t dy[u − t] · w[r + s·t]. Each phase is an ordinary stride-1
 * convolution of dy with the taps w[r], w[r + s], ... in reverse order, so XNNPACK's fast convolution
 * can run it without the (s² − 1)/s² wasted multiply-adds of convolving a zero-dilated dy.
 */

/** One phase along one axis. */
export interface Phase {
  /** Phase r in [0, stride). */
  r: number;
  /** Taps of the filter in this phase: r, r + s, ... (< kernel size); the phase filter reverses them. */
  taps: number;
  /** First phase index u: dx position s·u + r − pad. */
  uMin: number;
  /** Number of dx positions in this phase. */
  count: number;
  /** Padding of dy before / after for the stride-1 convolution (never negative; see crop*). */
  padBefore: number;
  padAfter: number;
  /** dy positions to drop before / after (when the padding would be negative). */
  cropBefore: number;
  cropAfter: number;
}

/**
 * Plans the phases of one axis.
 * @param inSize dx size (forward input)
 * @param outSize dy size (forward output)
 * @param kernel filter size
 * @param stride forward stride
 * @param pad forward padding before (top or left)
 * @returns one entry per phase r that has dx positions; `taps` is 0 where the phase gets no filter tap (its
 *   positions are zero)
 */
export function planPhases(inSize: number, outSize: number, kernel: number, stride: number, pad: number): Phase[] {
  const phases: Phase[] = [];
  for (let r = 0; r < stride; r++) {
    const uMin = Math.ceil((pad - r) / stride);
    const uMax = Math.floor((inSize - 1 + pad - r) / stride);
    const count = uMax - uMin + 1;
    if (count <= 0) continue;
    const taps = r < kernel ? Math.ceil((kernel - r) / stride) : 0;
    // Correlation output k (u = uMin + k) reads padded dy rows k .. k + taps − 1: padded row m is dy[m − padBefore].
    const before = taps - 1 - uMin;
    const after = count + taps - 1 - before - outSize;
    phases.push({
      r,
      taps,
      uMin,
      count,
      padBefore: Math.max(0, before),
      padAfter: Math.max(0, after),
      cropBefore: Math.max(0, -before),
      cropAfter: Math.max(0, -after),
    });
  }
  return phases;
}
