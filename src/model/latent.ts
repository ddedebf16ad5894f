/**
 * Engine-independent latent vectors: the z ~ N(0, I) of a seed, computed in plain JavaScript so that the
 * TensorFlow.js sampler and the ONNX Runtime sampler (and the trainer's sample grids) decode exactly the same
 * latent for the same seed, whatever backend or engine runs the decoder.
 *
 * Algorithm (a stable contract: changing it changes every image a seed gives):
 * 1. The seed (any safe integer) is split into two unsigned 32-bit words `lo` and `hi` (two's complement
 *    of the 64-bit integer) and mixed by splitmix32 into the four 32-bit words of an sfc32 state.
 * 2. sfc32 is run 12 times to stir the state; its outputs then become uniforms u = (x + 0.5) / 2^32 in (0, 1).
 * 3. Box–Muller turns each pair (u1, u2) into two standard normals
 *    r cos(2 pi u2), r sin(2 pi u2) with r = sqrt(-2 ln u1), computed in float64 and stored as float32.
 */

/**
 * The largest seed the bot and the CLI hand out or accept from people: 2^31 − 1, the most a Discord integer
 * option allows. (The latent itself takes any safe integer.)
 */
export const MAX_SEED = 0x7fffffff;

/** splitmix32 step: returns the next state and a well-mixed output. */
function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return [next, z >>> 0];
}

/** A seeded sfc32 generator of unsigned 32-bit integers. */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
}

/** The two 32-bit words of a safe integer (two's complement of its 64-bit value). */
function seedWords(seed: number): [lo: number, hi: number] {
  const big = BigInt(seed);
  return [Number(BigInt.asUintN(32, big)), Number(BigInt.asUintN(32, big >> 32n))];
}

/**
 * The latent vector of a seed: `dim` independent standard normal values, the same on every engine and
 * platform (see the module comment for the exact algorithm).
 * @param seed any safe integer
 * @param dim width of z
 * @throws RangeError when the seed is not a safe integer or dim is not a non-negative integer
 */
export function latentForSeed(seed: number, dim: number): Float32Array {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  if (!Number.isInteger(dim) || dim < 0) throw new RangeError(`dim must be a non-negative integer, got ${dim}`);
  const [lo, hi] = seedWords(seed);
  let s = lo ^ Math.imul(hi, 0x85ebca6b);
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    let out: number;
    [s, out] = splitmix32(s);
    words.push(out ^ (i === 1 ? hi : 0));
  }
  const next = sfc32(words[0], words[1], words[2], words[3]);
  for (let i = 0; i < 12; i++) next();
  const uniform = () => (next() + 0.5) / 4294967296;
  const z = new Float32Array(dim);
  for (let i = 0; i < dim; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    z[i] = r * Math.cos(theta);
    if (i + 1 < dim) z[i + 1] = r * Math.sin(theta);
  }
  return z;
}
