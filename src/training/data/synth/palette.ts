/**
 * Colours of the synthetic scenes, per sky and ground kind, and a classifier that maps an RGB
 * image's top band (sky) and bottom band (ground) back to the nearest kinds.
 *
 * The scene renderer guarantees that the top band holds only sky (and small celestial bodies or
 * clouds) and the bottom band only ground, so the classifier is exact enough to check whether a
 * generated image shows the sky and ground that its prompt asked for.
 */

/** Kinds of sky a scene can have. */
export const SKY_KINDS = ['blue', 'cloudy', 'sunset', 'night'] as const;
export type SkyKind = (typeof SKY_KINDS)[number];

/** Kinds of ground a scene can have (`field` is a yellow wheat field). */
export const GROUND_KINDS = ['grass', 'snow', 'field', 'sand'] as const;
export type GroundKind = (typeof GROUND_KINDS)[number];

/** An RGB colour, channels 0–255 (fractional values allowed while drawing). */
export type Rgb = readonly [number, number, number];

/** Fraction of the image height, from the top, that is always sky (no mountains, trees or animals). */
export const SKY_BAND = 0.2;
/** Fraction of the image height, from the bottom, that is always ground (no lake, trees or animals). */
export const GROUND_BAND = 0.14;

/** Sky colour stops along t = y / horizonY (0 at the top of the image, 1 at the horizon). */
export const SKY_GRADIENTS: Record<SkyKind, readonly (readonly [number, Rgb])[]> = {
  blue: [[0, [52, 112, 206]], [1, [168, 206, 240]]],
  cloudy: [[0, [116, 122, 134]], [1, [180, 184, 192]]],
  sunset: [[0, [88, 56, 130]], [0.55, [214, 100, 100]], [1, [252, 178, 84]]],
  night: [[0, [6, 10, 32]], [1, [36, 48, 96]]],
};

/** Cloud colours (light body, darker underside) per sky; night skies have no drawn clouds. */
export const CLOUD_COLOURS: Record<SkyKind, { light: Rgb; dark: Rgb }> = {
  blue: { light: [246, 248, 252], dark: [214, 222, 234] },
  cloudy: { light: [196, 198, 204], dark: [146, 150, 160] },
  sunset: { light: [246, 160, 150], dark: [176, 96, 118] },
  night: { light: [52, 60, 96], dark: [30, 36, 66] },
};

/** Ground colours under neutral daylight, near the viewer. */
export const GROUND_COLOURS: Record<GroundKind, Rgb> = {
  grass: [72, 150, 56],
  snow: [238, 242, 250],
  field: [222, 178, 36],
  sand: [212, 174, 118],
};

/** Per-channel light multipliers applied to everything on the ground under each sky. */
export const SKY_LIGHT: Record<SkyKind, Rgb> = {
  blue: [1, 1, 1],
  cloudy: [0.86, 0.87, 0.9],
  sunset: [1, 0.9, 0.82],
  night: [0.55, 0.58, 0.72],
};

