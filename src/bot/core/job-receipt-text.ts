/** What a user is told when their request becomes a job (platform-neutral text; adapters add the Cancel button). */
import type { JobReceipt } from './jobs-types.js';

/** A wait in words: "about 4 s", "about 2 min". */
export function waitInWords(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 90) return `about ${Math.max(1, Math.round(Number.isFinite(seconds) ? seconds : 1))} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

/** "Queued, number 3 in line (about 10 s). Your images will be posted here." */
export function queuedText(receipt: JobReceipt): string {
  const where = receipt.position <= 1 ? 'next in line' : `number ${receipt.position} in line`;
  return `Queued, ${where} (${waitInWords(receipt.predictedWaitS)}). Your images will be posted here.`;
}
