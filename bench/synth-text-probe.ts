/**
 * How much sky and ground information CLIP text embeddings of the synthetic captions carry:
 * `npx tsx bench/synth-text-probe.ts [SCENES] [CLIP_MODEL]` (default 1000 scenes, the tiny test CLIP).
 *
 * Fits a ridge-regression (linear) probe from the caption embeddings of SCENES training scenes to their
 * sky and ground kinds, then scores it on `heldOutPrompts` and on captions of unseen scenes. A model
 * conditioned on these embeddings can hardly draw the right colours more often than such a probe reads
 * them, so this bounds what the demo's quality check can reach with a given CLIP and caption grammar.
 * Prints one JSON line per evaluation set.
 */
import path from 'node:path';
import { ClipEmbedder } from '../src/model/clip/embedder.js';
import { repoRoot } from '../src/paths.js';
import { GROUND_KINDS, SKY_KINDS, heldOutPrompts, synthItem } from '../src/training/data/synth/index.js';

const scenes = Number(process.argv[2] ?? 1000);
const model = process.argv[3] ?? path.join(repoRoot, 'tests', 'fixtures', 'tiny-clip');

/** Ridge regression to one-hot targets, solved by Gauss–Jordan elimination; returns an argmax classifier. */
function fitProbe(x: Float32Array[], labels: number[], classes: number, lambda = 0.01): (v: Float32Array) => number {
  const d = x[0].length + 1;
  const a = Array.from({ length: d }, () => new Float64Array(d));
  const b = Array.from({ length: d }, () => new Float64Array(classes));
  const row = new Float64Array(d);
  x.forEach((v, n) => {
    row.set(v);
    row[d - 1] = 1;
    for (let i = 0; i < d; i++) {
      const ri = row[i];
      const ai = a[i];
      for (let j = 0; j < d; j++) ai[j] += ri * row[j];
      b[i][labels[n]] += ri;
    }
  });
  for (let i = 0; i < d; i++) a[i][i] += lambda;
  for (let i = 0; i < d; i++) {
    let p = i;
    for (let r = i + 1; r < d; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    [a[i], a[p]] = [a[p], a[i]];
    [b[i], b[p]] = [b[p], b[i]];
    for (let r = 0; r < d; r++) {
      if (r === i) continue;
      const f = a[r][i] / a[i][i];
      if (f === 0) continue;
      for (let j = i; j < d; j++) a[r][j] -= f * a[i][j];
      for (let c = 0; c < classes; c++) b[r][c] -= f * b[i][c];
    }
  }
  const w = b.map((bi, i) => bi.map((v) => v / a[i][i]));
  return (v) => {
    const score = new Float64Array(classes);
    for (let i = 0; i < d; i++) for (let c = 0; c < classes; c++) score[c] += (i < d - 1 ? v[i] : 1) * w[i][c];
    let best = 0;
    for (let c = 1; c < classes; c++) if (score[c] > score[best]) best = c;
    return best;
  };
}

const clip = await ClipEmbedder.load({ model });
try {
  const train: { text: string; sky: number; ground: number }[] = [];
  for (let i = 0; i < scenes; i++) {
    const { scene, captions } = synthItem(1, i);
    for (const text of captions) train.push({ text, sky: SKY_KINDS.indexOf(scene.sky), ground: GROUND_KINDS.indexOf(scene.ground) });
  }
  const embeddings = await clip.embedTexts(train.map((t) => t.text));
  const skyProbe = fitProbe(embeddings, train.map((t) => t.sky), SKY_KINDS.length);
  const groundProbe = fitProbe(embeddings, train.map((t) => t.ground), GROUND_KINDS.length);

  const evaluate = async (name: string, items: { text: string; sky: number; ground: number }[]) => {
    const e = await clip.embedTexts(items.map((t) => t.text));
    let sky = 0;
    let ground = 0;
    let both = 0;
    items.forEach((t, i) => {
      const s = skyProbe(e[i]) === t.sky;
      const g = groundProbe(e[i]) === t.ground;
      sky += +s;
      ground += +g;
      both += +(s && g);
    });
    const n = items.length;
    process.stdout.write(`${JSON.stringify({ bench: 'synth text probe', set: name, model, trainCaptions: train.length, n, sky: +(sky / n).toFixed(3), ground: +(ground / n).toFixed(3), both: +(both / n).toFixed(3) })}\n`);
  };
  const trainingCaptions = new Set(train.map((t) => t.text));
  const asItems = (prompts: ReturnType<typeof heldOutPrompts>) =>
    prompts.map((p) => ({ text: p.prompt, sky: SKY_KINDS.indexOf(p.sky), ground: GROUND_KINDS.indexOf(p.ground) }));
  await evaluate('heldOutPrompts', asItems(heldOutPrompts(1, 240)));
  await evaluate('heldOutPrompts not among the training captions', asItems(heldOutPrompts(1, 240, { exclude: trainingCaptions })));
  const unseen: { text: string; sky: number; ground: number }[] = [];
  for (let i = 0; i < 100; i++) {
    const { scene, captions } = synthItem(99, i);
    for (const text of captions) unseen.push({ text, sky: SKY_KINDS.indexOf(scene.sky), ground: GROUND_KINDS.indexOf(scene.ground) });
  }
  await evaluate('captions of unseen scenes', unseen);
} finally {
  await clip.dispose();
}
