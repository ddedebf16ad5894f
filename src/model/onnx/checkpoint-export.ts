/**
 * The ONNX export kept next to a checkpoint: `<checkpoint>/decoder.onnx` plus `decoder.onnx.json`, a sidecar
 * naming the SHA-256 of the decoder files it was made from (also stored in the model's `metadata_props`).
 * Checkpoint saves carry foreign files over into the new folder, so an export can outlive the weights it was
 * made from: it counts as fresh only while the hash matches the decoder files (and the export format
 * version matches the exporter's), and is regenerated otherwise.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { childLogger } from '../../log.js';
import { loadCheckpoint } from '../checkpoint.js';
import { MODEL_JSON, WEIGHTS_BIN } from '../file-io.js';
import { syncDir, writeFileAtomic } from '../../util/durable-write.js';
import { EXPORT_FORMAT_VERSION, exportDecoderOnnx } from './export.js';

const log = childLogger('onnx-export');

/** File name of the decoder export inside a checkpoint folder. */
export const DECODER_ONNX = 'decoder.onnx';
/** File name of the export's sidecar (written after the model: its presence marks a complete export). */
export const DECODER_ONNX_INFO = 'decoder.onnx.json';

const infoSchema = z.object({
  exportFormat: z.number().int(),
  weightsSha256: z.string(),
  output: z.enum(['uint8', 'float']),
  createdAt: z.string(),
  bytes: z.number().int().positive(),
});
/** What the sidecar says about an export. */
export type OnnxExportInfo = z.infer<typeof infoSchema>;

/** State of a checkpoint's export. */
export type OnnxExportState = 'fresh' | 'stale' | 'missing';

/** SHA-256 (hex) of the decoder's topology and weights files of a checkpoint, and of the export format version. */
export async function decoderWeightsHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`cvae-decoder-onnx-v${EXPORT_FORMAT_VERSION}\n`);
  for (const file of [MODEL_JSON, WEIGHTS_BIN]) {
    hash.update(await fsp.readFile(path.join(dir, 'decoder', file)));
  }
  return hash.digest('hex');
}

/** The sidecar of a checkpoint's export, or null when there is none (or it is unreadable). */
export async function readOnnxExportInfo(dir: string): Promise<OnnxExportInfo | null> {
  try {
    const parsed = infoSchema.safeParse(JSON.parse(await fsp.readFile(path.join(dir, DECODER_ONNX_INFO), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Whether a checkpoint has an up-to-date export, an outdated one, or none. */
export async function onnxExportState(dir: string): Promise<OnnxExportState> {
  const info = await readOnnxExportInfo(dir);
  const file = path.join(dir, DECODER_ONNX);
  if (!info || !existsSync(file)) return 'missing';
  const stat = await fsp.stat(file);
  if (stat.size !== info.bytes || info.exportFormat !== EXPORT_FORMAT_VERSION || info.output !== 'uint8') return 'stale';
  return info.weightsSha256 === (await decoderWeightsHash(dir)) ? 'fresh' : 'stale';
}

/**
 * Makes sure a checkpoint folder holds a fresh `decoder.onnx` (uint8 RGB output, for serving), exporting it
 * from the checkpoint's weights when it is missing or stale.
 * @returns the path of the export and whether it was (re)generated now
 * @throws when the checkpoint cannot be loaded or the decoder cannot be exported
 */
export async function ensureDecoderOnnx(dir: string): Promise<{ path: string; regenerated: boolean }> {
  const target = path.resolve(dir);
  const file = path.join(target, DECODER_ONNX);
  if ((await onnxExportState(target)) === 'fresh') return { path: file, regenerated: false };
  const started = Date.now();
  // Hash before and after loading: a save that swaps the folder in between would pair a hash with other weights.
  const before = await decoderWeightsHash(target);
  const { cvae } = await loadCheckpoint(target);
  let bytes: Uint8Array;
  try {
    const after = await decoderWeightsHash(target);
    if (after !== before) throw new Error(`the checkpoint in ${target} changed while it was being exported; try again`);
    bytes = exportDecoderOnnx(cvae, { output: 'uint8', metadata: { weightsSha256: before } });
  } finally {
    cvae.dispose();
  }
  const info: OnnxExportInfo = {
    exportFormat: EXPORT_FORMAT_VERSION,
    weightsSha256: before,
    output: 'uint8',
    createdAt: new Date().toISOString(),
    bytes: bytes.byteLength,
  };
  await fsp.rm(path.join(target, DECODER_ONNX_INFO), { force: true });
  await writeFileAtomic(file, bytes);
  await writeFileAtomic(path.join(target, DECODER_ONNX_INFO), JSON.stringify(info, null, 2) + '\n');
  await syncDir(target);
  log.info({ dir: target, bytes: bytes.byteLength, ms: Date.now() - started }, 'decoder exported to ONNX');
  return { path: file, regenerated: true };
}
