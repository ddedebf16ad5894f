/**
 * Reads CLIP embeddings from a file for sampling. Accepted formats:
 * - `.bin` / `.f32`: raw little-endian float32, `dim` values per embedding, one after another;
 * - JSON: an array of `dim` numbers (one embedding), an array of such arrays, or an object with an
 *   `embedding` array (or `embeddings` array of arrays);
 * - JSON lines: one such object or array per line (what `embed --json` prints).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

function toEmbedding(value: unknown, dim: number, where: string): Float32Array {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new UserError(`${where} is not an array of numbers.`);
  }
  if (value.length !== dim) throw new UserError(`${where} has ${value.length} numbers; the model takes ${dim}.`);
  return Float32Array.from(value as number[]);
}

/** The embeddings one parsed JSON value holds. */
function fromJsonValue(value: unknown, dim: number, where: string): Float32Array[] {
  if (Array.isArray(value) && value.length > 0 && Array.isArray(value[0])) {
    return value.map((v, i) => toEmbedding(v, dim, `${where}, embedding ${i + 1},`));
  }
  if (Array.isArray(value)) return [toEmbedding(value, dim, where)];
  if (value && typeof value === 'object') {
    const obj = value as { embedding?: unknown; embeddings?: unknown };
    if (obj.embedding !== undefined) return [toEmbedding(obj.embedding, dim, `${where} "embedding"`)];
    if (Array.isArray(obj.embeddings)) return fromJsonValue(obj.embeddings, dim, `${where} "embeddings"`);
  }
  throw new UserError(`${where} holds no embedding (expected an array of ${dim} numbers, an array of arrays, or {"embedding": [...]}).`);
}

/**
 * Parses embeddings from file contents (see the module comment for the formats).
 * @param name file name (its extension picks binary or JSON)
 * @param dim embedding width
 * @throws UserError when the contents do not hold `dim`-wide embeddings
 */
export function parseEmbeddings(name: string, contents: Buffer, dim: number): Float32Array[] {
  const ext = path.extname(name).toLowerCase();
  let out: Float32Array[];
  if (ext === '.bin' || ext === '.f32') {
    if (contents.byteLength === 0 || contents.byteLength % (4 * dim) !== 0) {
      throw new UserError(`${name} has ${contents.byteLength} bytes, not a multiple of ${dim} float32 values (${4 * dim} bytes).`);
    }
    const n = contents.byteLength / (4 * dim);
    out = Array.from({ length: n }, (_, i) => {
      const e = new Float32Array(dim);
      for (let j = 0; j < dim; j++) e[j] = contents.readFloatLE((i * dim + j) * 4);
      return e;
    });
  } else {
    const text = contents.toString('utf8').trim();
    try {
      out = fromJsonValue(JSON.parse(text), dim, name);
    } catch (err) {
      if (err instanceof UserError) throw err;
      // Not one JSON document: try JSON lines.
      const lines = text.split('\n').filter((l) => l.trim() !== '');
      out = lines.flatMap((line, i) => {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new UserError(`${name} is neither JSON nor JSON lines (line ${i + 1} does not parse).`);
        }
        return fromJsonValue(value, dim, `${name} line ${i + 1}`);
      });
    }
  }
  if (out.length === 0) throw new UserError(`${name} holds no embeddings.`);
  out.forEach((e, i) => {
    if (!e.every(Number.isFinite)) throw new UserError(`${name}: embedding ${i + 1} has values that are not finite numbers.`);
  });
  return out;
}

/** Reads embeddings from a file (see `parseEmbeddings`). */
export async function readEmbeddingFile(file: string, dim: number): Promise<Float32Array[]> {
  let contents: Buffer;
  try {
    contents = await fsp.readFile(file);
  } catch (err) {
    throw new UserError(`Cannot read the embedding file ${file} (${(err as Error).message}).`, { cause: err });
  }
  return parseEmbeddings(file, contents, dim);
}
