/** Images-per-second and ETA estimates for training progress (pure; the clock is passed in). */

export class ThroughputMeter {
  private rate: number | null = null;
  private lastTime: number | null = null;

  /**
   * @param smoothing weight of the newest measurement in the exponential moving average (0..1]
   */
  constructor(private readonly smoothing = 0.1) {
    if (!(smoothing > 0 && smoothing <= 1)) throw new RangeError(`smoothing must be in (0, 1], got ${smoothing}`);
  }

  /** Marks the start of timing (e.g. before the first step, or after a pause such as validation). */
  mark(nowMs: number): void {
    this.lastTime = nowMs;
  }

  /** Records that `images` were processed since the last mark/record; returns the smoothed images/s. */
  record(images: number, nowMs: number): number {
    if (this.lastTime === null) {
      this.lastTime = nowMs;
      return this.rate ?? 0;
    }
    const dt = Math.max(nowMs - this.lastTime, 1e-3) / 1000;
    this.lastTime = nowMs;
    const instant = images / dt;
    this.rate = this.rate === null ? instant : this.rate + this.smoothing * (instant - this.rate);
    return this.rate;
  }

  /** The smoothed images/s (0 before the first measurement). */
  get imagesPerSec(): number {
    return this.rate ?? 0;
  }

  /** Seconds needed for `remainingImages` at the current rate (0 when nothing remains, Infinity when unknown). */
  etaSec(remainingImages: number): number {
    if (remainingImages <= 0) return 0;
    if (!this.rate) return Infinity;
    return remainingImages / this.rate;
  }
}

/** Images still to process: the rest of this epoch plus whole later epochs. */
export function remainingImages(opts: { epochIndex: number; epochs: number; imagesDoneInEpoch: number; imagesPerEpoch: number }): number {
  const rest = Math.max(opts.imagesPerEpoch - opts.imagesDoneInEpoch, 0);
  return rest + Math.max(opts.epochs - opts.epochIndex - 1, 0) * opts.imagesPerEpoch;
}

/** Formats seconds as `1h02m`, `3m05s` or `42s` ("?" when unknown). */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}
