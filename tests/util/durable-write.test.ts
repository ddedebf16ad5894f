import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TEMP_MARK, copyFileAtomic, writeFileAtomic, writeJsonAtomic } from '../../src/util/durable-write.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'durable-'));
}

describe('durable writes', () => {
  it('writes a new file and replaces an old one, creating the folder, leaving no temp file', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'sub', 'a.bin');
    await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
    await writeFileAtomic(file, 'second');
    assert.equal(fs.readFileSync(file, 'utf8'), 'second');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')), ['a.bin']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the old content and no temp file when the rename fails', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'taken');
    fs.mkdirSync(path.join(target, 'child'), { recursive: true }); // a non-empty folder cannot be renamed over
    await assert.rejects(writeFileAtomic(target, 'x'));
    assert.deepEqual(fs.readdirSync(dir), ['taken']);
    assert.ok(fs.statSync(target).isDirectory());
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes JSON indented with a final newline, and copies files whole', async () => {
    const dir = tempDir();
    await writeJsonAtomic(path.join(dir, 'a.json'), { a: [1] });
    assert.equal(fs.readFileSync(path.join(dir, 'a.json'), 'utf8'), '{\n  "a": [\n    1\n  ]\n}\n');
    await copyFileAtomic(path.join(dir, 'a.json'), path.join(dir, 'copy', 'b.json'));
    assert.equal(fs.readFileSync(path.join(dir, 'copy', 'b.json'), 'utf8'), fs.readFileSync(path.join(dir, 'a.json'), 'utf8'));
    await assert.rejects(copyFileAtomic(path.join(dir, 'missing'), path.join(dir, 'copy', 'c.json')));
    assert.deepEqual(fs.readdirSync(path.join(dir, 'copy')), ['b.json'], 'no temp file left by a failed copy');
    assert.ok(!fs.readdirSync(dir).some((n) => n.includes(TEMP_MARK)));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
