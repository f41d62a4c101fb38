import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * A server id in nats-server's shape: 'N' followed by 55 base32 characters
 * (nats-server uses an nkey public key; clients treat it as an opaque string).
 */
export function newServerId(): string {
  const bytes = randomBytes(55);
  let id = 'N';
  for (let i = 0; i < bytes.length; i++) id += ALPHABET[(bytes[i] ?? 0) & 31];
  return id;
}
