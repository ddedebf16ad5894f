/**
 * The checkpoint registry: named checkpoints and which one is active (served by the bot).
 * State lives in `<root>/registry.json`, written atomically. Besides registered names, the registry finds
 * checkpoint folders under its root on its own: `<root>/<name>/meta.json`, or a training run
 * `<root>/<name>/{best,last}/meta.json` (best preferred). Registering or activating a checkpoint also makes
 * (or refreshes) its ONNX decoder export for serving (sampler-factory.ts; best effort, never fails the call).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { childLogger } from '../log.js';
import { dataDir } from '../paths.js';
import { readCheckpointMeta, type CheckpointMeta } from './checkpoint.js';
import { isValidName } from '../util/names.js';
import { writeJsonAtomic } from '../util/durable-write.js';
import { prepareCheckpointForServing } from './sampler-factory.js';

const log = childLogger('registry');

/** File name of the registry state inside the root. */
export const REGISTRY_FILE = 'registry.json';


const stateSchema = z.object({
  version: z.literal(1),
  active: z.string().nullable(),
  checkpoints: z.record(z.string(), z.object({ dir: z.string(), registeredAt: z.string() })),
});
type RegistryState = z.infer<typeof stateSchema>;

/** A checkpoint the registry knows. */
export interface RegistryEntry {
  name: string;
  /** Absolute path of the checkpoint folder. */
  dir: string;
  meta: CheckpointMeta;
}

/** Named checkpoints and the active one. */
export class CheckpointRegistry {
  readonly root: string;

  /** @param root folder of the checkpoints and of registry.json (default `<DATA_DIR>/checkpoints`) */
  constructor(root: string = path.join(dataDir(), 'checkpoints')) {
    this.root = path.resolve(root);
  }

  private get file(): string {
    return path.join(this.root, REGISTRY_FILE);
  }

  private async readState(): Promise<RegistryState> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, active: null, checkpoints: {} };
      throw err;
    }
    const parsed = stateSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new UserError(`The checkpoint registry ${this.file} is damaged (${z.prettifyError(parsed.error)}). Fix or delete it; checkpoints are not affected.`);
    }
    return parsed.data;
  }

  private async writeState(state: RegistryState): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    await writeJsonAtomic(this.file, state);
  }

  /** Stored paths are relative to the root when inside it, so the data folder can move. */
  private toStored(dir: string): string {
    const rel = path.relative(this.root, path.resolve(dir));
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(dir);
  }

  private fromStored(dir: string): string {
    return path.resolve(this.root, dir);
  }

  /** Checkpoint folders under the root that nobody registered: name -> folder. */
  private async discover(): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = await fsp.readdir(this.root, { withFileTypes: true });
    } catch {
      return found;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.') || !isValidName(e.name)) continue;
      const base = path.join(this.root, e.name);
      const dir = [base, path.join(base, 'best'), path.join(base, 'last')].find((d) => existsSync(path.join(d, 'meta.json')));
      if (dir) found.set(e.name, dir);
    }
    return found;
  }

  /** Registered and discovered checkpoints: name -> folder (registered names win). */
  private async catalog(state: RegistryState): Promise<Map<string, string>> {
    const all = new Map<string, string>();
    for (const [name, e] of Object.entries(state.checkpoints)) all.set(name, this.fromStored(e.dir));
    const registeredDirs = new Set(all.values());
    for (const [name, dir] of await this.discover()) {
      if (!all.has(name) && !registeredDirs.has(dir)) all.set(name, dir);
    }
    return all;
  }

  /** Registered and discovered checkpoint folders by name, the registered names and the active one, without reading any checkpoint. */
  async folders(): Promise<{ active: string | null; checkpoints: Map<string, string>; registered: Set<string> }> {
    const state = await this.readState();
    return { active: state.active, checkpoints: await this.catalog(state), registered: new Set(Object.keys(state.checkpoints)) };
  }

  /** Forgets registered names (their folders are left alone); an active one stops being active. */
  async unregister(names: Iterable<string>): Promise<void> {
    const state = await this.readState();
    let changed = false;
    for (const name of names) {
      if (state.checkpoints[name]) { delete state.checkpoints[name]; changed = true; }
      if (state.active === name) { state.active = null; changed = true; }
    }
    if (changed) await this.writeState(state);
  }

  /** Every checkpoint whose metadata can be read, sorted by name; unreadable ones are logged and skipped. */
  async list(): Promise<(RegistryEntry & { active: boolean })[]> {
    const state = await this.readState();
    const out: (RegistryEntry & { active: boolean })[] = [];
    for (const [name, dir] of await this.catalog(state)) {
      try {
        out.push({ name, dir, meta: await readCheckpointMeta(dir), active: state.active === name });
      } catch (err) {
        log.warn({ name, dir, err: (err as Error).message }, 'checkpoint listed in the registry cannot be read');
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Registers (or re-points) a name to a checkpoint folder.
   * @throws UserError for an invalid name or a folder without a checkpoint
   */
  async register(name: string, dir: string): Promise<void> {
    if (!isValidName(name)) {
      throw new UserError(`"${name}" is not a usable model name: use 1-64 letters, digits, dots, dashes or underscores.`);
    }
    await readCheckpointMeta(dir); // throws a UserError when there is no checkpoint
    const state = await this.readState();
    state.checkpoints[name] = { dir: this.toStored(dir), registeredAt: new Date().toISOString() };
    await this.writeState(state);
    log.info({ name, dir: path.resolve(dir) }, 'checkpoint registered');
    await prepareCheckpointForServing(dir);
  }

  /**
   * Makes a checkpoint the active one (a discovered one is registered on the way).
   * @throws UserError listing the known names when there is none of that name
   */
  async activate(name: string): Promise<void> {
    const entry = await this.resolve(name);
    const state = await this.readState();
    if (!state.checkpoints[name]) state.checkpoints[name] = { dir: this.toStored(entry.dir), registeredAt: new Date().toISOString() };
    state.active = name;
    await this.writeState(state);
    log.info({ name, dir: entry.dir }, 'active checkpoint changed');
    await prepareCheckpointForServing(entry.dir);
  }

  /** The active checkpoint, or null when none is active (or its folder is gone). */
  async active(): Promise<RegistryEntry | null> {
    const state = await this.readState();
    if (!state.active) return null;
    try {
      return await this.resolve(state.active);
    } catch (err) {
      log.warn({ name: state.active, err: (err as Error).message }, 'the active checkpoint cannot be read');
      return null;
    }
  }

  /**
   * The checkpoint of that name.
   * @throws UserError listing the known names when there is none of that name
   */
  async resolve(name: string): Promise<RegistryEntry> {
    const state = await this.readState();
    const all = await this.catalog(state);
    const dir = all.get(name);
    if (!dir) {
      const names = [...all.keys()].sort();
      throw new UserError(
        names.length
          ? `There is no model named "${name}". Known models: ${names.join(', ')}.`
          : `There is no model named "${name}", and no model has been trained yet.`,
      );
    }
    return { name, dir, meta: await readCheckpointMeta(dir) };
  }
}
