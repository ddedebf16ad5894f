import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ANIMAL_SCALE, GROUND_BAND, GROUND_NOUNS, GROUND_PHRASES, SKY_PHRASES, GROUND_KINDS, HELD_OUT_SKIES, Rng, SKY_BAND, SKY_KINDS, animalGroups, captionScene,
  classifyColours, heldOutPrompts, kindsMentioned, parseScene, randomScene, renderScene, sceneKinds, skyColourAt,
  type GroundKind, type Scene, type SkyKind,
} from '../../src/training/data/synth/index.js';

const scenes = (n: number, base = 1): Scene[] => Array.from({ length: n }, (_, i) => randomScene(base + i));

describe('Rng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 20 }, () => a.next());
    assert.deepEqual(sa, Array.from({ length: 20 }, () => b.next()));
    assert.notDeepEqual(sa, Array.from({ length: 20 }, () => c.next()));
    for (const v of sa) assert.ok(v >= 0 && v < 1);
  });

  it('int covers both ends and nothing outside', () => {
    const rng = new Rng(5);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(rng.int(1, 4));
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4]);
  });
});

describe('randomScene', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    assert.deepEqual(randomScene(7), randomScene(7));
    assert.notDeepEqual(randomScene(7), randomScene(8));
  });

  it('round-trips through JSON and the schema, and rejects a broken scene', () => {
    const scene = randomScene(11);
    assert.deepEqual(parseScene(JSON.parse(JSON.stringify(scene))), scene);
    assert.throws(() => parseScene({ ...scene, sky: 'green' }));
    assert.deepEqual(sceneKinds(scene), { sky: scene.sky, ground: scene.ground });
  });

  it('over 500 scenes shows every sky, ground, species, coat and optional element', () => {
    const all = scenes(500);
    const count = <K extends string>(keys: readonly K[], get: (s: Scene) => K) =>
      Object.fromEntries(keys.map((k) => [k, all.filter((s) => get(s) === k).length])) as Record<K, number>;
    const skies = count(SKY_KINDS, (s) => s.sky);
    const grounds = count(GROUND_KINDS, (s) => s.ground);
    for (const k of SKY_KINDS) assert.ok(skies[k] >= 60, `sky ${k}: ${skies[k]}`);
    for (const k of GROUND_KINDS) assert.ok(grounds[k] >= 60, `ground ${k}: ${grounds[k]}`);
    const coats = new Set(all.flatMap((s) => s.animals.map((a) => `${a.species}:${a.coat}`)));
    for (const k of ['cow:brown', 'cow:black', 'cow:spotted', 'sheep:white', 'horse:brown', 'horse:black', 'horse:white']) {
      assert.ok(coats.has(k), `no ${k}`);
    }
    assert.ok(all.some((s) => s.mountains.some((m) => m.snowCap)));
    assert.ok(all.some((s) => s.mountains.length > 0 && !s.mountains.some((m) => m.snowCap)));
    assert.ok(all.some((s) => s.lake) && all.some((s) => !s.lake));
    assert.ok(all.some((s) => s.trees.some((t) => t.kind === 'pine')) && all.some((s) => s.trees.some((t) => t.kind === 'round')));
    assert.ok(all.some((s) => s.animals.length === 0));
    assert.ok(all.every((s) => s.celestial?.body !== 'moon' || s.sky === 'night'));
    assert.ok(all.every((s) => s.celestial?.body !== 'sun' || s.sky === 'blue' || s.sky === 'sunset'));
    assert.ok(all.every((s) => (s.stars > 0) === (s.sky === 'night')));
    const groupSizes = all.flatMap((s) => animalGroups(s).map((g) => g.count));
    for (const n of [1, 2, 3, 4]) assert.ok(groupSizes.includes(n), `no group of ${n}`);
    assert.ok(groupSizes.every((n) => n >= 1 && n <= 4));
  });

  it('keeps the sky band and ground band clear and draws far animals smaller', () => {
    for (const s of scenes(300, 1000)) {
      for (const a of s.animals) {
        assert.ok(a.y <= 1 - GROUND_BAND, `animal feet at ${a.y}`);
        assert.ok(a.y > s.horizon);
        assert.ok(Math.abs(a.size - ANIMAL_SCALE[a.species] * (a.y - s.horizon)) < 1e-3, 'size follows depth below the horizon');
      }
      for (const t of s.trees) assert.ok(t.y - t.height >= SKY_BAND, `tree top at ${t.y - t.height}`);
      for (const m of s.mountains) assert.ok(s.horizon - m.height >= SKY_BAND, `peak at ${s.horizon - m.height}`);
      if (s.lake) assert.ok(s.lake.y + s.lake.h / 2 <= 1 - GROUND_BAND, 'lake reaches the ground band');
    }
  });
});

