/**
 * Admission by predicted wait (scaled mode): a request is accepted when the images queued ahead of it plus its
 * own can be drawn within a bound by the workers alive now, at the throughput they measured. Pure functions:
 * the job queue reads the numbers in its admission transaction and asks {@link decideAdmission}.
 */

/** A live worker as admission sees it. */
export interface WorkerThroughput {
  /** Images per second the worker measured (EWMA); null or 0 until it has drawn something. */
  imagesPerS: number | null;
}

export interface AdmissionInput {
  /** Images of the requests queued or running now (ahead of this one). */
  imagesAhead: number;
  /** Images this request asks for. */
  images: number;
  /** Generation workers seen recently. */
  workers: readonly WorkerThroughput[];
  /** Refuse when the predicted wait is longer than this, in seconds. */
  maxWaitS: number;
  /** Throughput assumed for a live worker that has not measured its own yet (images/s). */
  unmeasuredImagesPerS: number;
}

export type AdmissionDecision =
  | { admit: true; predictedWaitS: number; imagesPerS: number }
  | { admit: false; reason: 'no-worker' | 'too-long'; predictedWaitS: number; imagesPerS: number; message: string };

/** What a user is told when no generation worker is alive. */
export const NO_WORKER_MESSAGE = 'No image worker is running right now, so nothing was queued. Please try again in a few minutes (a bot admin may need to start one).';

/** The polite refusal past the bound. */
export function tooLongMessage(predictedWaitS: number, maxWaitS: number): string {
  return `The bot is very busy right now: your images would take about ${Math.ceil(predictedWaitS)} s, longer than the ${maxWaitS} s I promise, so nothing was queued. Please try again in a minute.`;
}

/** Summed images/s of the live workers; one that has not measured yet counts as `unmeasuredImagesPerS`. */
export function liveThroughput(workers: readonly WorkerThroughput[], unmeasuredImagesPerS: number): number {
  return workers.reduce((sum, w) => sum + (w.imagesPerS !== null && Number.isFinite(w.imagesPerS) && w.imagesPerS > 0 ? w.imagesPerS : unmeasuredImagesPerS), 0);
}

/** Seconds until a request of `images` is drawn behind `imagesAhead`, at `imagesPerS` (Infinity without throughput). */
export function predictWaitS(imagesAhead: number, images: number, imagesPerS: number): number {
  if (!(imagesPerS > 0)) return Infinity;
  return (Math.max(0, imagesAhead) + images) / imagesPerS;
}

/** Accept or refuse one request. */
export function decideAdmission(input: AdmissionInput): AdmissionDecision {
  if (input.workers.length === 0) {
    return { admit: false, reason: 'no-worker', predictedWaitS: Infinity, imagesPerS: 0, message: NO_WORKER_MESSAGE };
  }
  const imagesPerS = liveThroughput(input.workers, input.unmeasuredImagesPerS);
  const predictedWaitS = predictWaitS(input.imagesAhead, input.images, imagesPerS);
  if (imagesPerS <= 0) {
    return { admit: false, reason: 'no-worker', predictedWaitS, imagesPerS, message: NO_WORKER_MESSAGE };
  }
  if (predictedWaitS > input.maxWaitS) {
    return { admit: false, reason: 'too-long', predictedWaitS, imagesPerS, message: tooLongMessage(predictedWaitS, input.maxWaitS) };
  }
  return { admit: true, predictedWaitS, imagesPerS };
}