/** Linear interpolation between two colours. */
export function mixRgb(a: Rgb, b: Rgb, t: number): [number, number, number] {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** A colour under a sky's light. */
export function litRgb(c: Rgb, sky: SkyKind): [number, number, number] {
  const l = SKY_LIGHT[sky];
  return [Math.min(255, c[0] * l[0]), Math.min(255, c[1] * l[1]), Math.min(255, c[2] * l[2])];
}

/** The sky colour at t = y / horizonY (clamped to [0, 1]). */
export function skyColourAt(sky: SkyKind, t: number): [number, number, number] {
  const stops = SKY_GRADIENTS[sky];
  const u = Math.min(1, Math.max(0, t));
  for (let i = 1; i < stops.length; i++) {
    const [t1, c1] = stops[i];
    if (u <= t1) {
      const [t0, c0] = stops[i - 1];
      return mixRgb(c0, c1, t1 === t0 ? 0 : (u - t0) / (t1 - t0));
    }
  }
  const last = stops[stops.length - 1][1];
  return [last[0], last[1], last[2]];
}

/** How much the far ground fades towards the horizon colour of the sky (aerial perspective). */
export const GROUND_HAZE = 0.3;

/**
 * The ground colour at depth d (0 at the horizon, 1 at the bottom of the image), lit by the sky:
 * near ground is the kind's own colour, far ground fades towards the sky's horizon colour.
 */
export function groundColourAt(ground: GroundKind, sky: SkyKind, d: number): [number, number, number] {
  const near = litRgb(GROUND_COLOURS[ground], sky);
  const u = Math.min(1, Math.max(0, d));
  return mixRgb(skyColourAt(sky, 1), near, 1 - GROUND_HAZE * (1 - u) * (1 - u));
}

interface Reference<K> {
  kind: K;
  colour: Rgb;
}

function skyReferences(): Reference<SkyKind>[] {
  const refs: Reference<SkyKind>[] = [];
  for (const sky of SKY_KINDS) {
    // The top band covers t in [0, ~0.45] for horizons between 0.45 and 0.62 of the height.
    for (const t of [0, 0.1, 0.2, 0.3, 0.4, 0.5]) refs.push({ kind: sky, colour: skyColourAt(sky, t) });
  }
  refs.push({ kind: 'cloudy', colour: CLOUD_COLOURS.cloudy.light }, { kind: 'cloudy', colour: CLOUD_COLOURS.cloudy.dark });
  return refs;
}

function groundReferences(): Reference<GroundKind>[] {
  const refs: Reference<GroundKind>[] = [];
  for (const ground of GROUND_KINDS) {
    for (const sky of SKY_KINDS) {
      // The bottom band lies at depth >= ~0.7 for every horizon the scenes use.
      for (const d of [0.7, 0.85, 1]) refs.push({ kind: ground, colour: groundColourAt(ground, sky, d) });
    }
  }
  return refs;
}

const SKY_REFS = skyReferences();
const GROUND_REFS = groundReferences();

function nearest<K>(refs: readonly Reference<K>[], r: number, g: number, b: number): K {
  let best = refs[0].kind;
  let bestD = Infinity;
  for (const ref of refs) {
    const dr = r - ref.colour[0];
    const dg = g - ref.colour[1];
    const db = b - ref.colour[2];
    const d = dr * dr + dg * dg + db * db;
    if (d < bestD) {
      bestD = d;
      best = ref.kind;
    }
  }
  return best;
}

function voteBand<K extends string>(
  image: Uint8Array, size: number, rowStart: number, rowEnd: number, refs: readonly Reference<K>[], kinds: readonly K[],
): K {
  const votes = new Map<K, number>(kinds.map((k) => [k, 0]));
  for (let y = rowStart; y < rowEnd; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const k = nearest(refs, image[i], image[i + 1], image[i + 2]);
      votes.set(k, (votes.get(k) ?? 0) + 1);
    }
  }
  let best = kinds[0];
  for (const k of kinds) if ((votes.get(k) ?? 0) > (votes.get(best) ?? 0)) best = k;
  return best;
}

/**
 * Classifies an RGB image (HxWx3, row-major, `size` x `size`) into the sky kind of its top band and
 * the ground kind of its bottom band: every pixel of a band votes for the kind of its nearest
 * palette colour (all gradient positions and lightings), and the majority wins.
 */
export function classifyColours(image: Uint8Array, size: number): { sky: SkyKind; ground: GroundKind } {
  if (!Number.isInteger(size) || size < 4) throw new RangeError(`size must be an integer >= 4, got ${size}`);
  if (image.length !== size * size * 3) {
    throw new RangeError(`image has ${image.length} bytes; a ${size}x${size} RGB image has ${size * size * 3}`);
  }
  const skyRows = Math.max(1, Math.floor(size * SKY_BAND));
  const groundStart = Math.min(size - 1, Math.ceil(size * (1 - GROUND_BAND)));
  return {
    sky: voteBand(image, size, 0, skyRows, SKY_REFS, SKY_KINDS),
    ground: voteBand(image, size, groundStart, size, GROUND_REFS, GROUND_KINDS),
  };
}
