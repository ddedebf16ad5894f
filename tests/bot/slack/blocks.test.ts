import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImagineReply } from '../../../src/bot/core/types.js';
import {
  IMAGE_ACTION_PATTERN, REROLL_ACTION, VARIATIONS_ACTION, escapeMrkdwn, generationActionBlocks, generationComment,
  IMAGINE_ACTIONS_BLOCK, parseImageActionValue,
} from '../../../src/bot/slack/blocks.js';

function reply(images: number): ImagineReply {
  return {
    generationId: 'g-123',
    prompt: 'cows & <sheep>',
    seeds: Array.from({ length: images }, (_, i) => 7 + i),
    model: 'tiny',
    userId: 'U42',
    grid: Buffer.from('grid'),
    images: Array.from({ length: images }, () => Buffer.from('img')),
    text: 'cows & <sheep> · seeds 7 · model tiny',
  };
}

interface ButtonLike { type: string; action_id: string; value: string }

describe('slack Block Kit builders', () => {
  it('builds Reroll, Variations and one button per image', () => {
    const blocks = generationActionBlocks(reply(3));
    const actions = blocks.find((b) => b.type === 'actions') as { block_id: string; elements: ButtonLike[] } | undefined;
    assert.ok(actions, 'an actions block');
    const ids = actions.elements.map((e) => e.action_id);
    assert.deepEqual(ids, [REROLL_ACTION, VARIATIONS_ACTION, 'imagine_image_0', 'imagine_image_1', 'imagine_image_2']);
    assert.ok(actions.elements.every((e) => e.type === 'button'));
    assert.equal(actions.elements[0].value, 'g-123');
    assert.deepEqual(parseImageActionValue(actions.elements[4].value), { generationId: 'g-123', index: 2 });
    assert.ok(ids.slice(2).every((id) => IMAGE_ACTION_PATTERN.test(id)));
    assert.ok(!IMAGE_ACTION_PATTERN.test(REROLL_ACTION));
    assert.equal(actions.block_id, IMAGINE_ACTIONS_BLOCK);
  });

  it('has no per-image buttons for a single image', () => {
    const blocks = generationActionBlocks(reply(1));
    const actions = blocks.find((b) => b.type === 'actions') as { block_id: string; elements: ButtonLike[] };
    assert.deepEqual(actions.elements.map((e) => e.action_id), [REROLL_ACTION, VARIATIONS_ACTION]);
  });

  it('escapes mrkdwn control characters in what users typed', () => {
    assert.equal(escapeMrkdwn('a & <b> <!channel>'), 'a &amp; &lt;b&gt; &lt;!channel&gt;');
    assert.equal(generationComment(reply(1)), 'cows &amp; &lt;sheep&gt; · seeds 7 · model tiny · asked by <@U42>');
  });

  it('parses per-image values and rejects broken ones', () => {
    assert.deepEqual(parseImageActionValue('a:b:3'), { generationId: 'a:b', index: 3 });
    assert.equal(parseImageActionValue('nope'), null);
    assert.equal(parseImageActionValue(':1'), null);
  });
});
