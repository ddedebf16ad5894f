/**
 * Random bucolic scene descriptions: sky, ground, mountains, lake, sun or moon, trees and animals.
 * A scene is plain JSON (it is stored beside each image in the annotations) and is drawn by
 * render.ts and described by captions.ts. Coordinates are fractions of the image side (0..1),
 * y growing downwards; animal and tree positions are their feet / trunk base on the ground.
 */
import { z } from 'zod';
import { GROUND_BAND, GROUND_KINDS, SKY_BAND, SKY_KINDS, type GroundKind, type SkyKind } from './palette.js';
import { Rng } from './random.js';

export const SPECIES = ['cow', 'sheep', 'horse'] as const;
export type Species = (typeof SPECIES)[number];

/** Coats per species: cows brown, black or spotted (black and white); sheep white; horses brown, black or white. */
export const COATS = {
  cow: ['brown', 'black', 'spotted'],
  sheep: ['white'],
  horse: ['brown', 'black', 'white'],
} as const satisfies Record<Species, readonly string[]>;
export type Coat = 'brown' | 'black' | 'spotted' | 'white';

/** Body length of an animal per unit of depth below the horizon (perspective: smaller near the horizon). */
export const ANIMAL_SCALE: Record<Species, number> = { cow: 0.9, sheep: 0.75, horse: 0.78 };

const unit = z.number().min(-0.5).max(1.5);
const seed32 = z.number().int().min(0).max(0xffffffff);

export const sceneSchema = z.object({
  version: z.literal(1),
  sky: z.enum(SKY_KINDS),
  ground: z.enum(GROUND_KINDS),
  /** Horizon height, fraction of the image from the top. */
  horizon: z.number().min(0.3).max(0.8),
  /** Sun (blue or sunset sky) or moon (night); none under clouds. */
  celestial: z
    .object({ body: z.enum(['sun', 'moon']), x: unit, y: unit, r: z.number().positive(), crescent: z.boolean() })
    .nullable(),
  /** Number of stars (night only), placed from `starSeed`. */
  stars: z.number().int().min(0),
  starSeed: seed32,
  /** Seed of the ground texture and cloud shapes. */
  textureSeed: seed32,
  clouds: z.array(z.object({ x: unit, y: unit, w: z.number().positive(), h: z.number().positive() })),
  mountains: z.array(
    z.object({
      x: unit,
      width: z.number().positive(),
      height: z.number().positive(),
      skew: z.number(),
      shade: z.number().min(0).max(1),
      snowCap: z.boolean(),
    }),
  ),
  lake: z.object({ x: unit, y: unit, w: z.number().positive(), h: z.number().positive() }).nullable(),
  trees: z.array(z.object({ kind: z.enum(['round', 'pine']), x: unit, y: unit, height: z.number().positive() })),
  animals: z.array(
    z.object({
      species: z.enum(SPECIES),
      coat: z.enum(['brown', 'black', 'spotted', 'white']),
      x: unit,
      y: unit,
      /** Body length, fraction of the image width. */
      size: z.number().positive(),
      facing: z.union([z.literal(1), z.literal(-1)]),
    }),
  ),
});

/** A scene description (plain JSON). */
export type Scene = z.infer<typeof sceneSchema>;
export type Animal = Scene['animals'][number];
export type Tree = Scene['trees'][number];
export type Mountain = Scene['mountains'][number];

/** Validates a scene read back from JSON (e.g. the `scene` field of a synthetic annotations file). */
export function parseScene(value: unknown): Scene {
  return sceneSchema.parse(value);
}

/** The sky and ground kinds of a scene: what a generated image's colours are checked against. */
export function sceneKinds(scene: Pick<Scene, 'sky' | 'ground'>): { sky: SkyKind; ground: GroundKind } {
  return { sky: scene.sky, ground: scene.ground };
}

const r4 = (v: number) => Math.round(v * 10000) / 10000;

/** Bottom-most feet position allowed, keeping the ground band at the bottom of the image clear. */
const MAX_FEET_Y = 1 - GROUND_BAND - 0.02;
/** Highest point any ground object may reach, keeping the sky band at the top clear. */
const MIN_TOP_Y = SKY_BAND + 0.03;

function insideEllipse(x: number, y: number, e: { x: number; y: number; w: number; h: number }, margin = 1): boolean {
  const dx = (x - e.x) / ((e.w / 2) * margin);
  const dy = (y - e.y) / ((e.h / 2) * margin);
  return dx * dx + dy * dy < 1;
}

/**
 * Draws a random scene from `rng` (or from a numeric seed). Sky and ground kinds are uniform;
 * mountains, lake, trees and animals are optional; animals come in one or two groups of one to
 * four of the same species and coat.
 */
