/**
 * Verification of Discord's HTTP interaction requests: Discord signs `X-Signature-Timestamp` + the raw body with
 * the application's Ed25519 key and sends the signature as hex in `X-Signature-Ed25519`. Checked with node:crypto
 * (no extra dependency). A timestamp more than {@link MAX_SIGNATURE_AGE_MS} away from our clock is refused too, so
 * a captured request cannot be replayed later.
 */
import crypto from 'node:crypto';

/** How far the signed timestamp may be from now (either way) before a request is refused as stale. */
export const MAX_SIGNATURE_AGE_MS = 5 * 60_000;

/** Why a request was refused (for the log; the client gets a plain 401). */
export type SignatureProblem = 'missing headers' | 'malformed signature' | 'malformed timestamp' | 'stale timestamp' | 'bad signature';

/** Checks one request; null when it is authentic and fresh. */
export type InteractionVerifier = (
  signatureHex: string | undefined, timestamp: string | undefined, rawBody: Buffer, nowMs?: number,
) => SignatureProblem | null;

/**
 * Builds the verifier for an application's public key (the 64 hex digits of "Public Key" in the developer portal).
 * The key object is made once, from the 32 raw bytes as a JWK (`OKP`/`Ed25519`).
 */
export function createInteractionVerifier(publicKeyHex: string): InteractionVerifier {
  if (!/^[0-9a-fA-F]{64}$/.test(publicKeyHex)) throw new Error('DISCORD_PUBLIC_KEY must be 64 hex digits');
  const key = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKeyHex, 'hex').toString('base64url') },
    format: 'jwk',
  });
  return (signatureHex, timestamp, rawBody, nowMs = Date.now()) => {
    if (!signatureHex || !timestamp) return 'missing headers';
    if (!/^[0-9a-fA-F]{128}$/.test(signatureHex)) return 'malformed signature';
    if (!/^\d{1,12}$/.test(timestamp)) return 'malformed timestamp';
    if (Math.abs(nowMs - Number(timestamp) * 1000) > MAX_SIGNATURE_AGE_MS) return 'stale timestamp';
    const signed = Buffer.concat([Buffer.from(timestamp, 'utf8'), rawBody]);
    return crypto.verify(null, signed, key, Buffer.from(signatureHex, 'hex')) ? null : 'bad signature';
  };
}
