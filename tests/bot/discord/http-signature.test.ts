/** Ed25519 verification of Discord interaction requests (node:crypto), with a key pair made here. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInteractionVerifier, MAX_SIGNATURE_AGE_MS } from '../../../src/bot/discord/interaction-signature.js';
import { discordKeyPair } from './http-keys.js';

describe('createInteractionVerifier', () => {
  const keys = discordKeyPair();
  const verify = createInteractionVerifier(keys.publicKeyHex);
  const now = 1_750_000_000_000;
  const ts = String(now / 1000);
  const body = Buffer.from('{"type":1}');

  it('accepts a signature over timestamp + body made with the private key', () => {
    assert.equal(verify(keys.sign(ts, body), ts, body, now), null);
    assert.equal(verify(keys.sign(ts, body).toUpperCase(), ts, body, now), null, 'hex in either case');
  });

  it('refuses a changed body, a changed timestamp, another key, and malformed or missing headers', () => {
    const sig = keys.sign(ts, body);
    assert.equal(verify(sig, ts, Buffer.from('{"type":2}'), now), 'bad signature');
    assert.equal(verify(sig, String(now / 1000 + 1), body, now), 'bad signature');
    assert.equal(verify(discordKeyPair().sign(ts, body), ts, body, now), 'bad signature');
    assert.equal(verify(undefined, ts, body, now), 'missing headers');
    assert.equal(verify(sig, undefined, body, now), 'missing headers');
    assert.equal(verify('', ts, body, now), 'missing headers');
    assert.equal(verify(sig.slice(2), ts, body, now), 'malformed signature');
    assert.equal(verify(`zz${sig.slice(2)}`, ts, body, now), 'malformed signature');
    assert.equal(verify(sig, '17e8', body, now), 'malformed timestamp');
  });

  it('refuses timestamps more than 5 minutes away, in the past or the future', () => {
    const old = String((now - MAX_SIGNATURE_AGE_MS - 1000) / 1000);
    assert.equal(verify(keys.sign(old, body), old, body, now), 'stale timestamp');
    const future = String((now + MAX_SIGNATURE_AGE_MS + 1000) / 1000);
    assert.equal(verify(keys.sign(future, body), future, body, now), 'stale timestamp');
    const recent = String((now - MAX_SIGNATURE_AGE_MS + 1000) / 1000);
    assert.equal(verify(keys.sign(recent, body), recent, body, now), null);
  });

  it('refuses a public key that is not 64 hex digits', () => {
    assert.throws(() => createInteractionVerifier('abc'), /64 hex digits/);
  });
});
