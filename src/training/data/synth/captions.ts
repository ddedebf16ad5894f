/**
 * Captions for synthetic scenes, and the prompt grammar they come from.
 *
 * Every caption names the scene's ground and sky with words from a fixed vocabulary (see
 * GROUND_KEYWORDS / SKY_KEYWORDS), and most name the animals with counts as words and coat
 * colours, so that caption embeddings carry the attributes a model should draw.
 */
import { GROUND_KINDS, SKY_KINDS, type GroundKind, type SkyKind } from './palette.js';
import { Rng } from './random.js';
import { COATS, SPECIES, type Coat, type Scene, type Species } from './scene.js';

/** Phrases placing something on a ground, each containing one of GROUND_KEYWORDS[kind]. */
export const GROUND_PHRASES: Record<GroundKind, readonly string[]> = {
  grass: ['on green grass', 'on a green meadow', 'in a green pasture', 'on the grass'],
  snow: ['in the snow', 'on snow', 'on snowy ground', 'in a snowy landscape'],
  field: ['in a yellow field', 'in a wheat field', 'in a golden wheat field', 'on a yellow field'],
  sand: ['on sand', 'on the sand', 'on sandy ground', 'among sand dunes'],
};

/** Noun phrases for a ground as the subject of a caption. */
export const GROUND_NOUNS: Record<GroundKind, readonly string[]> = {
  grass: ['a green meadow', 'green grass', 'a grassy pasture'],
  snow: ['a snowy plain', 'snowy ground', 'a snowy landscape'],
  field: ['a yellow field', 'a golden wheat field', 'a field of yellow wheat'],
  sand: ['sand dunes', 'sandy ground', 'a sandy desert'],
};

/** Trailing phrases for a sky, each containing one of SKY_KEYWORDS[kind]. */
export const SKY_PHRASES: Record<SkyKind, readonly string[]> = {
  blue: ['under a blue sky', 'under a clear blue sky', 'on a sunny day under a blue sky'],
  cloudy: ['under a cloudy sky', 'under grey clouds', 'on an overcast day'],
  sunset: ['at sunset', 'under a sunset sky', 'under an orange sunset sky'],
  night: ['at night', 'under a night sky', 'under a starry night sky'],
};

/** Leading phrases for a sky ("at sunset, ..."). */
export const SKY_LEADS: Record<SkyKind, readonly string[]> = {
  blue: ['on a sunny day with a blue sky', 'under a clear blue sky'],
  cloudy: ['on a cloudy day', 'under grey clouds'],
  sunset: ['at sunset', 'at dusk under a sunset sky'],
  night: ['at night', 'on a starry night'],
};

/** Words that identify each ground kind in a caption or prompt. */
export const GROUND_KEYWORDS: Record<GroundKind, RegExp> = {
  grass: /\b(grass|grassy|meadow|pasture)\b/,
  snow: /\b(snow|snowy)\b/,
  field: /\b(field|wheat)\b/,
  sand: /\b(sand|sandy|dunes?|desert)\b/,
};

/** Words that identify each sky kind in a caption or prompt. */
export const SKY_KEYWORDS: Record<SkyKind, RegExp> = {
  blue: /\b(blue sky|sunny)\b/,
  cloudy: /\b(cloudy|clouds|overcast)\b/,
  sunset: /\b(sunset|dusk)\b/,
  night: /\b(night|starry)\b/,
};

/**
 * The ground and sky kinds a text names (undefined where it names none, or more than one).
 * "snow-capped" (mountains) does not count as snow on the ground.
 */
export function kindsMentioned(text: string): { ground?: GroundKind; sky?: SkyKind } {
  const t = text.toLowerCase().replace(/snow-capped/g, '');
  const grounds = GROUND_KINDS.filter((k) => GROUND_KEYWORDS[k].test(t));
  const skies = SKY_KINDS.filter((k) => SKY_KEYWORDS[k].test(t));
  return { ground: grounds.length === 1 ? grounds[0] : undefined, sky: skies.length === 1 ? skies[0] : undefined };
}

