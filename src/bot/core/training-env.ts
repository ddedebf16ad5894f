/**
 * The environment of a training child process: what training reads (data and CLIP settings, the TensorFlow
 * and CUDA knobs, Node's own, locale, proxies for a hub download) and nothing else. The bot's chat tokens,
 * signing secret and playground token stay in the bot: a trainer has no use for them, and a crash dump or a
 * debugging `env` in a training host must not show them.
 */

/** Exact names a trainer may read. */
const NAMES = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'TMP', 'TEMP', 'TZ', 'LANG', 'LANGUAGE', 'TERM',
  'DATA_DIR', 'LOG_LEVEL', 'TFJS_BACKEND', 'SAMPLER_ENGINE', 'LD_LIBRARY_PATH', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NVIDIA_VISIBLE_DEVICES',
]);
/** Prefixes of names a trainer may read. */
const PREFIXES = ['CLIP_', 'HF_', 'TF_', 'CUDA_', 'ONNX_', 'NODE_', 'TSX_', 'LC_', 'XDG_', 'OMP_', 'KMP_'];
/** Never passed, even under an allowed prefix. */
const SECRET = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY/i;

/** The subset of `env` a training child gets; see the module comment. */
export function trainingChildEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || SECRET.test(name)) continue;
    if (NAMES.has(name) || PREFIXES.some((p) => name.startsWith(p))) out[name] = value;
  }
  return out;
}
