/**
 * Which model `npm start` serves and which CLIP it loads for it.
 *
 * - The model: the registry's active checkpoint; when none is active, the demo checkpoint shipped in the
 *   repository ({@link defaultCheckpoint}, `models/demo`) is registered as `demo` and activated.
 * - CLIP: `CLIP_MODEL` when set; else the CLIP the served checkpoint was trained with (its `meta.clipModel`; a
 *   repository-relative folder such as `tests/fixtures/tiny-clip`, which the demo records, resolves against the
 *   repository root); else the default hub model (`Xenova/clip-vit-base-patch32`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { childLogger } from '../log.js';
import { repoRoot } from '../paths.js';
import { readCheckpointMeta, type CheckpointMeta } from './checkpoint.js';
import { DEFAULT_CLIP_MODEL } from './clip/model-source.js';
import { resolveRecordedClipModel } from './clip/clip-name.js';

const log = childLogger('served-model');

/** Where the shipped demo checkpoint lives. */
export const DEMO_CHECKPOINT_DIR = path.join(repoRoot, 'models', 'demo');
/** Registry name of the shipped demo. */
export const DEMO_MODEL_NAME = 'demo';

/** The checkpoint shipped with the repository (`models/demo` with a meta.json), or null when there is none. */
export function defaultCheckpoint(dir: string = DEMO_CHECKPOINT_DIR): string | null {
  return fs.existsSync(path.join(dir, 'meta.json')) ? dir : null;
}

/**
 * The CLIP model to load (see the module comment).
 * @param explicit `CLIP_MODEL` as set in the environment (undefined or empty: not set)
 * @param served the metadata of the checkpoint that will be served, if any
 */
export function pickClipModel(explicit: string | undefined, served: Pick<CheckpointMeta, 'clipModel'> | null): string {
  if (explicit && explicit.trim()) return explicit.trim();
  return served ? resolveRecordedClipModel(served.clipModel) : DEFAULT_CLIP_MODEL;
}

/** The registry as this module uses it (CheckpointRegistry). */
export interface ServedModelRegistry {
  active(): Promise<{ name: string; dir: string; meta: CheckpointMeta } | null>;
  list(): Promise<{ name: string; dir: string }[]>;
  register(name: string, dir: string): Promise<void>;
  activate(name: string): Promise<void>;
}

/**
 * The checkpoint to serve: the registry's active one; when none is active and a demo is shipped, the demo,
 * registered (as `demo`, or `shipped-demo` when `demo` names another folder) and activated.
 */
export async function ensureServedModel(registry: ServedModelRegistry, shipped: string | null = defaultCheckpoint()):
  Promise<{ name: string; dir: string; meta: CheckpointMeta; shipped: boolean } | null> {
  const active = await registry.active();
  if (active) return { ...active, shipped: false };
  if (!shipped) return null;
  const meta = await readCheckpointMeta(shipped);
  const taken = (await registry.list()).find((e) => e.name === DEMO_MODEL_NAME);
  const name = !taken || path.resolve(taken.dir) === path.resolve(shipped) ? DEMO_MODEL_NAME : `shipped-${DEMO_MODEL_NAME}`;
  await registry.register(name, shipped);
  await registry.activate(name);
  log.info({ name, dir: shipped }, 'no active model: serving the shipped demo checkpoint');
  return { name, dir: shipped, meta, shipped: true };
}

/** How to get a model served, added to the message of a generation refused because none is. */
export function noModelHelp(): string {
  return [
    'To get one: `npm run demo:train` rebuilds the shipped demo model into `models/demo` offline; restart `npm start` to serve it.',
    'Or train your own on the synthetic scenes and make it the active model:',
    '`npm run cli -- dataset synth --out data/datasets/synth-64`',
    '`npm run cli -- dataset build --source data/datasets/synth-64 --out data/datasets/synth-64-cache --clip-model tests/fixtures/tiny-clip`',
    '`npm run cli -- train --preset demo --dataset data/datasets/synth-64-cache`',
    '`npm run cli -- model list`, then `npm run cli -- model use NAME` (or `/model use NAME` here). `npm start` loads the CLIP the active model was built with unless `CLIP_MODEL` says otherwise.',
    'Or start a run from the Training panel: a finished run is registered under its run name.',
  ].join('\n');
}
