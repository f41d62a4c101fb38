/**
 * NATS nkeys, public half only: a user's public key as configured (`U…`), the
 * operator (`O…`) and account (`A…`) keys that issue JWTs (jwt.ts), and the
 * check of the Ed25519 signature a client sends in CONNECT `sig` over the INFO
 * `nonce`. An nkey is RFC 4648 base32 (no padding) of one prefix byte, the 32-byte
 * Ed25519 key and a CRC-16/XMODEM of both, little-endian (56 characters for a
 * public key). Ed25519 itself is Node's crypto, so no nkeys package is needed.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/**
 * The prefix byte of each kind of public key: the base32 value of its first letter in the
 * top five bits ('O' 14, 'A' 0, 'U' 20).
 */
const PREFIX_BYTES = { operator: 14 << 3, account: 0, user: 20 << 3 } as const;
export type NkeyRole = keyof typeof PREFIX_BYTES;
const ED25519_KEY_BYTES = 32;
const PUBLIC_NKEY_BYTES = 1 + ED25519_KEY_BYTES + 2;
const ED25519_SIGNATURE_BYTES = 64;

/** The raw Ed25519 key of a public nkey of `role`, or undefined when it is not one (bad text, prefix or checksum). */
export function decodePublicNkey(nkey: string, role: NkeyRole): Buffer | undefined {
  const raw = decodeBase32(nkey);
  if (raw === undefined || raw.length !== PUBLIC_NKEY_BYTES) return undefined;
  if (raw[0] !== PREFIX_BYTES[role]) return undefined;
  const body = raw.subarray(0, raw.length - 2);
  if (crc16(body) !== raw.readUInt16LE(raw.length - 2)) return undefined;
  return Buffer.from(body.subarray(1));
}

/** Whether `nkey` is a valid public nkey of `role`. */
export function isPublicNkey(nkey: string, role: NkeyRole): boolean {
  return decodePublicNkey(nkey, role) !== undefined;
}

/** An Ed25519 public key object for a public nkey of `role`, for signature checks. */
export function publicNkeyVerifier(nkey: string, role: NkeyRole): KeyObject | undefined {
  const key = decodePublicNkey(nkey, role);
  if (key === undefined) return undefined;
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') }, format: 'jwk' });
}

/** The raw Ed25519 key of a user public nkey (`U…`), or undefined when it is not one (bad text or checksum). */
export function decodeUserPublicNkey(nkey: string): Buffer | undefined {
  return decodePublicNkey(nkey, 'user');
}

/** Whether `nkey` is a valid user public nkey. */
export function isUserPublicNkey(nkey: string): boolean {
  return isPublicNkey(nkey, 'user');
}

/** An Ed25519 public key object for a user public nkey, for {@link verifyNonceSignature}. */
export function userNkeyVerifier(nkey: string): KeyObject | undefined {
  return publicNkeyVerifier(nkey, 'user');
}

/**
 * Whether `signature` (base64url as nats-server expects, or standard base64 with padding
 * as nats.js sends it: Node's decoder takes both) is `key`'s signature of the nonce text.
 */
export function verifyNonceSignature(key: KeyObject, nonce: string, signature: string): boolean {
  return isEd25519SignatureValid(key, Buffer.from(nonce, 'utf8'), Buffer.from(signature, 'base64'));
}

/** Whether `signature` is `key`'s Ed25519 signature of `data` (a JWT's, or a nonce's). */
export function isEd25519SignatureValid(key: KeyObject, data: Buffer, signature: Buffer): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  return verify(null, data, key, signature);
}

function decodeBase32(text: string): Buffer | undefined {
  const out = Buffer.alloc(Math.floor((text.length * 5) / 8));
  let bitBuffer = 0;
  let bitCount = 0;
  let written = 0;
  for (const char of text) {
    const value = BASE32_ALPHABET.indexOf(char);
    if (value < 0) return undefined;
    bitBuffer = ((bitBuffer << 5) | value) & 0xffff;
    bitCount += 5;
    if (bitCount >= 8) {
      bitCount -= 8;
      out[written++] = (bitBuffer >>> bitCount) & 0xff;
    }
  }
  return out;
}

/** CRC-16/XMODEM (polynomial 0x1021, initial value 0), as nkeys checksum their keys. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