export function randomScene(source: Rng | number): Scene {
  const rng = typeof source === 'number' ? new Rng(source) : source;
  const sky = rng.pick(SKY_KINDS);
  const ground = rng.pick(GROUND_KINDS);
  const horizon = r4(rng.range(0.46, 0.6));
  const groundH = 1 - horizon;
  const starSeed = rng.nextUint32();
  const textureSeed = rng.nextUint32();

  let celestial: Scene['celestial'] = null;
  if (sky === 'blue' && rng.chance(0.7)) {
    celestial = { body: 'sun', x: r4(rng.range(0.1, 0.9)), y: r4(rng.range(0.13, horizon - 0.16)), r: r4(rng.range(0.045, 0.065)), crescent: false };
  } else if (sky === 'sunset' && rng.chance(0.9)) {
    celestial = { body: 'sun', x: r4(rng.range(0.15, 0.85)), y: r4(rng.range(horizon - 0.1, horizon)), r: r4(rng.range(0.07, 0.1)), crescent: false };
  } else if (sky === 'night' && rng.chance(0.85)) {
    celestial = { body: 'moon', x: r4(rng.range(0.1, 0.9)), y: r4(rng.range(0.12, horizon - 0.16)), r: r4(rng.range(0.04, 0.06)), crescent: rng.chance(0.5) };
  }
  const stars = sky === 'night' ? rng.int(20, 45) : 0;

  const clouds: Scene['clouds'] = [];
  const cloudCount = sky === 'cloudy' ? rng.int(4, 7) : sky === 'blue' ? rng.int(0, 2) : sky === 'sunset' ? rng.int(0, 3) : 0;
  for (let i = 0; i < cloudCount; i++) {
    if (sky === 'cloudy') {
      clouds.push({ x: r4(rng.range(0, 1)), y: r4(rng.range(0.04, horizon - 0.06)), w: r4(rng.range(0.25, 0.5)), h: r4(rng.range(0.07, 0.12)) });
    } else if (sky === 'blue') {
      clouds.push({ x: r4(rng.range(0.05, 0.95)), y: r4(rng.range(0.24, horizon - 0.1)), w: r4(rng.range(0.12, 0.24)), h: r4(rng.range(0.04, 0.07)) });
    } else {
      clouds.push({ x: r4(rng.range(0.05, 0.95)), y: r4(rng.range(0.24, horizon - 0.08)), w: r4(rng.range(0.2, 0.4)), h: r4(rng.range(0.025, 0.04)) });
    }
  }

  const mountains: Scene['mountains'] = [];
  if (rng.chance(0.45)) {
    const snowCap = ground === 'snow' ? rng.chance(0.9) : rng.chance(0.4);
    const n = rng.int(1, 3);
    for (let i = 0; i < n; i++) {
      const height = rng.range(0.1, horizon - MIN_TOP_Y);
      mountains.push({
        x: r4(rng.range(0.05, 0.95)),
        width: r4(height * rng.range(2.2, 3.6)),
        height: r4(height),
        skew: r4(rng.range(-0.15, 0.15)),
        shade: r4(rng.next()),
        snowCap,
      });
    }
    mountains.sort((a, b) => b.height - a.height);
  }

  let lake: Scene['lake'] = null;
  if (rng.chance(0.3)) {
    const y = horizon + groundH * rng.range(0.1, 0.28);
    const h = Math.min(groundH * rng.range(0.12, 0.22), 2 * (MAX_FEET_Y - 0.04 - y));
    lake = { x: r4(rng.range(0.25, 0.75)), y: r4(y), w: r4(rng.range(0.3, 0.6)), h: r4(h) };
  }

  const trees: Scene['trees'] = [];
  if (rng.chance(0.5)) {
    const n = rng.int(1, 5);
    const pineChance = ground === 'snow' ? 0.75 : 0.35;
    for (let i = 0; i < n; i++) {
      for (let attempt = 0; attempt < 8; attempt++) {
        const x = rng.range(0.03, 0.97);
        const y = horizon + groundH * rng.range(0.02, 0.32);
        const height = Math.min(0.07 + 0.85 * (y - horizon), y - MIN_TOP_Y);
        const kind = rng.chance(pineChance) ? ('pine' as const) : ('round' as const);
        if (lake && insideEllipse(x, y, lake, 1.25)) continue;
        trees.push({ kind, x: r4(x), y: r4(y), height: r4(height) });
        break;
      }
    }
  }

  const animals: Scene['animals'] = [];
  const groupCount = rng.weighted([[0, 0.14], [1, 0.62], [2, 0.24]] as const);
  const usedKinds = new Set<string>();
  const dMin = 0.3;
  const dMax = Math.min(0.8, (MAX_FEET_Y - horizon) / groundH);
  for (let g = 0; g < groupCount; g++) {
    const species = rng.weighted([['cow', 0.4], ['sheep', 0.33], ['horse', 0.27]] as const);
    const coat: Coat = rng.pick(COATS[species]);
    const count = rng.weighted([[1, 0.35], [2, 0.3], [3, 0.2], [4, 0.15]] as const);
    if (usedKinds.has(`${species}:${coat}`)) continue; // one group per species and coat, so captions count right
    usedKinds.add(`${species}:${coat}`);
    for (let i = 0; i < count; i++) {
      let placed: Animal | null = null;
      for (let attempt = 0; attempt < 20 && !placed; attempt++) {
        const y = horizon + groundH * rng.range(dMin, dMax);
        const size = ANIMAL_SCALE[species] * (y - horizon);
        const x = rng.range(0.04 + size / 2, 0.96 - size / 2);
        if (lake && insideEllipse(x, y, lake, 1.3)) continue;
        const crowded = animals.some(
          (a) => Math.abs(a.x - x) < 0.55 * (a.size + size) && Math.abs(a.y - y) < 0.25 * (a.size + size),
        );
        if (crowded && attempt < 19) continue;
        placed = { species, coat, x: r4(x), y: r4(y), size: r4(size), facing: rng.chance(0.5) ? 1 : -1 };
      }
      if (placed) animals.push(placed);
    }
  }

  return { version: 1, sky, ground, horizon, celestial, stars, starSeed, textureSeed, clouds, mountains, lake, trees, animals };
}
