/**
 * `judge`: the scene judge, a small CNN trained on synthetic renders that reads a 64 px image's sky, ground
 * and species (src/training/judge). `npm run quality` uses it to score what a checkpoint draws.
 *
 *   judge train --out DIR [--images N] [--epochs E] [--seed S] [--held-out N] [--json]
 *
 * Renders N random scenes (seed S), trains on them with a progress bar on stderr, scores the judge on
 * held-out renders and writes DIR/model.json, DIR/weights.bin and DIR/judge.json.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { initBackend } from '../../model/backend.js';
import type { JudgeInfo, JudgeScore } from '../../training/judge/scene-judge.js';
import { judgeRecipe, trainSceneJudge, type JudgeTrainingEvent } from '../../training/judge/train-judge.js';
import { formatDuration } from '../../training/throughput.js';

interface JudgeTrainCliOptions {
  out: string;
  images?: number;
  epochs?: number;
  seed?: number;
  heldOut?: number;
  json?: boolean;
}

function wholeNumber(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new UserError(`--${name} must be a whole number between ${min} and ${max}, got "${value}".`);
    }
    return n;
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** `sky 99.8%, ground 100.0%, species 96.1% (cow 95.0%, sheep 97.9%, horse 95.4%)` */
export function formatJudgeScore(s: JudgeScore): string {
  const per = Object.entries(s.perSpecies).map(([k, v]) => `${k} ${pct(v)}`).join(', ');
  return `sky ${pct(s.sky)}, ground ${pct(s.ground)}, species ${pct(s.species)} (${per}) on ${s.images} held-out renders`;
}

/** Draws training events: a cli-progress bar on a TTY, plain lines (at most one step line per 30 s) elsewhere. */
class JudgeProgress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  handle(e: JudgeTrainingEvent): void {
    switch (e.type) {
      case 'render':
        if (this.tty) {
          if (!this.bar) {
            this.bar = new cliProgress.SingleBar(
              { stream: process.stderr, format: 'render [{bar}] {percentage}% {value}/{total} scenes | {eta_formatted} left', hideCursor: true },
              cliProgress.Presets.shades_classic,
            );
            this.bar.start(e.total, 0);
          }
          this.bar.update(e.done);
        }
        break;
      case 'start':
        this.stop();
        this.write(
          `training the scene judge (${e.parameters.toLocaleString('en-US')} params, backend ${e.backend}) on ${e.images} renders: ` +
            `${e.epochs} epochs, batch ${e.batchSize}`,
        );
        if (this.tty) {
          this.bar = new cliProgress.SingleBar(
            { stream: process.stderr, format: 'epoch {epoch} [{bar}] {percentage}% | step {value}/{total} | loss {loss} | {ips} img/s | ETA {etaText}', hideCursor: true },
            cliProgress.Presets.shades_classic,
          );
          this.bar.start(e.totalSteps, 0, { epoch: 1, loss: '-', ips: '-', etaText: '?' });
        }
        break;
      case 'step':
        if (this.bar) {
          this.bar.update(e.step, { epoch: e.epoch, loss: e.loss.toFixed(3), ips: e.imagesPerSec.toFixed(0), etaText: formatDuration(e.etaSec) });
        } else if (Date.now() - this.lastLine > 30_000) {
          this.lastLine = Date.now();
          this.write(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(3)} ${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSec)}`);
        }
        break;
      case 'epoch':
        this.write(
          `epoch ${e.epoch}/${e.epochs}: loss sky ${e.loss.sky.toFixed(4)}, ground ${e.loss.ground.toFixed(4)}, species ${e.loss.species.toFixed(4)} ` +
            `(${formatDuration(e.durationSec)})`,
        );
        if (e.epoch === e.epochs) this.stop();
        break;
      case 'evaluate':
        this.write(`held out after epoch ${e.epoch}: ${formatJudgeScore(e.score)}`);
        break;
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }

  private write(line: string): void {
    if (this.bar) {
      // cli-progress has no log-above-the-bar on a SingleBar: clear the line, print, let the bar redraw.
      process.stderr.write(`\r\x1b[2K${line}\n`);
      this.bar.render();
    } else {
      process.stderr.write(`${line}\n`);
    }
  }
}

/** Runs `judge train`; returns the saved judge's description. */
export async function runJudgeTrain(opts: JudgeTrainCliOptions, out: { write(text: string): unknown } = process.stdout): Promise<JudgeInfo> {
  const outDir = path.resolve(opts.out);
  await initBackend();
  const progress = new JudgeProgress();
  let info: JudgeInfo;
  try {
    const judge = await trainSceneJudge({
      ...judgeRecipe({ images: opts.images, epochs: opts.epochs, seed: opts.seed }),
      heldOutImages: opts.heldOut,
      onEvent: (e) => progress.handle(e),
    });
    await judge.save(outDir);
    info = judge.info;
    judge.dispose();
  } finally {
    progress.stop();
  }
  out.write(
    opts.json
      ? `${JSON.stringify(info)}\n`
      : `wrote the scene judge to ${outDir} (trained in ${formatDuration(info.training.wallSec)}, ${info.training.cpuSec.toFixed(0)} CPU s): ${formatJudgeScore(info.heldOut)}\n`,
  );
  return info;
}

/** Adds the `judge` command group. */
export function register(program: Command): void {
  const judge = program.command('judge').description('the scene judge: a CNN that reads sky, ground and species of 64 px images (for `npm run quality`)');
  judge
    .command('train')
    .description('Train the scene judge on freshly rendered synthetic scenes and save it with its held-out score')
    .requiredOption('--out <dir>', 'folder to write the judge to (e.g. models/scene-judge)')
    .option('--images <n>', 'training renders (default 8000)', wholeNumber('images', 32, 1_000_000))
    .option('--epochs <n>', 'epochs (default 5)', wholeNumber('epochs', 1, 1000))
    .option('--seed <s>', 'seed of the training scenes and weights (default 9001; held-out scenes use 9002)', wholeNumber('seed', 0, 0xffffffff))
    .option('--held-out <n>', 'held-out renders to score the judge on (default 1000)', wholeNumber('held-out', 1, 1_000_000))
    .option('--json', "print judge.json's contents as one JSON line instead of a summary")
    .action(async (o: JudgeTrainCliOptions) => {
      await runJudgeTrain(o);
    });
}
