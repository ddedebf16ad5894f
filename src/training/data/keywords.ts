/**
 * The bucolic caption filter: which COCO captions talk about cows, sheep, grass, mountains...
 * Keywords match whole words, case-insensitively, in the singular and the plural
 * ("cow"/"cows", "pasture"/"pastures", "sheep"/"sheep", "pony"/"ponies", "calf"/"calves").
 */

/** The seed's keyword list. */
export const DEFAULT_BUCOLIC_KEYWORDS: readonly string[] = [
  'cow', 'sheep', 'lamb', 'horse', 'grass', 'field', 'pasture', 'meadow', 'farm', 'hill', 'mountain', 'snow',
  'countryside',
];

/** Plurals that adding "s"/"es" does not produce. Identical singular/plural (sheep, deer) need no entry. */
const IRREGULAR_PLURALS: Readonly<Record<string, string[]>> = {
  calf: ['calves'],
  wolf: ['wolves'],
  leaf: ['leaves'],
  ox: ['oxen'],
  goose: ['geese'],
  mouse: ['mice'],
  foot: ['feet'],
};

/** Words that are their own plural: no "sheeps". */
const INVARIANT = new Set(['sheep', 'deer', 'fish', 'bison', 'moose', 'swine', 'cattle']);

/** A compiled keyword: its name and the regular expression that finds it in a caption. */
export interface KeywordMatcher {
  keyword: string;
  /** All word forms the keyword matches (singular first). */
  forms: string[];
  pattern: RegExp;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The word forms one keyword matches: itself and its plural(s). Multi-word keywords pluralise the last word. */
export function keywordForms(keyword: string): string[] {
  const k = keyword.trim().toLowerCase().replace(/\s+/g, ' ');
  if (!k) return [];
  const lastSpace = k.lastIndexOf(' ');
  const head = lastSpace >= 0 ? k.slice(0, lastSpace + 1) : '';
  const last = k.slice(lastSpace + 1);
  const plurals = new Set<string>();
  if (IRREGULAR_PLURALS[last]) for (const p of IRREGULAR_PLURALS[last]) plurals.add(p);
  if (!INVARIANT.has(last) && !IRREGULAR_PLURALS[last]) {
    if (/(s|x|z|ch|sh)$/.test(last)) plurals.add(`${last}es`);
    else if (/[^aeiou]y$/.test(last)) plurals.add(`${last.slice(0, -1)}ies`);
    else plurals.add(`${last}s`);
  }
  plurals.delete(last);
  return [k, ...[...plurals].map((p) => head + p)];
}

/**
 * Compiles keywords into matchers. Matching is whole-word (letters and digits on either side break a match,
 * so "cow" does not match "scow" or "cowboy"; hyphens and apostrophes separate words: "snow-capped" matches "snow").
 */
export function compileKeywords(keywords: readonly string[]): KeywordMatcher[] {
  const seen = new Set<string>();
  const out: KeywordMatcher[] = [];
  for (const raw of keywords) {
    const forms = keywordForms(raw);
    if (forms.length === 0 || seen.has(forms[0])) continue;
    seen.add(forms[0]);
    const alternatives = [...forms]
      .sort((a, b) => b.length - a.length)
      .map((f) => f.split(' ').map(escapeRegExp).join('\\s+'))
      .join('|');
    out.push({
      keyword: forms[0],
      forms,
      pattern: new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives})(?![\\p{L}\\p{N}])`, 'iu'),
    });
  }
  return out;
}

/** Parses a `--keywords a,b,c` value into a list (empty entries dropped). */
export function parseKeywordList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The keywords (by their singular form) that a caption mentions, in matcher order. */
export function matchCaption(caption: string, matchers: readonly KeywordMatcher[]): string[] {
  const hits: string[] = [];
  for (const m of matchers) if (m.pattern.test(caption)) hits.push(m.keyword);
  return hits;
}
