/** Content fingerprint of a dataset cache: sha256 over its data files, streamed (never the whole file in memory). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FINGERPRINTED_FILES } from './cache-format.js';

/**
 * sha256 (hex) over the given files of a folder, in order. Each file contributes its name and byte length
 * before its bytes, so moving bytes from one file to another changes the fingerprint.
 */
export async function fingerprintFiles(dir: string, names: readonly string[] = FINGERPRINTED_FILES): Promise<string> {
  const hash = createHash('sha256');
  for (const name of names) {
    const file = path.join(dir, name);
    const { size } = await fs.stat(file);
    hash.update(`${name}\0${size}\0`);
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
