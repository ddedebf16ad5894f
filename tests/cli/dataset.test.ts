import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/index.js';
import { writeCocoCaptions } from '../../src/training/data/coco.js';
import { rgbJpeg } from '../training/data/helpers/images.js';
import { TINY_CLIP } from '../training/data/helpers/source.js';

let tmp: string;
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dataset-cli-test-'));
});
after(() => fs.rm(tmp, { recursive: true, force: true }));

/** Runs the CLI and returns its exit code and stdout. */
async function cli(args: string[]) {
  let out = '';
  const restore = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await main(['node', 'cvae', ...args]);
    return { code, out };
  } finally {
    process.stdout.write = restore;
  }
}

test('dataset coco selects, copies and downloads; dataset build and info read the result', async () => {
  const jpeg = await rgbJpeg(64, 48, 1);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/2.jpg') res.writeHead(200, { 'Content-Length': String(jpeg.length) }).end(jpeg);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const captions = path.join(tmp, 'captions_train2017.json');
    await writeCocoCaptions(captions, {
      images: [1, 2, 3, 4, 5].map((id) => ({ id, file_name: `${id}.jpg`, coco_url: `${base}/${id}.jpg`, width: 64, height: 48 })),
      annotations: [
        { id: 11, image_id: 1, caption: 'Sheep grazing on a hill' },
        { id: 12, image_id: 2, caption: 'Two cows in a snowy field' },
        { id: 13, image_id: 3, caption: 'A horse' },
        { id: 14, image_id: 4, caption: 'A laptop on a desk' },
        { id: 15, image_id: 5, caption: 'A plate of food' },
      ],
    });
    const local = path.join(tmp, 'train2017');
    await fs.mkdir(local);
    await fs.writeFile(path.join(local, '1.jpg'), await rgbJpeg(50, 50, 2));
    const out = path.join(tmp, 'coco-out');
    const coco = await cli(['dataset', 'coco', '--captions', captions, '--images', local, '--download', '--out', out, '--no-progress', '--json', '--keywords', 'sheep,cow,horse']);
    assert.equal(coco.code, 0);
    const report = JSON.parse(coco.out);
    assert.deepEqual(report.keywords, [
      { keyword: 'sheep', images: 1, captions: 1 },
      { keyword: 'cow', images: 1, captions: 1 },
      { keyword: 'horse', images: 1, captions: 1 },
    ]);
    assert.deepEqual(report.images, { present: 0, copied: 1, downloaded: 1, missing: [3] });
    assert.deepEqual(report.download.failed.map((f: { id: number; status: number }) => [f.id, f.status]), [[3, 404]]);
    assert.deepEqual(requests.sort(), ['/2.jpg', '/3.jpg'], 'only selected images that are not local are fetched');
    assert.deepEqual((await fs.readdir(path.join(out, 'images'))).sort(), ['1.jpg', '2.jpg']);
    const subset = JSON.parse(await fs.readFile(path.join(out, 'annotations', 'captions_train2017_bucolic.json'), 'utf8'));
    assert.deepEqual(subset.images.map((i: { id: number }) => i.id), [1, 2, 3]);
    const saved = JSON.parse(await fs.readFile(path.join(out, 'download-report.json'), 'utf8'));
    assert.equal(saved.failed[0].url, `${base}/3.jpg`);

    // A second run resumes: what is there is kept, only the missing image is asked for again.
    requests.length = 0;
    const again = await cli(['dataset', 'coco', '--captions', captions, '--download', '--out', out, '--no-progress', '--json', '--keywords', 'sheep,cow,horse']);
    assert.equal(again.code, 0);
    assert.deepEqual(JSON.parse(again.out).images, { present: 2, copied: 0, downloaded: 0, missing: [3] });
    assert.deepEqual(requests, ['/3.jpg']);

    const cache = path.join(tmp, 'cache');
    const build = await cli(['dataset', 'build', '--source', out, '--res', '16', '--clip-model', TINY_CLIP, '--out', cache, '--no-progress']);
    assert.equal(build.code, 0);
    assert.match(build.out, /built .*: 2 of 3 images/);
    assert.match(build.out, /missing-file 1/);
    const info = await cli(['dataset', 'info', cache, '--json', '--verify']);
    assert.equal(info.code, 0);
    const manifest = JSON.parse(info.out);
    assert.equal(manifest.verified, true);
    assert.deepEqual(manifest.counts.images, 2);
    assert.equal(manifest.resolution, 16);
    const human = await cli(['dataset', 'info', cache]);
    assert.match(human.out, /images +2 \(train \d, val \d\)/);
    assert.match(human.out, /skipped +missing-file 1/);

    // A tampered cache fails verification with exit code 1.
    const imgs = path.join(cache, 'images.u8');
    const bytes = await fs.readFile(imgs);
    bytes[0] ^= 0xff;
    await fs.writeFile(imgs, bytes);
    const bad = await cli(['dataset', 'info', cache, '--verify']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /verified +NO/);
    // Bad option values are user errors.
    assert.equal((await cli(['dataset', 'build', '--source', out, '--res', 'big', '--no-progress'])).code, 1);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