describe('renderScene', () => {
  it('gives the same bytes for the same scene, and size*size*3 of them', () => {
    const s = randomScene(3);
    const a = renderScene(s, 64);
    assert.equal(a.length, 64 * 64 * 3);
    assert.deepEqual(a, renderScene(s, 64));
    assert.notDeepEqual(a, renderScene(randomScene(4), 64));
    assert.equal(renderScene(s, 128).length, 128 * 128 * 3);
  });

  it('paints the sky gradient on top and draws the animals', () => {
    const s: Scene = { ...randomScene(21), sky: 'blue', celestial: null, clouds: [], stars: 0 };
    const img = renderScene(s, 64);
    const expected = skyColourAt('blue', 0.5 / 64 / s.horizon);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(img[c] - expected[c]) <= 2, `top-left pixel channel ${c}`);
    const withCow: Scene = { ...s, animals: [{ species: 'cow', coat: 'black', x: 0.5, y: 0.8, size: 0.9 * (0.8 - s.horizon), facing: 1 }] };
    const noAnimals: Scene = { ...s, animals: [] };
    const a = renderScene(withCow, 64);
    const b = renderScene(noAnimals, 64);
    let changed = 0;
    for (let i = 0; i < a.length; i += 3) if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) > 30) changed++;
    assert.ok(changed > 20, `a near cow changes ${changed} pixels`);
  });

  it('rejects sizes it cannot draw', () => {
    assert.throws(() => renderScene(randomScene(1), 0), RangeError);
    assert.throws(() => renderScene(randomScene(1), 64, { supersample: 0 }), RangeError);
  });
});

describe('classifyColours', () => {
  function accuracy(size: number, n: number, transform?: (img: Uint8Array) => Uint8Array) {
    let sky = 0;
    let ground = 0;
    for (const s of scenes(n, 5000)) {
      const img = renderScene(s, size);
      const c = classifyColours(transform ? transform(img) : img, size);
      if (c.sky === s.sky) sky++;
      if (c.ground === s.ground) ground++;
    }
    return { sky: sky / n, ground: ground / n };
  }

  it('recovers sky and ground of at least 95% of 200 rendered 64 px scenes', () => {
    const acc = accuracy(64, 200);
    assert.ok(acc.sky >= 0.95, `sky accuracy ${acc.sky}`);
    assert.ok(acc.ground >= 0.95, `ground accuracy ${acc.ground}`);
  });

  it('stays right on blurred images (as a VAE would produce)', () => {
    const size = 64;
    const blur = (img: Uint8Array) => {
      // 5x5 box blur, edges clamped
      const out = new Uint8Array(img.length);
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
          const yy = Math.min(size - 1, Math.max(0, y + dy));
          const xx = Math.min(size - 1, Math.max(0, x + dx));
          sum += img[(yy * size + xx) * 3 + c];
          n++;
        }
        out[(y * size + x) * 3 + c] = Math.round(sum / n);
      }
      return out;
    };
    const acc = accuracy(size, 80, blur);
    assert.ok(acc.sky >= 0.9 && acc.ground >= 0.9, `blurred accuracy ${JSON.stringify(acc)}`);
  });

  it('works at 128 px and rejects a buffer of the wrong length', () => {
    const acc = accuracy(128, 40);
    assert.ok(acc.sky >= 0.95 && acc.ground >= 0.95, JSON.stringify(acc));
    assert.throws(() => classifyColours(new Uint8Array(10), 64), RangeError);
  });

  it('classifies flat palette images', () => {
    const size = 32;
    for (const sky of SKY_KINDS) {
      const img = new Uint8Array(size * size * 3);
      const c = skyColourAt(sky, 0.2);
      for (let i = 0; i < img.length; i += 3) img.set([Math.round(c[0]), Math.round(c[1]), Math.round(c[2])], i);
      assert.equal(classifyColours(img, size).sky, sky);
    }
  });
});

