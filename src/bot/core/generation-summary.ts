/**
 * The one-line text of a generation reply (prompt, seeds, variation, model), shared by the in-process core and
 * the scaled-mode worker so a reply reads the same whichever process rendered it.
 */
import type { GenerationKind } from './store/index.js';

/** `“cows in snow” · seeds 7–10 · model demo` (with ` · variation N` for variations). */
export function generationSummary(r: { prompt: string; seeds: number[]; model: string; kind: GenerationKind; variationSeed: number | null }): string {
  const seedText = r.seeds.length === 1 ? `seed ${r.seeds[0]}` : `seeds ${r.seeds[0]}–${r.seeds.at(-1)}`;
  const what = r.kind === 'variations' ? ` · variation ${r.variationSeed}` : '';
  return `“${r.prompt}” · ${seedText}${what} · model ${r.model}`;
}
