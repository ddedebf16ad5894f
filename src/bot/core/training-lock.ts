/**
 * The host-wide training lock: one training run at a time per data directory, across runners and bot
 * processes. Taken atomically by creating the lock file exclusively (`open(..., 'wx')`), so of two starts
 * that race, exactly one gets it. The file names its holder: process id, a token of the holding process and
 * one of the holding start. A lock is stale only when its process is gone, or when it was written by an
 * earlier process that had the same pid (a container restarts its bot as pid 1 again); a lock of this very
 * process is held (by another runner, or a start in flight), never stale.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/** Identifies this process across pid reuse. */
const PROCESS_TOKEN = crypto.randomUUID();

/** What the lock file says. */
export interface LockHolder {
  pid: number;
  /** Token of the holding process (absent in a lock written by an older version: a bare pid). */
  process?: string;
  /** Token of the holding start. */
  id?: string;
  at?: string;
}

/** The lock; see the module comment. */
export class TrainingLock {
  private held: string | null = null;

  constructor(readonly file: string) {}

  /** Whether this instance holds the lock. */
  get holding(): boolean {
    return this.held !== null;
  }

  /**
   * Takes the lock.
   * @throws UserError when another run (of this process or another) holds it
   */
  acquire(): void {
    if (this.held) throw new UserError('A training run is already starting or going. Use `/train status` or `/train stop`.');
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const id = crypto.randomUUID();
    const content = JSON.stringify({ pid: process.pid, process: PROCESS_TOKEN, id, at: new Date().toISOString() } satisfies LockHolder);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = fs.openSync(this.file, 'wx');
        try {
          fs.writeSync(fd, content);
        } finally {
          fs.closeSync(fd);
        }
        this.held = id;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const seen = this.read();
      if (seen === null) continue; // removed meanwhile: try again
      if (!isStale(seen.holder)) {
        throw new UserError(seen.holder.process === PROCESS_TOKEN
          ? 'A training run is already starting or going. Use `/train status` or `/train stop`.'
          : 'Another training run is going on this host (another bot process holds the lock). Try again when it is done.');
      }
      this.removeIfUnchanged(seen.raw);
    }
    throw new UserError('Could not take the training lock; please try again.');
  }

  /** Releases the lock if this instance holds it (a lock taken over by someone else is left alone). */
  release(): void {
    const id = this.held;
    this.held = null;
    if (!id) return;
    const seen = this.read();
    if (seen?.holder.id === id) this.removeIfUnchanged(seen.raw);
  }

  /** The holder named in the lock file, or null when there is none. */
  holder(): LockHolder | null {
    return this.read()?.holder ?? null;
  }

  private read(): { raw: string; holder: LockHolder } | null {
    let raw: string;
    try {
      raw = fs.readFileSync(this.file, 'utf8');
    } catch {
      return null;
    }
    try {
      const parsed = JSON.parse(raw) as LockHolder | number;
      if (typeof parsed === 'number') return { raw, holder: { pid: parsed } };
      if (parsed && typeof parsed.pid === 'number') return { raw, holder: parsed };
    } catch { /* an unreadable lock: treat it as a dead process's */ }
    return { raw, holder: { pid: 0 } };
  }

  /**
   * Removes the lock file if it still says `raw`: moves it aside atomically first, and puts it back (without
   * overwriting) if it turned out to be a newer lock taken meanwhile.
   */
  private removeIfUnchanged(raw: string): void {
    const aside = `${this.file}.${crypto.randomBytes(6).toString('hex')}.stale`;
    try {
      fs.renameSync(this.file, aside);
    } catch {
      return; // gone already
    }
    try {
      if (fs.readFileSync(aside, 'utf8') !== raw) {
        try {
          fs.linkSync(aside, this.file);
        } catch { /* a newer lock is there: it wins */ }
      }
    } finally {
      fs.rmSync(aside, { force: true });
    }
  }
}

function isStale(h: LockHolder): boolean {
  if (h.process === PROCESS_TOKEN) return false; // this process holds it
  if (!h.pid) return true;
  if (h.pid === process.pid) return true; // an earlier process that had our pid
  return !isAlive(h.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