const COUNT_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const PLURALS: Record<Species, string> = { cow: 'cows', sheep: 'sheep', horse: 'horses' };
const COAT_WORDS: Record<Coat, readonly string[]> = {
  brown: ['brown'],
  black: ['black'],
  white: ['white'],
  spotted: ['black and white', 'spotted black and white'],
};

/** A group of animals of one species and coat, as a caption names them. */
export interface AnimalGroup {
  species: Species;
  coat: Coat;
  count: number;
}

/** What a caption is about: the sky, the ground, animal groups and optional scenery. */
export interface CaptionSpec {
  sky: SkyKind;
  ground: GroundKind;
  groups: AnimalGroup[];
  mountains?: 'plain' | 'snow-capped';
  lake?: boolean;
  trees?: number;
}

/** The animal groups of a scene (same species and coat), largest first. */
export function animalGroups(scene: Scene): AnimalGroup[] {
  const groups = new Map<string, AnimalGroup>();
  for (const a of scene.animals) {
    const key = `${a.species}:${a.coat}`;
    const g = groups.get(key) ?? { species: a.species, coat: a.coat, count: 0 };
    g.count++;
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || SPECIES.indexOf(a.species) - SPECIES.indexOf(b.species));
}

/** The caption spec of a scene. */
export function sceneCaptionSpec(scene: Scene): CaptionSpec {
  return {
    sky: scene.sky,
    ground: scene.ground,
    groups: animalGroups(scene),
    mountains: scene.mountains.length === 0 ? undefined : scene.mountains.some((m) => m.snowCap) ? 'snow-capped' : 'plain',
    lake: scene.lake !== null,
    trees: scene.trees.length,
  };
}

type Style = 'full' | 'count' | 'colour' | 'bare';

function groupPhrase(g: AnimalGroup, style: Style, rng: Rng): string {
  const noun = g.count === 1 ? g.species : PLURALS[g.species];
  const colour = rng.pick(COAT_WORDS[g.coat]);
  const one = rng.pick(['a', 'one']);
  const count = g.count === 1 ? one : (COUNT_WORDS[g.count] ?? 'many');
  switch (style) {
    case 'full':
      return `${count} ${g.species === 'sheep' && rng.chance(0.3) ? 'fluffy ' : ''}${colour} ${noun}`;
    case 'count':
      return `${count} ${noun}`;
    case 'colour':
      return g.count === 1 ? `a ${colour} ${noun}` : `${colour} ${noun}`;
    case 'bare':
      return g.count === 1 ? `a ${noun}` : PLURALS[g.species];
  }
}

