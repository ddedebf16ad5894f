/**
 * Draws a scene description into an RGB image (HxWx3 uint8, row-major) in pure TypeScript.
 * Shapes are filled without anti-aliasing on a canvas `supersample` times larger, then box-filtered
 * down to the target size, which anti-aliases every edge.
 */
import {
  CLOUD_COLOURS, GROUND_COLOURS, groundColourAt, litRgb, mixRgb, skyColourAt, type Rgb, type SkyKind,
} from './palette.js';
import { Rng } from './random.js';
import type { Animal, Mountain, Scene, Tree } from './scene.js';

type Point = readonly [number, number];

/** A float RGB canvas with span-based fills (pixel centres at +0.5). */
class Canvas {
  readonly data: Float32Array;

  constructor(readonly size: number) {
    this.data = new Float32Array(size * size * 3);
  }

  /** Blends `c` into pixels x0..x1 (inclusive) of row y. */
  span(y: number, x0: number, x1: number, c: Rgb, alpha = 1): void {
    if (y < 0 || y >= this.size) return;
    const a = Math.max(0, x0);
    const b = Math.min(this.size - 1, x1);
    let i = (y * this.size + a) * 3;
    const d = this.data;
    if (alpha >= 1) {
      for (let x = a; x <= b; x++, i += 3) {
        d[i] = c[0];
        d[i + 1] = c[1];
        d[i + 2] = c[2];
      }
    } else {
      const k = 1 - alpha;
      for (let x = a; x <= b; x++, i += 3) {
        d[i] = d[i] * k + c[0] * alpha;
        d[i + 1] = d[i + 1] * k + c[1] * alpha;
        d[i + 2] = d[i + 2] * k + c[2] * alpha;
      }
    }
  }

  /** Axis-aligned ellipse; `clip` (optional) keeps only the pixels it accepts. */
  ellipse(cx: number, cy: number, rx: number, ry: number, c: Rgb, alpha = 1, clip?: (x: number, y: number) => boolean): void {
    if (rx <= 0 || ry <= 0) return;
    const y0 = Math.max(0, Math.ceil(cy - ry - 0.5));
    const y1 = Math.min(this.size - 1, Math.floor(cy + ry - 0.5));
    for (let y = y0; y <= y1; y++) {
      const dy = (y + 0.5 - cy) / ry;
      const q = 1 - dy * dy;
      if (q <= 0) continue;
      const half = rx * Math.sqrt(q);
      const xa = Math.ceil(cx - half - 0.5);
      const xb = Math.floor(cx + half - 0.5);
      if (!clip) {
        this.span(y, xa, xb, c, alpha);
      } else {
        for (let x = Math.max(0, xa); x <= Math.min(this.size - 1, xb); x++) if (clip(x + 0.5, y + 0.5)) this.span(y, x, x, c, alpha);
      }
    }
  }

  /** Simple polygon (even-odd rule), scanline filled. */
  polygon(points: readonly Point[], c: Rgb, alpha = 1): void {
    let minY = Infinity;
    let maxY = -Infinity;
    for (const [, y] of points) {
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
    const y0 = Math.max(0, Math.ceil(minY - 0.5));
    const y1 = Math.min(this.size - 1, Math.floor(maxY - 0.5));
    const xs: number[] = [];
    for (let y = y0; y <= y1; y++) {
      const yc = y + 0.5;
      xs.length = 0;
      for (let i = 0; i < points.length; i++) {
        const [ax, ay] = points[i];
        const [bx, by] = points[(i + 1) % points.length];
        if ((ay <= yc && by > yc) || (by <= yc && ay > yc)) xs.push(ax + ((yc - ay) / (by - ay)) * (bx - ax));
      }
      xs.sort((p, q) => p - q);
      for (let i = 0; i + 1 < xs.length; i += 2) this.span(y, Math.ceil(xs[i] - 0.5), Math.floor(xs[i + 1] - 0.5), c, alpha);
    }
  }

  rect(x0: number, y0: number, x1: number, y1: number, c: Rgb, alpha = 1): void {
    this.polygon([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], c, alpha);
  }

  /** Box-filters the canvas down by an integer factor into uint8 RGB. */
  downsample(factor: number): Uint8Array {
    const out = this.size / factor;
    const img = new Uint8Array(out * out * 3);
    const norm = 1 / (factor * factor);
    const d = this.data;
    for (let oy = 0; oy < out; oy++) {
      for (let ox = 0; ox < out; ox++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let sy = 0; sy < factor; sy++) {
          let i = ((oy * factor + sy) * this.size + ox * factor) * 3;
          for (let sx = 0; sx < factor; sx++, i += 3) {
            r += d[i];
            g += d[i + 1];
            b += d[i + 2];
          }
        }
        const o = (oy * out + ox) * 3;
        img[o] = Math.min(255, Math.max(0, Math.round(r * norm)));
        img[o + 1] = Math.min(255, Math.max(0, Math.round(g * norm)));
        img[o + 2] = Math.min(255, Math.max(0, Math.round(b * norm)));
      }
    }
    return img;
  }
}

