/**
 * The seed's loss: BCE(x, x̂) summed over pixels + 0.5 · KL(N(mu, sigma) || N(0, 1)) summed over latent
 * dimensions + 0.1 · (1 − SSIM(x, x̂)), averaged over the batch. All terms are differentiable.
 */
import * as tf from '@tensorflow/tfjs';

/** Weight of the KL term. */
export const KL_WEIGHT = 0.5;
/** Weight of the (1 − SSIM) term. */
export const SSIM_WEIGHT = 0.1;
/** Predictions are clipped to [BCE_EPSILON, 1 − BCE_EPSILON] before the logarithms. */
export const BCE_EPSILON = 1e-7;

const SSIM_WINDOW = 11;
const SSIM_SIGMA = 1.5;
const SSIM_K1 = 0.01;
const SSIM_K2 = 0.03;
const SSIM_MAX_VAL = 1;

/** The normalised 11x11 Gaussian window of tf.image.ssim, as a depthwise kernel [11, 11, channels, 1]. */
function gaussianKernel(channels: number): tf.Tensor4D {
  const half = (SSIM_WINDOW - 1) / 2;
  const g1 = Array.from({ length: SSIM_WINDOW }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * SSIM_SIGMA ** 2)));
  const values = new Float32Array(SSIM_WINDOW * SSIM_WINDOW * channels);
  let total = 0;
  for (const a of g1) for (const b of g1) total += a * b;
  for (let r = 0; r < SSIM_WINDOW; r++) {
    for (let c = 0; c < SSIM_WINDOW; c++) {
      const w = (g1[r] * g1[c]) / total;
      for (let ch = 0; ch < channels; ch++) values[(r * SSIM_WINDOW + c) * channels + ch] = w;
    }
  }
  return tf.tensor4d(values, [SSIM_WINDOW, SSIM_WINDOW, channels, 1]);
}

/**
 * Structural similarity per image, as TensorFlow's `tf.image.ssim` computes it: 11x11 Gaussian window
 * (sigma 1.5), K1 0.01, K2 0.03, max value 1, valid padding, mean over pixels and channels.
 * @param x images NHWC in [0, 1], at least 11x11
 * @param y images of the same shape
 * @returns [N]
 */
export function ssim(x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor1D {
  const [, height, width, channels] = x.shape;
  if (height < SSIM_WINDOW || width < SSIM_WINDOW) {
    throw new Error(`SSIM needs images of at least ${SSIM_WINDOW}x${SSIM_WINDOW} pixels, got ${height}x${width}`);
  }
  return tf.tidy(() => {
    const kernel = gaussianKernel(channels);
    const blur = (t: tf.Tensor4D) => tf.depthwiseConv2d(t, kernel, 1, 'valid');
    const c1 = (SSIM_K1 * SSIM_MAX_VAL) ** 2;
    const c2 = (SSIM_K2 * SSIM_MAX_VAL) ** 2;
    const muX = blur(x);
    const muY = blur(y);
    const muXY = tf.mul(muX, muY);
    const muX2 = tf.square(muX);
    const muY2 = tf.square(muY);
    const sigmaXY = tf.sub(blur(tf.mul(x, y)), muXY);
    const sigmaX2 = tf.sub(blur(tf.square(x)), muX2);
    const sigmaY2 = tf.sub(blur(tf.square(y)), muY2);
    const luminance = tf.div(tf.add(tf.mul(muXY, 2), c1), tf.add(tf.add(muX2, muY2), c1));
    const contrastStructure = tf.div(tf.add(tf.mul(sigmaXY, 2), c2), tf.add(tf.add(sigmaX2, sigmaY2), c2));
    return tf.mean(tf.mul(luminance, contrastStructure), [1, 2, 3]) as tf.Tensor1D;
  });
}

/**
 * Binary cross-entropy of the reconstruction against the image (x is the target), summed over pixels
 * and channels.
 * @returns [N]
 */
export function bceSum(x: tf.Tensor4D, xHat: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => {
    const p = tf.clipByValue(xHat, BCE_EPSILON, 1 - BCE_EPSILON);
    const ll = tf.add(tf.mul(x, tf.log(p)), tf.mul(tf.sub(1, x), tf.log(tf.sub(1, p))));
    return tf.neg(tf.sum(ll, [1, 2, 3])) as tf.Tensor1D;
  });
}

/**
 * KL divergence of N(mu, exp(logvar / 2)) from N(0, 1), summed over latent dimensions.
 * @returns [N]
 */
export function klSum(mu: tf.Tensor2D, logvar: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(
    () => tf.mul(tf.sum(tf.sub(tf.sub(tf.add(1, logvar), tf.square(mu)), tf.exp(logvar)), 1), -0.5) as tf.Tensor1D,
  );
}

/**
 * The loss terms as plain numbers (batch means, read back from a {@link CvaeLoss}): what training reports and
 * checkpoints record. `ssim` is the mean SSIM (higher is better).
 */
export interface LossTerms {
  total: number;
  bce: number;
  kl: number;
  ssim: number;
}

/** The loss and its terms, each a batch mean. */
export interface CvaeLoss {
  /** mean(bce + 0.5 kl + 0.1 (1 − ssim)): what training minimises. */
  total: tf.Scalar;
  bce: tf.Scalar;
  kl: tf.Scalar;
  /** Mean SSIM (higher is better). */
  ssim: tf.Scalar;
}

/**
 * The seed's CVAE loss on a batch. The caller owns the returned scalars.
 * @param x images NHWC in [0, 1]
 * @param xHat reconstructions of the same shape
 */
export function cvaeLoss(x: tf.Tensor4D, xHat: tf.Tensor4D, mu: tf.Tensor2D, logvar: tf.Tensor2D): CvaeLoss {
  return tf.tidy(() => {
    const bce = bceSum(x, xHat);
    const kl = klSum(mu, logvar);
    const s = ssim(x, xHat);
    const perImage = tf.add(tf.add(bce, tf.mul(kl, KL_WEIGHT)), tf.mul(tf.sub(1, s), SSIM_WEIGHT));
    return {
      total: tf.mean(perImage) as tf.Scalar,
      bce: tf.mean(bce) as tf.Scalar,
      kl: tf.mean(kl) as tf.Scalar,
      ssim: tf.mean(s) as tf.Scalar,
    };
  });
}
