/**
 * NATS nkeys, public half only: a user's public key as configured (`U…`) and the
 * check of the Ed25519 signature a client sends in CONNECT `sig` over the INFO
 * `nonce`. An nkey is RFC 4648 base32 (no padding) of one prefix byte, the 32-byte
 * Ed25519 key and a CRC-16/XMODEM of both, little-endian (56 characters for a
 * public key). Ed25519 itself is Node's crypto, so no nkeys package is needed.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** The prefix byte of a user public key: 'U' (20) in the top five bits. */
const PREFIX_BYTE_USER = 20 << 3;
const ED25519_KEY_BYTES = 32;
const PUBLIC_NKEY_BYTES = 1 + ED25519_KEY_BYTES + 2;
const ED25519_SIGNATURE_BYTES = 64;

/** The raw Ed25519 key of a user public nkey (`U…`), or undefined when it is not one (bad text or checksum). */
export function decodeUserPublicNkey(nkey: string): Buffer | undefined {
  const raw = decodeBase32(nkey);
  if (raw === undefined || raw.length !== PUBLIC_NKEY_BYTES) return undefined;
  if (raw[0] !== PREFIX_BYTE_USER) return undefined;
  const body = raw.subarray(0, raw.length - 2);
  if (crc16(body) !== raw.readUInt16LE(raw.length - 2)) return undefined;
  return Buffer.from(body.subarray(1));
}

/** Whether `nkey` is a valid user public nkey. */
export function isUserPublicNkey(nkey: string): boolean {
  return decodeUserPublicNkey(nkey) !== undefined;
}

/** An Ed25519 public key object for a user public nkey, for {@link verifyNonceSignature}. */
export function userNkeyVerifier(nkey: string): KeyObject | undefined {
  const key = decodeUserPublicNkey(nkey);
  if (key === undefined) return undefined;
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') }, format: 'jwk' });
}

/**
 * Whether `signature` (base64url as nats-server expects, or standard base64 with padding
 * as nats.js sends it: Node's decoder takes both) is `key`'s signature of the nonce text.
 */
export function verifyNonceSignature(key: KeyObject, nonce: string, signature: string): boolean {
  const signatureBytes = Buffer.from(signature, 'base64');
  if (signatureBytes.length !== ED25519_SIGNATURE_BYTES) return false;
  return verify(null, Buffer.from(nonce, 'utf8'), key, signatureBytes);
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
