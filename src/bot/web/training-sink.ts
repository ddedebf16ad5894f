/**
 * The playground's TrainingProgressSink: the run's status becomes one training message that is edited in
 * place (text, progress 0..1 for the page's progress bar, done when the run has ended), and each epoch's
 * sample grid and loss curve become image messages.
 */
import type { TrainingProgressSink } from '../core/types.js';
import type { ChatLog } from './chat-log.js';

/**
 * Overall progress of a run from the runner's status text: `epoch E/N, step S/T` gives ((E-1) + S/T) / N,
 * `epoch E/N done` gives E/N; null when the text says neither.
 */
export function progressOf(text: string): number | null {
  const step = /epoch (\d+)\/(\d+), step (\d+)\/(\d+)/.exec(text);
  if (step) {
    const [e, n, s, t] = step.slice(1).map(Number);
    if (n > 0 && t > 0) return Math.min(1, Math.max(0, (e - 1 + s / t) / n));
  }
  const epoch = /epoch (\d+)\/(\d+) done/.exec(text);
  if (epoch) {
    const [e, n] = epoch.slice(1).map(Number);
    if (n > 0) return Math.min(1, e / n);
  }
  return null;
}

/** Reports one training run into the chat log. */
export class PlaygroundTrainingSink implements TrainingProgressSink {
  private id: string | null = null;

  /**
   * @param log the channel
   * @param ended tells whether the run has ended (the runner's final update comes after it is no longer busy)
   */
  constructor(private readonly log: ChatLog, private readonly ended: () => boolean) {}

  /** The run's status message (made on the first update). */
  get messageId(): string {
    this.id ??= this.log.add({ from: 'bot', kind: 'training', text: 'Training run starting…', state: 'working', progress: 0 }).id;
    return this.id;
  }

  async update(text: string): Promise<void> {
    const done = this.ended();
    const failed = done && /\bfailed\b/.test(text);
    const progress = progressOf(text);
    this.log.update(this.messageId, {
      text,
      state: done ? (failed ? 'failed' : 'done') : 'working',
      ...(progress !== null ? { progress } : {}),
      ...(done && /\bfinished\b/.test(text) ? { progress: 1 } : {}),
    });
  }

  async image(name: string, png: Buffer, caption: string): Promise<void> {
    const id = this.log.add({ from: 'bot', kind: 'image', text: caption, trainingImage: /loss/i.test(name) ? 'loss' : 'samples' }).id;
    const url = this.log.putImage(id, 'image', png);
    this.log.update(id, { images: [{ url, caption }] });
  }
}
