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

/** Phrases placing something on a ground; the first is the canonical one, each names GROUND_KEYWORDS[kind]. */
export const GROUND_PHRASES: Record<GroundKind, readonly string[]> = {
  grass: ['on green grass', 'on a green meadow', 'in a green pasture', 'on the grass', 'in a meadow', 'on a grassy hill', 'in a grassy field', 'on a lawn'],
  snow: ['in the snow', 'on snowy ground', 'in a snowy landscape', 'in snow', 'in a snowy field', 'on a snowfield', 'in the winter snow', 'on snow'],
  field: ['in a yellow field', 'in a yellow wheat field', 'in a golden wheat field', 'in a wheat field', 'in a field of wheat', 'in a golden field', 'in a field'],
  sand: ['on the sand', 'on sandy ground', 'among sand dunes', 'on the beach', 'in the desert', 'on a sandy beach', 'in sand', 'on the dunes'],
};

/** Noun phrases for a ground as the subject of a caption; the first is the canonical one. */
export const GROUND_NOUNS: Record<GroundKind, readonly string[]> = {
  grass: ['green grass', 'a green meadow', 'a grassy pasture', 'a meadow', 'a green field', 'a grassy hill', 'a lawn'],
  snow: ['snowy ground', 'a snowy plain', 'a snowy landscape', 'a snowy field', 'a snowfield', 'a winter landscape covered in snow'],
  field: ['a yellow field', 'a yellow wheat field', 'a field of golden wheat', 'a wheat field', 'a golden field', 'farmland with wheat'],
  sand: ['sandy ground', 'sand dunes', 'a sandy desert', 'a beach', 'a desert', 'a sandy beach'],
};

/** Trailing phrases for a sky; the first is the canonical one, each names SKY_KEYWORDS[kind]. */
export const SKY_PHRASES: Record<SkyKind, readonly string[]> = {
  blue: ['under a blue sky', 'under a clear blue sky', 'on a sunny day under a blue sky', 'on a sunny day', 'under a clear sky', 'in the sunshine', 'in bright daylight'],
  cloudy: ['under a cloudy sky', 'under grey clouds', 'on an overcast day', 'on a cloudy day', 'under a grey sky', 'under heavy clouds', 'under clouds'],
  sunset: ['at sunset', 'under a sunset sky', 'under an orange sunset sky', 'at dusk', 'in the evening', 'under an orange sky', 'at sundown'],
  night: ['at night', 'under a night sky', 'under a starry night sky', 'under the stars', 'at midnight', 'on a dark night', 'under a dark starry sky'],
};

/** Leading phrases for a sky ("at sunset, ..."). */
export const SKY_LEADS: Record<SkyKind, readonly string[]> = {
  blue: ['under a blue sky', 'on a sunny day with a blue sky', 'on a sunny day', 'under a clear sky'],
  cloudy: ['under a cloudy sky', 'on a cloudy day', 'on an overcast day', 'under grey clouds'],
  sunset: ['at sunset', 'at dusk under a sunset sky', 'at dusk', 'in the evening'],
  night: ['at night', 'on a starry night', 'under the stars', 'at midnight'],
};

/**
 * Words that identify each ground kind in a caption or prompt. A field that is snowy, grassy or green is
 * snow or grass, not the yellow wheat field.
 */
export const GROUND_KEYWORDS: Record<GroundKind, RegExp> = {
  grass: /\b(grass|grassy|meadows?|pastures?|lawn|green field)\b/,
  snow: /\b(snow|snowy|snowfield|snow-covered)\b/,
  field: /\b(wheat|farmland|(?<!(snowy|grassy|green|snow-covered) )fields?)\b/,
  sand: /\b(sand|sandy|dunes?|desert|beach)\b/,
};

