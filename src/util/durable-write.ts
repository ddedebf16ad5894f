/**
 * The one durable-write helper: a file is written under a temporary sibling name, flushed to disk (fsync),
 * renamed over its final name and the folder's entry table flushed. A process killed at any moment leaves
 * either the old file or the new one under the final name, never half a file. Temporary names are hidden
 * (`.NAME.part-…`), so a folder listing skips them and a cleanup can find them by `.part-`.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Marks the temporary files of {@link writeFileAtomic} and {@link copyFileAtomic}. */
export const TEMP_MARK = '.part-';

/** Writes a file and flushes it to disk before returning (for files inside a folder that is renamed as a whole). */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fsp.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a folder's entry table (after creating or renaming entries in it). Best effort where folders cannot be fsynced. */
export async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | null = null;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems (and Windows) cannot fsync a directory; the rename is still atomic.
  } finally {
    await handle?.close();
  }
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** Renames `tmp` over `file` and flushes the folder; removes `tmp` when that fails. */
async function moveIntoPlace(tmp: string, file: string): Promise<void> {
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(path.dirname(file));
}

/** Writes a file atomically and durably (see the module comment); creates its folder when missing. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await writeFileDurable(tmp, data);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await moveIntoPlace(tmp, file);
}

/** Writes JSON (2-space indented, with a final newline) atomically and durably. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** Copies a file atomically and durably: `to` holds all of `from` or is as it was. */
export async function copyFileAtomic(from: string, to: string): Promise<void> {
  await fsp.mkdir(path.dirname(to), { recursive: true });
  const tmp = tempName(to);
  try {
    await fsp.copyFile(from, tmp);
    const handle = await fsp.open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await moveIntoPlace(tmp, to);
}