function joinAnd(parts: string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

function sceneryExtras(spec: CaptionSpec, rng: Rng): string[] {
  const extras: string[] = [];
  if (spec.mountains) extras.push(spec.mountains === 'snow-capped' ? rng.pick(['snow-capped mountains', 'a snow-capped mountain']) : rng.pick(['mountains', 'a mountain']));
  if (spec.lake) extras.push(rng.pick(['a lake', 'a small lake']));
  if (spec.trees) extras.push(spec.trees === 1 ? 'a tree' : rng.pick(['trees', 'some trees']));
  return extras;
}

/** One caption for a spec, drawn from the grammar; `style` controls how animals are named. */
export function composeCaption(spec: CaptionSpec, rng: Rng, style: Style = 'full'): string {
  const G = rng.pick(GROUND_PHRASES[spec.ground]);
  const K = rng.pick(SKY_PHRASES[spec.sky]);
  const extras = sceneryExtras(spec, rng);
  if (spec.groups.length === 0) {
    const noun = rng.pick(GROUND_NOUNS[spec.ground]);
    const templates: (() => string)[] = [
      () => `${noun} ${K}`,
      () => `an empty landscape ${G} ${K}`,
    ];
    if (extras.length > 0) {
      templates.push(
        () => `${noun} with ${joinAnd(extras)} ${K}`,
        () => `${joinAnd(extras)} ${G} ${K}`,
        () => `${rng.pick(SKY_LEADS[spec.sky])}, ${joinAnd(extras)} ${G}`,
      );
    }
    return rng.pick(templates)();
  }
  const S = joinAnd(spec.groups.map((g) => groupPhrase(g, style, rng)));
  const verb = rng.pick(['standing', 'grazing', 'resting']);
  const templates: (() => string)[] = [
    () => `${S} ${G} ${K}`,
    () => `${S} ${verb} ${G} ${K}`,
    () => `${rng.pick(SKY_LEADS[spec.sky])}, ${S} ${G}`,
    () => `${rng.pick(GROUND_NOUNS[spec.ground])} with ${S} ${K}`,
  ];
  if (extras.length > 0) {
    const extra = rng.pick(extras);
    templates.push(
      () => `${S} ${G} near ${extra} ${K}`,
      () => `${S} ${G} with ${joinAnd(extras)} ${K}`,
    );
  }
  return rng.pick(templates)();
}

/**
 * Three to five distinct captions for a scene. The first names every animal group with its count
 * and colour; the others vary phrasing and sometimes drop counts or colours ("cows in the snow at night").
 */
export function captionScene(scene: Scene, source: Rng | number): string[] {
  const rng = typeof source === 'number' ? new Rng(source) : source;
  const spec = sceneCaptionSpec(scene);
  const want = rng.int(3, 5);
  const out: string[] = [];
  for (let attempt = 0; out.length < want && attempt < 60; attempt++) {
    const style: Style = out.length === 0 ? 'full' : rng.weighted([['full', 0.6], ['count', 0.15], ['colour', 0.13], ['bare', 0.12]] as const);
    const caption = composeCaption(spec, rng, style);
    if (!out.includes(caption)) out.push(caption);
  }
  return out;
}

/** A prompt for checking a model, with the sky and ground its image should show. */
export interface HeldOutPrompt {
  prompt: string;
  sky: SkyKind;
  ground: GroundKind;
}

/** Sky kinds used by held-out prompts (the quality check's blue / sunset / night). */
export const HELD_OUT_SKIES: readonly SkyKind[] = ['blue', 'sunset', 'night'];

/**
 * `n` prompts built from the scene grammar for a model quality check, e.g. "two cows on snow under a
 * night sky", each with the ground and sky kinds it names. Ground kinds (grass, snow, field, sand) and
 * skies (blue, sunset, night) cycle through all twelve combinations in shuffled blocks, so any n that
 * is a multiple of 12 is balanced. Drawn from their own seed, independent of any dataset's scenes;
 * pass the training captions as `exclude` to keep prompts that appear there verbatim out.
 */
export function heldOutPrompts(seed: number, n: number, opts: { exclude?: ReadonlySet<string> } = {}): HeldOutPrompt[] {
  const rng = new Rng(seed ^ 0x68e1d0);
  const combos: [GroundKind, SkyKind][] = [];
  for (const g of GROUND_KINDS) for (const s of HELD_OUT_SKIES) combos.push([g, s]);
  const out: HeldOutPrompt[] = [];
  let block: [GroundKind, SkyKind][] = [];
  const seen = new Set<string>();
  let draws = 0;
  while (out.length < n) {
    if (++draws > 200 * (n + 12)) throw new RangeError(`cannot draw ${n} distinct held-out prompts from the grammar`);
    if (block.length === 0) block = rng.shuffled(combos);
    const [ground, sky] = block[block.length - 1];
    const groups: AnimalGroup[] = [];
    if (rng.chance(0.85)) {
      const species = rng.pick(SPECIES);
      groups.push({ species, coat: rng.pick(COATS[species]), count: rng.int(1, 4) });
    }
    const spec: CaptionSpec = {
      sky,
      ground,
      groups,
      mountains: rng.chance(0.2) ? (rng.chance(0.5) ? 'snow-capped' : 'plain') : undefined,
      lake: rng.chance(0.15),
    };
    const style = rng.weighted([['full', 0.5], ['count', 0.2], ['colour', 0.15], ['bare', 0.15]] as const);
    const prompt = composeCaption(spec, rng, style);
    if (opts.exclude?.has(prompt) || seen.has(prompt)) continue; // draw another prompt for the same combination
    seen.add(prompt);
    block.pop();
    out.push({ prompt, sky, ground });
  }
  return out;
}
