/**
 * The loss-curve picture written next to each checkpoint: train and val total loss per epoch as an SVG
 * line chart, rasterised to PNG with sharp. No chart library: the chart is a few lines and ticks.
 */
import sharp from 'sharp';

/** One epoch's point on the curve. */
export interface LossCurvePoint {
  epoch: number;
  train: number;
  val: number;
}

export interface LossCurveOptions {
  width?: number;
  height?: number;
  title?: string;
}

const COLORS = { train: '#1f77b4', val: '#d62728' } as const;

/** "Nice" tick values (1, 2, 5 × 10^k steps) covering [min, max]. */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) return [min];
  const raw = (max - min) / Math.max(target, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string);
}

/** Renders the chart as an SVG document (pure). Non-finite losses are left out of the lines. */
export function lossCurveSvg(points: readonly LossCurvePoint[], opts: LossCurveOptions = {}): string {
  const width = opts.width ?? 640;
  const height = opts.height ?? 400;
  const m = { left: 70, right: 20, top: 40, bottom: 50 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const values = points.flatMap((p) => [p.train, p.val]).filter(Number.isFinite);
  let yMin = values.length ? Math.min(...values) : 0;
  let yMax = values.length ? Math.max(...values) : 1;
  if (yMax - yMin < 1e-12) {
    const pad = Math.abs(yMax) * 0.05 || 1;
    yMin -= pad;
    yMax += pad;
  } else {
    const pad = (yMax - yMin) * 0.05;
    yMin -= pad;
    yMax += pad;
  }
  const epochs = points.map((p) => p.epoch);
  const xMin = epochs.length ? Math.min(...epochs) : 1;
  const xMax = epochs.length ? Math.max(...epochs) : 1;
  const xOf = (e: number) => m.left + (xMax === xMin ? plotW / 2 : ((e - xMin) / (xMax - xMin)) * plotW);
  const yOf = (v: number) => m.top + (1 - (v - yMin) / (yMax - yMin)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<g font-family="DejaVu Sans, Arial, sans-serif" font-size="12" fill="#333333">`);
  parts.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(opts.title ?? 'Loss per epoch')}</text>`);
  for (const t of niceTicks(yMin, yMax)) {
    const y = yOf(t).toFixed(1);
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`);
  }
  const xTicks = niceTicks(xMin, xMax, Math.min(10, Math.max(xMax - xMin, 1))).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    const x = xOf(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top + plotH}" y2="${m.top + plotH + 5}" stroke="#333333"/>`);
    parts.push(`<text x="${x}" y="${m.top + plotH + 18}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333333"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 10}" text-anchor="middle">epoch</text>`);
  for (const key of ['train', 'val'] as const) {
    const pts = points.filter((p) => Number.isFinite(p[key])).map((p) => `${xOf(p.epoch).toFixed(1)},${yOf(p[key]).toFixed(1)}`);
    if (pts.length > 1) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${COLORS[key]}" stroke-width="2"/>`);
    for (const pt of pts) {
      const [x, y] = pt.split(',');
      parts.push(`<circle cx="${x}" cy="${y}" r="3" fill="${COLORS[key]}"/>`);
    }
  }
  const lx = m.left + plotW - 90;
  parts.push(`<rect x="${lx - 8}" y="${m.top + 6}" width="90" height="42" fill="#ffffff" stroke="#cccccc"/>`);
  (['train', 'val'] as const).forEach((key, i) => {
    const y = m.top + 20 + i * 18;
    parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${y}" y2="${y}" stroke="${COLORS[key]}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 28}" y="${y}" dominant-baseline="middle">${key}</text>`);
  });
  parts.push('</g></svg>');
  return parts.join('\n');
}

/** Renders the chart as PNG bytes. */
export async function lossCurvePng(points: readonly LossCurvePoint[], opts: LossCurveOptions = {}): Promise<Buffer> {
  return sharp(Buffer.from(lossCurveSvg(points, opts))).png().toBuffer();
}
