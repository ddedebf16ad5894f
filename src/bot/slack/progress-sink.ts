import type { webApi } from '@slack/bolt';
import { childLogger } from '../../log.js';
import { formatTrainingProgress, trainingImageCaption, trainingImageName, type TrainingImage, type TrainingProgress } from '../core/training-progress.js';
import type { TrainingProgressSink } from '../core/types.js';
import { slackText } from './blocks.js';
import { uploadPng } from './publish.js';

const log = childLogger('slack-training-sink');

/**
 * Training progress in the Slack channel a run was started from: one status message, posted on the first
 * update and edited with chat.update afterwards (the core throttles updates), and the per-epoch images
 * (sample grid, loss curve) uploaded in the thread of that status message so the channel stays readable.
 * Calls are serialised, so an image never races the first status post.
 */
export class SlackTrainingSink implements TrainingProgressSink {
  private statusTs: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: webApi.WebClient, readonly channel: string) {}

  /** ts of the status message, once posted. */
  get messageTs(): string | undefined {
    return this.statusTs;
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const next = this.chain.then(job, job);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Post or edit the status message. */
  update(progress: TrainingProgress): Promise<void> {
    return this.enqueue(async () => {
      const body = slackText(formatTrainingProgress(progress));
      if (this.statusTs) {
        await this.client.chat.update({ channel: this.channel, ts: this.statusTs, text: body });
      } else {
        const res = await this.client.chat.postMessage({ channel: this.channel, text: body });
        this.statusTs = res.ts;
      }
    }).catch((err: unknown) => {
      log.warn({ err, channel: this.channel }, 'could not post training status');
      throw err;
    });
  }

  /** Upload an image (in the status message's thread once there is one). */
  image(image: TrainingImage): Promise<void> {
    return this.enqueue(async () => {
      const filename = trainingImageName(image);
      const caption = trainingImageCaption(image);
      await uploadPng(this.client, {
        channel: this.channel,
        png: image.png,
        filename,
        title: caption.slice(0, 200) || filename,
        comment: slackText(caption),
        altText: caption.slice(0, 1000) || filename,
        threadTs: this.statusTs,
      });
    }).catch((err: unknown) => {
      log.warn({ err, channel: this.channel }, 'could not post training image');
      throw err;
    });
  }
}