/** Deterministic hash of integer coordinates to [0, 1). */
function hash2(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Smooth value noise in [-1, 1] on a grid of `cell` pixels. */
function valueNoise(x: number, y: number, cell: number, seed: number): number {
  const gx = x / cell;
  const gy = y / cell;
  const ix = Math.floor(gx);
  const iy = Math.floor(gy);
  const fx = gx - ix;
  const fy = gy - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = hash2(ix, iy, seed);
  const b = hash2(ix + 1, iy, seed);
  const c = hash2(ix, iy + 1, seed);
  const d = hash2(ix + 1, iy + 1, seed);
  return (a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy) * 2 - 1;
}

const scaleRgb = (c: Rgb, k: number): Rgb => [c[0] * k, c[1] * k, c[2] * k];

/** Default supersampling factor per output size: 4x for small images, less for large ones. */
export function defaultSupersample(size: number): number {
  return size <= 64 ? 4 : size <= 128 ? 3 : 2;
}

/**
 * Renders `scene` as a `size` x `size` RGB image (row-major HxWx3 uint8). Pure: the same scene
 * and size always give the same bytes.
 */
export function renderScene(scene: Scene, size: number, opts: { supersample?: number } = {}): Uint8Array {
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new RangeError(`size must be an integer in 8..1024, got ${size}`);
  const ss = opts.supersample ?? defaultSupersample(size);
  if (!Number.isInteger(ss) || ss < 1 || ss > 8) throw new RangeError(`supersample must be an integer in 1..8, got ${ss}`);
  const S = size * ss;
  const cv = new Canvas(S);
  const P = (v: number) => v * S; // scene units (fractions) to canvas pixels
  const sky = scene.sky;
  const hy = P(scene.horizon);

  drawSky(cv, scene, hy, ss);
  for (const m of scene.mountains) drawMountain(cv, m, scene, P);
  drawGround(cv, scene, hy, ss);
  if (scene.lake) drawLake(cv, scene, P);

  type Thing = { y: number; draw: () => void };
  const things: Thing[] = [
    ...scene.trees.map((t) => ({ y: t.y, draw: () => drawTree(cv, t, sky, scene.ground === 'snow', P) })),
    ...scene.animals.map((a, i) => ({ y: a.y, draw: () => drawAnimal(cv, a, i, sky, P) })),
  ];
  things.sort((a, b) => a.y - b.y); // far first
  for (const t of things) t.draw();
  return cv.downsample(ss);
}

function drawSky(cv: Canvas, scene: Scene, hy: number, ss: number): void {
  const S = cv.size;
  const sky = scene.sky;
  const rows = Math.min(S, Math.ceil(hy) + 1);
  for (let y = 0; y < rows; y++) cv.span(y, 0, S - 1, skyColourAt(sky, (y + 0.5) / hy));

  if (scene.stars > 0) {
    const rng = new Rng(scene.starSeed);
    for (let i = 0; i < scene.stars; i++) {
      const x = Math.floor(rng.range(0, 1) * (S / ss)) * ss;
      const y = Math.floor(rng.range(0, scene.horizon - 0.06) * (S / ss)) * ss;
      const b = rng.range(0.45, 1);
      cv.rect(x, y, x + ss, y + ss, [250, 250, 235], b);
    }
  }

  const c = scene.celestial;
  if (c) {
    const cx = c.x * S;
    const cy = c.y * S;
    const r = c.r * S;
    if (c.body === 'sun') {
      const glow: Rgb = sky === 'sunset' ? [255, 150, 80] : [255, 250, 225];
      const disc: Rgb = sky === 'sunset' ? [255, 214, 120] : [255, 248, 210];
      cv.ellipse(cx, cy, r * 1.9, r * 1.9, glow, 0.18);
      cv.ellipse(cx, cy, r * 1.4, r * 1.4, glow, 0.3);
      cv.ellipse(cx, cy, r, r, disc);
    } else {
      cv.ellipse(cx, cy, r * 1.6, r * 1.6, [120, 130, 170], 0.15);
      cv.ellipse(cx, cy, r, r, [238, 236, 214]);
      if (c.crescent) cv.ellipse(cx + r * 0.45, cy - r * 0.2, r * 0.88, r * 0.88, skyColourAt(sky, c.y / scene.horizon));
    }
  }

  const colours = CLOUD_COLOURS[sky];
  scene.clouds.forEach((cl, i) => {
    const rng = new Rng((scene.textureSeed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const cx = cl.x * S;
    const cy = cl.y * S;
    const w = cl.w * S;
    const h = cl.h * S;
    cv.ellipse(cx, cy + h * 0.15, w * 0.5, h * 0.42, colours.dark);
    const bumps = rng.int(3, 5);
    for (let b = 0; b < bumps; b++) {
      const bx = cx + (b / (bumps - 1) - 0.5) * w * 0.7;
      const br = h * rng.range(0.35, 0.6);
      cv.ellipse(bx, cy - h * 0.05 - br * 0.3, br * 1.3, br, colours.light);
    }
    cv.ellipse(cx, cy, w * 0.46, h * 0.3, colours.light);
  });
}

function drawMountain(cv: Canvas, m: Mountain, scene: Scene, P: (v: number) => number): void {
  const sky = scene.sky;
  const base: Rgb = mixRgb([104, 108, 134], [134, 120, 128], m.shade);
  const body = mixRgb(litRgb(base, sky), skyColourAt(sky, 1), 0.3);
  const shadow = scaleRgb(body, 0.82);
  const baseY = P(scene.horizon + 0.01);
  const peakX = P(m.x + m.skew * m.width);
  const peakY = P(scene.horizon - m.height);
  const left = P(m.x - m.width / 2);
  const right = P(m.x + m.width / 2);
  cv.polygon([[left, baseY], [peakX, peakY], [right, baseY]], body);
  cv.polygon([[peakX, peakY], [right, baseY], [(peakX + right) / 2, baseY]], shadow); // shaded flank
  if (m.snowCap) {
    const cap = 0.34;
    const ly = peakY + (baseY - peakY) * cap;
    const lx = peakX + (left - peakX) * cap;
    const rx = peakX + (right - peakX) * cap;
    const teeth = 4;
    const pts: Point[] = [[peakX, peakY], [rx, ly]];
    for (let t = teeth - 1; t >= 1; t--) {
      const x = lx + ((rx - lx) * t) / teeth;
      pts.push([x + (rx - lx) / (teeth * 2), ly - (baseY - peakY) * (t % 2 ? 0.1 : 0.03)], [x, ly + (baseY - peakY) * 0.02]);
    }
    pts.push([lx, ly]);
    cv.polygon(pts, litRgb([240, 244, 250], sky));
  }
}

function drawGround(cv: Canvas, scene: Scene, hy: number, ss: number): void {
  const S = cv.size;
  const size = S / ss;
  const seed = scene.textureSeed;
  const start = Math.max(0, Math.floor(hy - 0.5) + 1);
  const span = S - hy;
  const d = cv.data;
  const light = scene.sky === 'night' ? 0.6 : 1;
  const blueShare = scene.ground === 'snow' ? 0.6 : 1;
  // Noise is evaluated once per output pixel (it is low-frequency); stripes per canvas row, so they anti-alias.
  const noise = new Float32Array(size);
  const phase = new Float32Array(size);
  let noiseRow = -1;
  for (let y = start; y < S; y++) {
    const oy = Math.floor(y / ss);
    const depth = (y + 0.5 - hy) / span;
    if (oy !== noiseRow) {
      noiseRow = oy;
      const rowDepth = Math.max(0, (oy * ss + ss / 2 - hy) / span);
      for (let ox = 0; ox < size; ox++) {
        switch (scene.ground) {
          case 'grass':
            noise[ox] = 7 * valueNoise(ox, oy * 2, 2 + 3 * rowDepth, seed) + 4 * valueNoise(ox, oy, 7, seed + 1);
            break;
          case 'field':
            phase[ox] = 0.6 * valueNoise(ox, oy, 6, seed);
            noise[ox] = 4 * valueNoise(ox * 2, oy * 2, 3, seed + 2);
            break;
          case 'snow':
            noise[ox] = 5 * valueNoise(ox, oy * 2.5, 10, seed) + 2 * valueNoise(ox, oy, 3, seed + 3);
            break;
          case 'sand':
            phase[ox] = 2.2 * valueNoise(ox, oy, 9, seed);
            noise[ox] = 3 * valueNoise(ox, oy, 3, seed + 4);
            break;
        }
      }
    }
    const base = groundColourAt(scene.ground, scene.sky, depth);
    const stripeFreq = scene.ground === 'field' ? 14 / (depth + 0.12) : scene.ground === 'sand' ? 9 / (depth + 0.1) : 0;
    const stripeAmp = scene.ground === 'field' ? 8 : scene.ground === 'sand' ? 7 : 0;
    let i = y * S * 3;
    for (let ox = 0; ox < size; ox++) {
      let v = noise[ox];
      if (stripeAmp !== 0) v += stripeAmp * Math.sin(stripeFreq + phase[ox]);
      v *= light;
      const r = base[0] + v;
      const g = base[1] + v;
      const b = base[2] + v * blueShare;
      for (let k = 0; k < ss; k++, i += 3) {
        d[i] = r;
        d[i + 1] = g;
        d[i + 2] = b;
      }
    }
  }
}

function drawLake(cv: Canvas, scene: Scene, P: (v: number) => number): void {
  const lake = scene.lake!;
  const sky = scene.sky;
  const cx = P(lake.x);
  const cy = P(lake.y);
  const rx = P(lake.w / 2);
  const ry = P(lake.h / 2);
  const depth = (lake.y - scene.horizon) / (1 - scene.horizon);
  const shore = scaleRgb(groundColourAt(scene.ground, sky, depth), 0.78);
  const water = mixRgb(skyColourAt(sky, 0.75), litRgb([40, 84, 150], sky), 0.5);
  cv.ellipse(cx, cy + ry * 0.08, rx * 1.05, ry * 1.18, shore);
  cv.ellipse(cx, cy, rx, ry, water);
  const shine = mixRgb(water, [255, 255, 255], sky === 'night' ? 0.2 : 0.35);
  cv.ellipse(cx - rx * 0.25, cy - ry * 0.3, rx * 0.35, ry * 0.08, shine);
  cv.ellipse(cx + rx * 0.3, cy + ry * 0.15, rx * 0.25, ry * 0.07, shine);
  const c = scene.celestial;
  if (c && c.body !== 'moon') {
    // A streak of reflected sunlight when the sun stands above the lake.
    if (Math.abs(c.x - lake.x) < lake.w / 2.5) {
      cv.ellipse(P(c.x), cy, rx * 0.12, ry * 0.6, mixRgb(water, [255, 220, 150], 0.45));
    }
  }
}

function drawTree(cv: Canvas, t: Tree, sky: SkyKind, snowy: boolean, P: (v: number) => number): void {
  const x = P(t.x);
  const y = P(t.y);
  const h = P(t.height);
  const trunk = litRgb([98, 66, 40], sky);
  cv.ellipse(x, y, h * 0.25, h * 0.04, [0, 0, 0], 0.2);
  if (t.kind === 'round') {
    const leaf = litRgb([46, 112, 44], sky);
    const light = litRgb([78, 144, 60], sky);
    cv.rect(x - h * 0.05, y - h * 0.5, x + h * 0.05, y, trunk);
    cv.ellipse(x, y - h * 0.64, h * 0.28, h * 0.35, leaf);
    cv.ellipse(x - h * 0.08, y - h * 0.74, h * 0.14, h * 0.16, light);
    if (snowy) cv.ellipse(x, y - h * 0.9, h * 0.2, h * 0.08, litRgb([240, 244, 250], sky));
  } else {
    const needle = litRgb([30, 88, 50], sky);
    const snow = litRgb([236, 240, 248], sky);
    cv.rect(x - h * 0.04, y - h * 0.2, x + h * 0.04, y, trunk);
    const tiers: [number, number, number][] = [[0.12, 0.55, 0.3], [0.38, 0.8, 0.24], [0.62, 1, 0.17]];
    for (const [b, top, half] of tiers) {
      cv.polygon([[x - h * half, y - h * b], [x, y - h * top], [x + h * half, y - h * b]], needle);
      if (snowy) cv.polygon([[x - h * half * 0.35, y - h * (top - (top - b) * 0.35)], [x, y - h * top], [x + h * half * 0.35, y - h * (top - (top - b) * 0.35)]], snow);
    }
  }
}

const COAT_RGB: Record<string, { body: Rgb; dark: Rgb }> = {
  'cow:brown': { body: [132, 80, 44], dark: [70, 42, 24] },
  'cow:black': { body: [36, 32, 32], dark: [16, 14, 14] },
  'cow:spotted': { body: [238, 236, 228], dark: [28, 26, 26] },
  'sheep:white': { body: [242, 240, 230], dark: [46, 42, 42] },
  'horse:brown': { body: [126, 74, 38], dark: [50, 30, 18] },
  'horse:black': { body: [32, 28, 28], dark: [12, 12, 12] },
  'horse:white': { body: [234, 232, 226], dark: [196, 192, 184] },
};

function drawAnimal(cv: Canvas, a: Animal, index: number, sky: SkyKind, P: (v: number) => number): void {
  const L = P(a.size);
  const x = P(a.x);
  const y = P(a.y);
  const f = a.facing;
  const X = (u: number) => x + f * u * L; // body-relative coordinates, mirrored by facing
  const Y = (v: number) => y - v * L;
  const coat = COAT_RGB[`${a.species}:${a.coat}`] ?? { body: GROUND_COLOURS.sand, dark: [40, 40, 40] };
  const body = litRgb(coat.body, sky);
  const dark = litRgb(coat.dark, sky);
  const far = scaleRgb(body, 0.8);
  cv.ellipse(x, y, L * 0.5, L * 0.06, [0, 0, 0], 0.22); // shadow

  const leg = (u: number, top: number, w: number, c: Rgb, hoof: Rgb) => {
    const xa = X(u) - (w * L) / 2;
    cv.rect(xa, Y(top), xa + w * L, y, c);
    cv.rect(xa, Y(0.05), xa + w * L, y, hoof);
  };

  if (a.species === 'cow') {
    const hoof = litRgb([30, 26, 24], sky);
    leg(-0.3, 0.36, 0.085, a.coat === 'spotted' ? scaleRgb(body, 0.85) : far, hoof);
    leg(0.26, 0.36, 0.085, a.coat === 'spotted' ? scaleRgb(body, 0.85) : far, hoof);
    leg(-0.4, 0.36, 0.09, body, hoof);
    leg(0.36, 0.36, 0.09, body, hoof);
    cv.polygon([[X(-0.48), Y(0.6)], [X(-0.53), Y(0.32)], [X(-0.5), Y(0.32)], [X(-0.45), Y(0.6)]], dark); // tail
    cv.rect(Math.min(X(-0.44), X(0.4)), Y(0.64), Math.max(X(-0.44), X(0.4)), Y(0.32), body);
    cv.ellipse(X(-0.44), Y(0.48), L * 0.08, L * 0.16, body);
    cv.ellipse(X(0.4), Y(0.5), L * 0.1, L * 0.15, body);
    if (a.coat === 'spotted') {
      const rng = new Rng(index * 7919 + Math.round(a.x * 1e4));
      const x0 = Math.min(X(-0.5), X(0.48));
      const x1 = Math.max(X(-0.5), X(0.48));
      const clip = (px: number, py: number) => px >= x0 && px <= x1 && py >= Y(0.64) && py <= Y(0.32);
      for (let s = 0; s < 4; s++) {
        cv.ellipse(X(rng.range(-0.4, 0.35)), Y(rng.range(0.38, 0.6)), L * rng.range(0.07, 0.13), L * rng.range(0.05, 0.09), dark, 1, clip);
      }
    }
    // neck and head
    cv.polygon([[X(0.36), Y(0.62)], [X(0.56), Y(0.66)], [X(0.6), Y(0.48)], [X(0.4), Y(0.4)]], body);
    cv.ellipse(X(0.6), Y(0.58), L * 0.12, L * 0.1, a.coat === 'spotted' ? dark : body);
    cv.ellipse(X(0.68), Y(0.52), L * 0.07, L * 0.065, litRgb([214, 168, 158], sky)); // muzzle
    cv.ellipse(X(0.52), Y(0.67), L * 0.06, L * 0.03, dark); // ear
    cv.polygon([[X(0.56), Y(0.68)], [X(0.58), Y(0.76)], [X(0.6), Y(0.68)]], litRgb([230, 226, 210], sky)); // horn
  } else if (a.species === 'sheep') {
    leg(-0.26, 0.3, 0.07, scaleRgb(dark, 0.8), dark);
    leg(0.2, 0.3, 0.07, scaleRgb(dark, 0.8), dark);
    leg(-0.32, 0.3, 0.075, dark, dark);
    leg(0.28, 0.3, 0.075, dark, dark);
    const shade = scaleRgb(body, 0.86);
    cv.ellipse(x, Y(0.42), L * 0.46, L * 0.22, shade);
    for (const [u, v, r] of [[-0.32, 0.44, 0.16], [-0.12, 0.56, 0.17], [0.1, 0.57, 0.17], [0.3, 0.5, 0.15], [0, 0.36, 0.2]] as const) {
      cv.ellipse(X(u), Y(v), L * r * 1.15, L * r, body);
    }
    cv.ellipse(X(0.5), Y(0.5), L * 0.12, L * 0.1, dark); // head
    cv.ellipse(X(0.42), Y(0.58), L * 0.07, L * 0.035, dark); // ear
    cv.ellipse(X(0.36), Y(0.6), L * 0.12, L * 0.08, body); // wool cap
  } else {
    const hoof = litRgb([26, 22, 20], sky);
    leg(-0.28, 0.58, 0.065, far, hoof);
    leg(0.24, 0.58, 0.065, far, hoof);
    leg(-0.36, 0.58, 0.07, body, hoof);
    leg(0.32, 0.58, 0.07, body, hoof);
    cv.polygon([[X(-0.42), Y(0.74)], [X(-0.58), Y(0.4)], [X(-0.5), Y(0.38)], [X(-0.38), Y(0.66)]], dark); // tail
    cv.ellipse(x, Y(0.66), L * 0.46, L * 0.15, body);
    cv.polygon([[X(0.22), Y(0.76)], [X(0.42), Y(0.6)], [X(0.62), Y(0.98)], [X(0.48), Y(1.04)]], body); // neck
    cv.polygon([[X(0.47), Y(1.08)], [X(0.58), Y(1.1)], [X(0.82), Y(0.9)], [X(0.77), Y(0.84)], [X(0.58), Y(0.92)]], body); // head
    cv.polygon([[X(0.22), Y(0.76)], [X(0.48), Y(1.04)], [X(0.52), Y(1.1)], [X(0.3), Y(0.86)]], dark); // mane
    cv.polygon([[X(0.52), Y(1.08)], [X(0.54), Y(1.16)], [X(0.58), Y(1.09)]], body); // ear
  }
}
