/**
 * The playground's TrainingProgressSink: the run's progress becomes one training message that is edited in
 * place (text, progress 0..1 for the page's progress bar, done or failed when the run has ended), and each
 * epoch's sample grid and loss curve become image messages.
 */
import { formatTrainingProgress, trainingEnded, trainingImageCaption, type TrainingImage, type TrainingProgress } from '../core/training-progress.js';
import type { TrainingProgressSink } from '../core/types.js';
import type { ChatLog } from './chat-log.js';

/** Reports one training run into the chat log. */
export class PlaygroundTrainingSink implements TrainingProgressSink {
  private id: string | null = null;

  /** @param log the channel */
  constructor(private readonly log: ChatLog) {}

  /** The run's status message (made on the first update). */
  get messageId(): string {
    this.id ??= this.log.add({ from: 'bot', kind: 'training', text: 'Training run starting…', state: 'working', progress: 0 }).id;
    return this.id;
  }

  async update(progress: TrainingProgress): Promise<void> {
    this.log.update(this.messageId, {
      text: formatTrainingProgress(progress),
      state: progress.state === 'failed' ? 'failed' : trainingEnded(progress) ? 'done' : 'working',
      ...(progress.fraction !== null ? { progress: progress.fraction } : {}),
    });
  }

  async image(image: TrainingImage): Promise<void> {
    const caption = trainingImageCaption(image);
    const id = this.log.add({ from: 'bot', kind: 'image', text: caption, trainingImage: image.kind === 'loss-curve' ? 'loss' : 'samples' }).id;
    const url = this.log.putImage(id, 'image', image.png);
    this.log.update(id, { images: [{ url, caption }] });
  }
}
