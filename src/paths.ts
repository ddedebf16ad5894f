import path from 'node:path';

/** The data directory: SQLite store, checkpoints, datasets, model caches. `DATA_DIR`, default `./data`. */
export function dataDir(): string {
  return path.resolve(process.env.DATA_DIR ?? 'data');
}

/** Root of the repository (where package.json lives). */
export const repoRoot = path.resolve(new URL('..', import.meta.url).pathname);
