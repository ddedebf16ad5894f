/**
 * CLIP model names as checkpoints record them: a hub id (`Xenova/clip-vit-base-patch32`) or a local folder.
 * Pure path logic without transformers.js, so that code comparing names (the bot core) stays light.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../paths.js';

const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** `~` and `~/...` expanded to the home folder. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** Whether `model` names a folder rather than a hub id: it exists, or is written like a path. */
export function looksLikePath(model: string): boolean {
  return (
    path.isAbsolute(model) ||
    model.startsWith('.') ||
    model.startsWith('~') ||
    model.includes('\\') ||
    model.split('/').length > 2 ||
    fs.existsSync(model) ||
    !HUB_ID.test(model)
  );
}

/**
 * The name a checkpoint records for a CLIP model so that it means the same on every clone: a local folder
 * inside the repository (such as the tiny-clip test fixture) becomes a path relative to the repository root
 * (`tests/fixtures/tiny-clip`); folders elsewhere and hub ids are kept as they are.
 */
export function portableClipModelName(name: string): string {
  if (!looksLikePath(name)) return name;
  const abs = path.resolve(expandHome(name));
  const rel = path.relative(repoRoot, abs);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : abs;
}

/**
 * Where a recorded CLIP model name points on this machine: a relative folder name resolves against the
 * repository root when the folder exists there (a checkpoint shipped with the repository records
 * `tests/fixtures/tiny-clip`), else against the working directory; hub ids are returned unchanged.
 */
export function resolveRecordedClipModel(name: string): string {
  if (!looksLikePath(name)) return name;
  const expanded = expandHome(name);
  if (path.isAbsolute(expanded)) return path.normalize(expanded);
  const inRepo = path.resolve(repoRoot, expanded);
  return fs.existsSync(inRepo) ? inRepo : path.resolve(expanded);
}

/**
 * Whether two CLIP model names denote the same model: hub ids compare as strings, folders by their
 * resolved absolute paths (relative ones against the repository root, see `resolveRecordedClipModel`).
 */
export function sameClipModel(a: string, b: string): boolean {
  return a === b || resolveRecordedClipModel(a) === resolveRecordedClipModel(b);
}
