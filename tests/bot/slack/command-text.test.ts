import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/errors.js';
import {
  SLACK_MODEL_USAGE, SLACK_TRAIN_USAGE, parseSlackImagine, parseSlackModel, parseSlackTrain, unescapeSlackText,
} from '../../../src/bot/slack/command-text.js';

describe('slack command text', () => {
  it('undoes Slack escaping of & < > before parsing', () => {
    assert.equal(unescapeSlackText('cows &amp; sheep &lt;3 &gt;'), 'cows & sheep <3 >');
    assert.equal(parseSlackImagine('cows &amp; sheep --seed 3').prompt, 'cows & sheep');
    assert.deepEqual(parseSlackTrain('start preset:tiny dataset:&lt;x&gt;'), { verb: 'start', preset: 'tiny', dataset: '<x>' });
    assert.deepEqual(parseSlackModel('use a&amp;b'), { verb: 'use', name: 'a&b' });
  });

  it('answers a bad command with the usage of the Slack commands (/cvae-train, /cvae-model)', () => {
    assert.throws(() => parseSlackTrain(''), (err: unknown) => err instanceof UserError && err.message === SLACK_TRAIN_USAGE);
    assert.match(SLACK_TRAIN_USAGE, /`\/cvae-train start preset:<name>/);
    assert.throws(() => parseSlackModel('use'), (err: unknown) => err instanceof UserError && err.message.endsWith(SLACK_MODEL_USAGE));
    assert.match(SLACK_MODEL_USAGE, /`\/cvae-model use <name>`/);
  });
});
