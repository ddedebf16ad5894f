import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/errors.js';
import {
  IMAGINE_USAGE, MODEL_USAGE, TRAIN_USAGE, parseImagineText, parseModelText, parseTrainText, runModelCommand, runTrainCommand, tokenize,
} from '../../../src/bot/core/command-text.js';
import type { BotCore, TrainingProgressSink } from '../../../src/bot/core/types.js';

describe('/imagine flags', () => {
  it('takes the prompt and the flags anywhere in the text', () => {
    assert.deepEqual(parseImagineText('cows in snow --count 4 --seed 7'), { prompt: 'cows in snow', count: 4, seed: 7 });
    assert.deepEqual(parseImagineText('--model demo sheep   on a hill --seed=12'), { prompt: 'sheep on a hill', seed: 12, model: 'demo' });
    assert.deepEqual(parseImagineText('a "quoted" barn'), { prompt: 'a "quoted" barn' });
  });

  it('keeps the text as typed: unescaping is the Slack adapter\'s', () => {
    assert.equal(parseImagineText('cows &amp; sheep').prompt, 'cows &amp; sheep');
  });

  it('refuses an empty prompt with the usage', () => {
    for (const text of ['', '   ', '--count 2', '--seed 3 --model x']) {
      assert.throws(() => parseImagineText(text), (err: unknown) => err instanceof UserError && err.message.includes(IMAGINE_USAGE));
    }
  });

  it('refuses malformed flags with a message that names them', () => {
    assert.throws(() => parseImagineText('cows --count four'), /`count` must be a whole number/);
    assert.throws(() => parseImagineText('cows --count'), /needs a value/);
    assert.throws(() => parseImagineText('cows --count --seed 3'), /needs a value/);
    assert.throws(() => parseImagineText('cows --size 3'), /Unknown option `--size`/);
    assert.throws(() => parseImagineText('cows --seed 1 --seed 2'), /given twice/);
    assert.throws(() => parseImagineText('cows --seed 99999999999999999999'), /too large/);
  });
});

describe('slack /cvae-train and /cvae-model text', () => {
  it('parses start with key:value, --key value or a bare preset', () => {
    assert.deepEqual(parseTrainText('start preset:tiny epochs:2 dataset:data/synth'), { verb: 'start', preset: 'tiny', epochs: 2, dataset: 'data/synth' });
    assert.deepEqual(parseTrainText('start --preset 64-image --epochs 3'), { verb: 'start', preset: '64-image', epochs: 3 });
    assert.deepEqual(parseTrainText('START tiny'), { verb: 'start', preset: 'tiny' });
    assert.deepEqual(parseTrainText('status'), { verb: 'status' });
    assert.deepEqual(parseTrainText('stop'), { verb: 'stop' });
  });

  it('refuses what it does not understand', () => {
    assert.throws(() => parseTrainText(''), /Usage/);
    assert.throws(() => parseTrainText('begin tiny'), /Unknown action `begin`/);
    assert.throws(() => parseTrainText('start'), /Which preset/);
    assert.throws(() => parseTrainText('start preset:tiny epochs:many'), /`epochs` must be a whole number/);
    assert.throws(() => parseTrainText('start tiny extra'), /did not understand `extra`/);
    assert.throws(() => parseTrainText('status now'), /takes no options/);
  });

  it('parses model list / use', () => {
    assert.deepEqual(parseModelText(''), { verb: 'list' });
    assert.deepEqual(parseModelText('list'), { verb: 'list' });
    assert.deepEqual(parseModelText('use tiny-run-3'), { verb: 'use', name: 'tiny-run-3' });
    assert.throws(() => parseModelText('use'), /Which model/);
    assert.throws(() => parseModelText('delete x'), /did not understand/);
  });

  it('tokenizes quoted runs as one token', () => {
    assert.deepEqual(tokenize(`start dataset:"my data" 'a b'`), ['start', 'dataset:my data', 'a b']);
    assert.deepEqual(tokenize(`use farmer's-model`), ['use', "farmer's-model"]);
    assert.deepEqual(parseTrainText('start tiny dataset:"data/my set"'), { verb: 'start', preset: 'tiny', dataset: 'data/my set' });
    assert.deepEqual(tokenize(`use "my model"`), ['use', 'my model']);
  });
});

describe('platform-neutral usage, and the adapter\'s own', () => {
  it('names /train and /model unless the adapter passes its usage', () => {
    assert.throws(() => parseTrainText(''), (err: unknown) => err instanceof UserError && err.message === TRAIN_USAGE && !/cvae/.test(err.message));
    assert.throws(() => parseModelText('use'), (err: unknown) => err instanceof UserError && err.message.endsWith(MODEL_USAGE));
    assert.throws(() => parseTrainText('begin', 'Usage: `/x`'), (err: unknown) => err instanceof UserError && err.message === 'Unknown action `begin`.\nUsage: `/x`');
    assert.throws(() => parseModelText('delete x', 'Usage: `/y`'), /did not understand `delete x`\.\nUsage: `\/y`$/);
  });
});

describe('runTrainCommand and runModelCommand: parsed command → core call', () => {
  function recordingCore() {
    const calls: unknown[][] = [];
    const core = {
      trainStart: async (_a: unknown, opts: unknown, sink: unknown) => { calls.push(['trainStart', opts, sink]); return 'started'; },
      trainStatus: async () => { calls.push(['trainStatus']); return 'status'; },
      trainStop: async () => { calls.push(['trainStop']); return 'stopping'; },
      modelList: async () => { calls.push(['modelList']); return 'list'; },
      modelUse: async (_a: unknown, name: string) => { calls.push(['modelUse', name]); return `using ${name}`; },
    } as unknown as BotCore;
    return { core, calls };
  }
  const actor = { platform: 'web' as const, workspaceId: 'w', channelId: 'c', userId: 'u' };

  it('maps each verb to its core call; the sink is made only for start', async () => {
    const { core, calls } = recordingCore();
    const sink = {} as TrainingProgressSink;
    let made = 0;
    const makeSink = () => { made++; return sink; };
    assert.equal(await runTrainCommand(core, actor, parseTrainText('status'), makeSink), 'status');
    assert.equal(await runTrainCommand(core, actor, parseTrainText('stop'), makeSink), 'stopping');
    assert.equal(made, 0);
    assert.equal(await runTrainCommand(core, actor, parseTrainText('start preset:tiny epochs:2 dataset:synthetic'), makeSink), 'started');
    assert.equal(made, 1);
    assert.equal(await runModelCommand(core, actor, parseModelText('')), 'list');
    assert.equal(await runModelCommand(core, actor, parseModelText('use m2')), 'using m2');
    assert.deepEqual(calls, [
      ['trainStatus'], ['trainStop'], ['trainStart', { preset: 'tiny', epochs: 2, dataset: 'synthetic' }, sink], ['modelList'], ['modelUse', 'm2'],
    ]);
  });
});
