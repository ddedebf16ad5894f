/**
 * How well a CLIP finds, for a text, an image that shows it: text-to-image retrieval over labelled renders
 * of the synthetic scenes that no training caption described. For each held-out prompt the images are
 * ranked by cosine similarity; the top image counts as right on sky and ground when both match the
 * prompt's, and right on species when it shows every species the prompt names.
 */
import {
  HELD_OUT_SKIES,
  GROUND_KINDS,
  heldOutPrompts,
  itemSeed,
  randomScene,
  renderScene,
  type GroundKind,
  type HeldOutPrompt,
  type SkyKind,
  type Species,
} from '../data/synth/index.js';
import { sceneLabels, type SceneLabels } from '../judge/scene-judge.js';

/** What a labelled render shows. */
export type RenderLabels = SceneLabels;

/** Labelled renders: `pixels` are `size² × 3` RGB bytes. */
export interface LabelledRender extends RenderLabels {
  pixels: Uint8Array;
}

/** `n` renders of random scenes drawn from `seed` (use a seed no training set used). */
export function labelledRenders(seed: number, n: number, size: number): LabelledRender[] {
  return Array.from({ length: n }, (_, i) => {
    const scene = randomScene(itemSeed(seed, i));
    return { pixels: renderScene(scene, size), ...sceneLabels(scene) };
  });
}

/** Per-prompt outcome of a retrieval. */
export interface RetrievalItem {
  prompt: string;
  sky: SkyKind;
  ground: GroundKind;
  species: Species[];
  /** Index of the top-ranked image and what it shows. */
  top: number;
  got: RenderLabels;
  skyGroundRight: boolean;
  /** Undefined when the prompt names no species. */
  speciesRight?: boolean;
}

export interface RetrievalReport {
  prompts: number;
  images: number;
  /** Share of prompts whose top image has the right sky and ground. */
  skyGround: number;
  sky: number;
  ground: number;
  /** Share of the prompts naming species whose top image shows every species named. */
  species: number;
  items: RetrievalItem[];
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Scores text-to-image retrieval; embeddings are L2-normalised (as the embedder returns them). */
export function scoreRetrieval(
  prompts: readonly HeldOutPrompt[],
  textEmbeddings: readonly Float32Array[],
  images: readonly RenderLabels[],
  imageEmbeddings: readonly Float32Array[],
): RetrievalReport {
  if (prompts.length !== textEmbeddings.length || images.length !== imageEmbeddings.length) {
    throw new RangeError('each prompt and each image needs one embedding');
  }
  const items = prompts.map((p, i): RetrievalItem => {
    let top = 0;
    let best = -Infinity;
    imageEmbeddings.forEach((e, j) => {
      const s = dot(textEmbeddings[i], e);
      if (s > best) {
        best = s;
        top = j;
      }
    });
    const got = images[top];
    return {
      prompt: p.prompt,
      sky: p.sky,
      ground: p.ground,
      species: p.species,
      top,
      got: { sky: got.sky, ground: got.ground, species: got.species },
      skyGroundRight: got.sky === p.sky && got.ground === p.ground,
      speciesRight: p.species.length === 0 ? undefined : p.species.every((s) => got.species.includes(s)),
    };
  });
  const share = (f: (it: RetrievalItem) => boolean, of = items) => (of.length === 0 ? 0 : of.filter(f).length / of.length);
  const withSpecies = items.filter((it) => it.speciesRight !== undefined);
  return {
    prompts: items.length,
    images: images.length,
    skyGround: share((it) => it.skyGroundRight),
    sky: share((it) => it.got.sky === it.sky),
    ground: share((it) => it.got.ground === it.ground),
    species: share((it) => it.speciesRight === true, withSpecies),
    items,
  };
}

/** What {@link evaluateRetrieval} needs from a CLIP (the embedder, or the TensorFlow.js model in tests). */
export interface RetrievalEmbedder {
  embedTexts(texts: string[]): Promise<Float32Array[]>;
  /** Embeds RGB renders of `size` px. */
  embedRenders(pixels: Uint8Array[], size: number): Promise<Float32Array[]>;
}

/** The standard check: `prompts` held-out prompts (seed 11) against `images` renders of unseen scenes (seed 424242). */
export async function evaluateRetrieval(
  clip: RetrievalEmbedder,
  size: number,
  opts: { prompts?: number; images?: number; promptSeed?: number; imageSeed?: number; exclude?: ReadonlySet<string> } = {},
): Promise<RetrievalReport> {
  const n = opts.prompts ?? GROUND_KINDS.length * HELD_OUT_SKIES.length * 6;
  const prompts = heldOutPrompts(opts.promptSeed ?? 11, n, { exclude: opts.exclude });
  const renders = labelledRenders(opts.imageSeed ?? 424242, opts.images ?? 400, size);
  const textEmbeddings = await clip.embedTexts(prompts.map((p) => p.prompt));
  const imageEmbeddings = await clip.embedRenders(renders.map((r) => r.pixels), size);
  return scoreRetrieval(prompts, textEmbeddings, renders, imageEmbeddings);
}