describe('captions', () => {
  it('gives 3 to 5 distinct captions that name the scene\'s ground, and its sky or none', () => {
    let skyless = 0;
    let total = 0;
    for (const [i, s] of scenes(300, 200).entries()) {
      const caps = captionScene(s, i);
      assert.ok(caps.length >= 3 && caps.length <= 5, `${caps.length} captions`);
      assert.equal(new Set(caps).size, caps.length);
      for (const [j, c] of caps.entries()) {
        const k = kindsMentioned(c);
        assert.equal(k.ground, s.ground, `"${c}" for ${s.ground}`);
        if (j === 0 || (j === 1 && s.animals.length > 0)) assert.equal(k.sky, s.sky, `"${c}" (the plain and scenery captions name the sky)`);
        else assert.ok(k.sky === s.sky || k.sky === undefined, `"${c}" for ${s.sky}`);
        if (k.sky === undefined) skyless++;
        total++;
      }
    }
    assert.ok(skyless > 0 && skyless / total < 0.2, `${skyless}/${total} captions leave the sky out`);
  });

  it('names every animal group with its count word and colour in the first caption, and no animals when there are none', () => {
    const words = ['', 'one', 'two', 'three', 'four'];
    const colour = { brown: 'brown', black: 'black', white: 'white', spotted: 'black and white' } as const;
    for (const [i, s] of scenes(200, 900).entries()) {
      const first = captionScene(s, i)[0];
      for (const g of animalGroups(s)) {
        const count = g.count === 1 ? '(a|one)' : words[g.count];
        const noun = g.count === 1 || g.species === 'sheep' ? g.species : `${g.species}s`;
        assert.match(first, new RegExp(`\\b${count} (fluffy )?(spotted )?${colour[g.coat]} ${noun}\\b`), first);
      }
      if (s.animals.length === 0) assert.doesNotMatch(first, /\b(cows?|sheep|horses?)\b/);
    }
  });

  it('uses the canonical phrases in the plain caption and the synonyms elsewhere', () => {
    const groundPhrases = new Set<string>();
    for (const [i, s] of scenes(200, 4000).entries()) {
      const caps = captionScene(s, i);
      const sky = SKY_PHRASES[s.sky][0];
      const ground = [GROUND_PHRASES[s.ground][0], GROUND_NOUNS[s.ground][0]];
      assert.ok(caps[0].endsWith(` ${sky}`) && ground.some((g) => caps[0].includes(g)), caps[0]);
      if (s.animals.length > 0) assert.equal(caps[1], `${GROUND_NOUNS[s.ground][0]} ${sky}`);
      for (const c of caps.slice(2)) for (const p of GROUND_PHRASES[s.ground]) if (c.includes(` ${p}`)) groundPhrases.add(p);
    }
    const all = Object.values(GROUND_PHRASES).flat();
    assert.ok(groundPhrases.size >= all.length * 0.8, `${groundPhrases.size} of ${all.length} ground phrases appear in varied captions`);
  });

  it('is deterministic for a scene and seed', () => {
    const s = randomScene(77);
    assert.deepEqual(captionScene(s, 1), captionScene(s, 1));
  });
});

describe('heldOutPrompts', () => {
  it('covers every ground with every sky, and each prompt names its kinds and species', () => {
    const prompts = heldOutPrompts(1, 64);
    assert.equal(prompts.length, 64);
    assert.deepEqual(prompts, heldOutPrompts(1, 64));
    assert.notDeepEqual(prompts, heldOutPrompts(2, 64));
    const combos = new Map<string, number>();
    for (const p of prompts) {
      assert.ok(HELD_OUT_SKIES.includes(p.sky));
      assert.deepEqual(kindsMentioned(p.prompt), { ground: p.ground, sky: p.sky }, p.prompt);
      for (const sp of ['cow', 'sheep', 'horse'] as const) assert.equal(new RegExp(`\\b${sp}`).test(p.prompt), p.species.includes(sp), p.prompt);
      combos.set(`${p.ground}/${p.sky}`, (combos.get(`${p.ground}/${p.sky}`) ?? 0) + 1);
    }
    assert.equal(combos.size, 16);
    for (const n of combos.values()) assert.equal(n, 4);
  });

  it('leaves out excluded prompts (e.g. the training captions) and repeats none', () => {
    const first = heldOutPrompts(3, 24);
    assert.equal(new Set(first.map((p) => p.prompt)).size, 24);
    const exclude = new Set(first.slice(0, 12).map((p) => p.prompt));
    const again = heldOutPrompts(3, 24, { exclude });
    assert.equal(again.length, 24);
    for (const p of again) assert.ok(!exclude.has(p.prompt), p.prompt);
  });

  it('reads kinds from free text and ignores snow-capped mountains', () => {
    assert.deepEqual(kindsMentioned('cows on snow under a night sky'), { ground: 'snow' as GroundKind, sky: 'night' as SkyKind });
    assert.deepEqual(kindsMentioned('a horse in a yellow field at sunset'), { ground: 'field', sky: 'sunset' });
    assert.deepEqual(kindsMentioned('sheep on green grass below snow-capped mountains under a blue sky'), { ground: 'grass', sky: 'blue' });
    assert.deepEqual(kindsMentioned('a cat'), { ground: undefined, sky: undefined });
    assert.deepEqual(kindsMentioned('a snowy field with cows'), { ground: 'snow', sky: undefined });
    assert.deepEqual(kindsMentioned('horses on the beach at dusk'), { ground: 'sand', sky: 'sunset' });
    assert.deepEqual(kindsMentioned('sheep in a grassy field under the stars'), { ground: 'grass', sky: 'night' });
    assert.deepEqual(kindsMentioned('cows in a wheat field under a grey sky'), { ground: 'field', sky: 'cloudy' });
  });
});