/** Words that identify each sky kind in a caption or prompt. */
export const SKY_KEYWORDS: Record<SkyKind, RegExp> = {
  blue: /\b(blue sky|sunny|clear sky|sunshine|daylight)\b/,
  cloudy: /\b(cloudy|clouds|overcast|gr[ae]y sky)\b/,
  sunset: /\b(sunset|dusk|evening|sundown|orange sky)\b/,
  night: /\b(night|starry|stars|midnight)\b/,
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
      return `${g.count > 1 && rng.chance(0.3) ? rng.pick(['some', 'a few', 'several']) : count} ${noun}`;
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

/**
 * How a caption is laid out. `plain`: subject, ground, sky ("two cows in the snow at night"), the form
 * held-out prompts use; `scenery`: ground and sky only ("a snowy plain at night"); `varied`: any template,
 * mostly keeping the subject → ground → sky order.
 */
export type CaptionForm = 'plain' | 'scenery' | 'varied';

type Template = readonly [() => string, number];

/**
 * Share of ground and sky phrases in varied captions that use a synonym instead of the canonical phrase.
 * The scene CLIP learns every word (its tokenizer makes each grammar word one token), so synonyms teach it
 * that "beach", "sand" and "dunes" are one ground; the canonical phrase stays the most common.
 */
export const SYNONYM_RATE = 0.5;

/** Share of varied captions that leave the sky out ("cows in the snow"), as short prompts do. */
export const NO_SKY_RATE = 0.15;

const PREFIXES = ['a photo of', 'a picture of', 'an image of', 'a painting of'] as const;

/** One caption for a spec, drawn from the grammar; `style` controls how animals are named. */
export function composeCaption(spec: CaptionSpec, rng: Rng, style: Style = 'full', form: CaptionForm = 'varied'): string {
  // The first phrase of each list is the canonical one; synonyms only appear in varied captions.
  const choose = (phrases: readonly string[]) => (form === 'varied' && rng.chance(SYNONYM_RATE) ? rng.pick(phrases.slice(1)) : phrases[0]);
  const G = choose(GROUND_PHRASES[spec.ground]);
  const noSky = form === 'varied' && rng.chance(NO_SKY_RATE);
  const K = noSky ? '' : ` ${choose(SKY_PHRASES[spec.sky])}`;
  const noun = choose(GROUND_NOUNS[spec.ground]);
  if (form === 'scenery') return `${noun}${K}`;
  const prefixed = (text: string) => (form === 'varied' && rng.chance(0.1) ? `${rng.pick(PREFIXES)} ${text}` : text);
  if (spec.groups.length === 0) {
    if (form === 'plain') return `${noun}${K}`;
    const extras = sceneryExtras(spec, rng);
    const templates: Template[] = [
      [() => `${noun}${K}`, 2],
      [() => `an empty landscape ${G}${K}`, 1],
    ];
    if (extras.length > 0) {
      templates.push(
        [() => `${noun} with ${joinAnd(extras)}${K}`, 2],
        [() => `${joinAnd(extras)} ${G}${K}`, 2],
      );
      if (!noSky) templates.push([() => `${choose(SKY_LEADS[spec.sky])}, ${joinAnd(extras)} ${G}`, 1]);
    }
    return prefixed(pickTemplate(rng, templates));
  }
  const S = joinAnd(spec.groups.map((g) => groupPhrase(g, style, rng)));
  if (form === 'plain') return `${S} ${G}${K}`;
  const extras = sceneryExtras(spec, rng);
  const verb = rng.pick(['standing', 'grazing', 'resting', 'walking']);
  const templates: Template[] = [
    [() => `${S} ${G}${K}`, 4],
    [() => `${S} ${verb} ${G}${K}`, 3],
    [() => `${noun} with ${S}${K}`, 2],
  ];
  if (!noSky) templates.push([() => `${choose(SKY_LEADS[spec.sky])}, ${S} ${G}`, 1]);
  if (extras.length > 0) {
    const extra = rng.pick(extras);
    templates.push(
      [() => `${S} ${G} near ${extra}${K}`, 2],
      [() => `${S} ${G} with ${joinAnd(extras)}${K}`, 1],
    );
  }
  return prefixed(pickTemplate(rng, templates));
}

function pickTemplate(rng: Rng, templates: readonly Template[]): string {
  const total = templates.reduce((sum, [, w]) => sum + w, 0);
  let r = rng.next() * total;
  for (const [make, w] of templates) {
    r -= w;
    if (r < 0) return make();
  }
  return templates[templates.length - 1][0]();
}

/**
 * Three to five distinct captions for a scene: first the plain form naming every animal group with
 * its count and colour ("two brown cows in the snow at night"), then ground and sky alone ("a snowy
 * plain at night"), then varied phrasings that sometimes drop counts or colours. Every caption names
 * the ground and the sky with the words of GROUND_KEYWORDS / SKY_KEYWORDS.
 */
export function captionScene(scene: Scene, source: Rng | number): string[] {
  const rng = typeof source === 'number' ? new Rng(source) : source;
  const spec = sceneCaptionSpec(scene);
  const want = rng.int(3, 5);
  const out: string[] = [composeCaption(spec, rng, 'full', 'plain')];
  const scenery = composeCaption(spec, rng, 'full', 'scenery');
  if (!out.includes(scenery)) out.push(scenery);
  for (let attempt = 0; out.length < want && attempt < 60; attempt++) {
    const style: Style = rng.weighted([['full', 0.55], ['count', 0.15], ['colour', 0.15], ['bare', 0.15]] as const);
    const caption = composeCaption(spec, rng, style);
    if (!out.includes(caption)) out.push(caption);
  }
  return out;
}

/**
 * A held-out prompt: the plain layout (subject, ground, sky) with any of the grammar's ground and sky
 * phrases, or the sky first, or the ground as the subject ("a snowy field with two cows at night"); the sky
 * and ground are always named, so the prompt says what its image should show.
 */
function heldOutPhrasing(spec: CaptionSpec, style: Style, rng: Rng): string {
  const G = rng.pick(GROUND_PHRASES[spec.ground]);
  const K = rng.pick(SKY_PHRASES[spec.sky]);
  const noun = rng.pick(GROUND_NOUNS[spec.ground]);
  if (spec.groups.length === 0) return `${noun} ${K}`;
  const S = joinAnd(spec.groups.map((g) => groupPhrase(g, style, rng)));
  const layout = rng.weighted([['plain', 0.6], ['lead', 0.2], ['with', 0.2]] as const);
  if (layout === 'lead') return `${rng.pick(SKY_LEADS[spec.sky])}, ${S} ${G}`;
  if (layout === 'with') return `${noun} with ${S} ${K}`;
  return `${S} ${G} ${K}`;
}

/** A prompt for checking a model, with the sky and ground its image should show. */
export interface HeldOutPrompt {
  prompt: string;
  sky: SkyKind;
  ground: GroundKind;
  /** The species the prompt names (empty for a landscape without animals). */
  species: Species[];
}

/** Sky kinds used by held-out prompts (the quality check's blue / sunset / night). */
export const HELD_OUT_SKIES: readonly SkyKind[] = SKY_KINDS;

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
    const groupCount = rng.weighted([[0, 0.1], [1, 0.7], [2, 0.2]] as const);
    while (groups.length < groupCount) {
      const species = rng.pick(SPECIES);
      const coat = rng.pick(COATS[species]);
      if (!groups.some((g) => g.species === species && g.coat === coat)) groups.push({ species, coat, count: rng.int(1, 4) });
    }
    const style = rng.weighted([['full', 0.3], ['count', 0.2], ['colour', 0.2], ['bare', 0.3]] as const);
    const prompt = heldOutPhrasing({ sky, ground, groups }, style, rng);
    if (opts.exclude?.has(prompt) || seen.has(prompt)) continue; // draw another prompt for the same combination
    seen.add(prompt);
    block.pop();
    out.push({ prompt, sky, ground, species: [...new Set(groups.map((g) => g.species))] });
  }
  return out;
}
