/** An Ed25519 key pair for signing Discord interaction requests in tests, as Discord does. */
import crypto from 'node:crypto';

export interface DiscordTestKeys {
  /** The public key as the developer portal shows it (DISCORD_PUBLIC_KEY): 64 hex digits. */
  publicKeyHex: string;
  /** The hex signature Discord sends in X-Signature-Ed25519: over the timestamp followed by the raw body. */
  sign(timestamp: string, body: Buffer | string): string;
}

export function discordKeyPair(): DiscordTestKeys {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    publicKeyHex: Buffer.from(jwk.x!, 'base64url').toString('hex'),
    sign: (timestamp, body) => crypto.sign(null, Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), privateKey).toString('hex'),
  };
}
