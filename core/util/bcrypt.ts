/**
 * bcrypt (Provos and Mazières, "A Future-Adaptable Password Scheme", 1999), as
 * nats-server accepts it for stored passwords and tokens: `$2a$`, `$2b$`, `$2x$`
 * and `$2y$` hashes, all treated alike (as Go's x/crypto/bcrypt does): the key is
 * the password's UTF-8 bytes plus a NUL, cut at 72 bytes.
 *
 * Written here because no bcrypt package is among canopy's dependencies and
 * Node's crypto has none. It is synchronous and costs about 2^cost key
 * schedules of CPU; callers on the event loop should cache successes.
 *
 * Blowfish's initial P-array and S-boxes are the hexadecimal digits of pi's
 * fractional part (P[0] = 0x243f6a88 …). Rather than carry 4 KiB of constants,
 * they are computed once, on first use, with Machin's formula in BigInt.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** The lowest and highest cost a bcrypt hash may name. */
export const BCRYPT_COST_MIN = 4;
export const BCRYPT_COST_MAX = 31;
/** Key bytes bcrypt uses; the rest of a longer password is ignored. */
export const BCRYPT_KEY_BYTES_MAX = 72;
const SALT_BYTES = 16;
const SALT_CHARS = 22;
const HASH_CHARS = 31;
const P_WORDS = 18;
const S_WORDS = 1024;
/** "OrpheanBeholderScryDoubt": the text bcrypt encrypts 64 times. */
const MAGIC_TEXT = 'OrpheanBeholderScryDoubt';
const MAGIC_ROUNDS = 64;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** nats-server's test for a bcrypt password or token (auth.go `validBcryptPrefix`). */
const BCRYPT_PREFIX = /^\$2[abxy]\$\d{2}\$/;
const BCRYPT_HASH = /^\$2([abxy])\$(\d{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;

let initialState: Uint32Array | undefined;

/** Whether `secret` is meant as a bcrypt hash (nats-server's rule: it starts with `$2a$NN$` and the like). */
export function isBcryptHash(secret: string): boolean {
  return BCRYPT_PREFIX.test(secret);
}

/** Whether `hash` is a complete, well-formed bcrypt hash whose cost is in range. */
export function isWellFormedBcryptHash(hash: string): boolean {
  const match = BCRYPT_HASH.exec(hash);
  if (match === null) return false;
  const cost = Number(match[2]);
  return cost >= BCRYPT_COST_MIN && cost <= BCRYPT_COST_MAX;
}

/** Whether `password` matches `hash`; false for a malformed hash. Constant time in the comparison. */
export function bcryptVerify(password: string, hash: string): boolean {
  const match = BCRYPT_HASH.exec(hash);
  if (match === null) return false;
  const cost = Number(match[2]);
  if (cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX) return false;
  const salt = decodeBcryptBase64(match[3] ?? '', SALT_BYTES);
  // Only the digest is compared: the salt's last character carries 2 bits, and some
  // tools write other characters there (Go's bcrypt keeps the salt text as written too).
  const expected = Buffer.from(match[4] ?? '', 'latin1');
  const actual = Buffer.from(formatHash({ minor: match[1] ?? 'b', cost, salt, password }).slice(-HASH_CHARS), 'latin1');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Hashes `password` as `$2b$<cost>$…` with a random salt (or the given 16 bytes). */
export function bcryptHash(password: string, cost: number, salt: Buffer = randomBytes(SALT_BYTES)): string {
  if (!Number.isInteger(cost) || cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX) {
    throw new RangeError(`bcrypt cost must be an integer from ${BCRYPT_COST_MIN} to ${BCRYPT_COST_MAX}`);
  }
  if (salt.length !== SALT_BYTES) throw new RangeError(`bcrypt salt must be ${SALT_BYTES} bytes`);
  return formatHash({ minor: 'b', cost, salt, password });
}

function formatHash(options: { minor: string; cost: number; salt: Buffer; password: string }): string {
  const key = Buffer.concat([Buffer.from(options.password, 'utf8'), Buffer.alloc(1)]).subarray(0, BCRYPT_KEY_BYTES_MAX);
  const digest = bcryptDigest(options.cost, options.salt, key);
  const costText = String(options.cost).padStart(2, '0');
  const saltText = encodeBcryptBase64(options.salt).slice(0, SALT_CHARS);
  const digestText = encodeBcryptBase64(digest.subarray(0, 23)).slice(0, HASH_CHARS);
  return `$2${options.minor}$${costText}$${saltText}${digestText}`;
}

/** EksBlowfishSetup, then "OrpheanBeholderScryDoubt" encrypted 64 times; returns the 24 ciphertext bytes. */
function bcryptDigest(cost: number, salt: Buffer, key: Buffer): Buffer {
  const state = blowfishInitialState().slice();
  const zero = Buffer.alloc(0);
  expandKey(state, salt, key);
  const rounds = 2 ** cost;
  for (let round = 0; round < rounds; round++) {
    expandKey(state, zero, key);
    expandKey(state, zero, salt);
  }
  const magic = Buffer.from(MAGIC_TEXT, 'latin1');
  const words = new Uint32Array(6);
  for (let i = 0; i < 6; i++) words[i] = magic.readUInt32BE(i * 4);
  const block = new Uint32Array(2);
  for (let round = 0; round < MAGIC_ROUNDS; round++) {
    for (let i = 0; i < 6; i += 2) {
      block[0] = words[i]!;
      block[1] = words[i + 1]!;
      encipher(state, block);
      words[i] = block[0]!;
      words[i + 1] = block[1]!;
    }
  }
  const out = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) out.writeUInt32BE(words[i]!, i * 4);
  return out;
}

/** The 32-bit word at `*offset` of `data` read cyclically, big-endian; advances the offset. */
function streamWord(data: Buffer, offset: { value: number }): number {
  let word = 0;
  for (let i = 0; i < 4; i++) {
    word = ((word << 8) | data[offset.value]!) >>> 0;
    offset.value = (offset.value + 1) % data.length;
  }
  return word;
}

/**
 * Blowfish's key schedule with bcrypt's salt: the key is XORed into P, then P and S
 * are replaced by successive encryptions, each block first XORed with the next salt
 * words (no salt: an empty buffer).
 */
function expandKey(state: Uint32Array, salt: Buffer, key: Buffer): void {
  const keyOffset = { value: 0 };
  for (let i = 0; i < P_WORDS; i++) state[i] = (state[i]! ^ streamWord(key, keyOffset)) >>> 0;
  const saltOffset = { value: 0 };
  const hasSalt = salt.length > 0;
  const block = new Uint32Array(2);
  for (let i = 0; i < P_WORDS + S_WORDS; i += 2) {
    if (hasSalt) {
      block[0] = block[0]! ^ streamWord(salt, saltOffset);
      block[1] = block[1]! ^ streamWord(salt, saltOffset);
    }
    encipher(state, block);
    state[i] = block[0]!;
    state[i + 1] = block[1]!;
  }
}

/** Encrypts one 64-bit block in place; `state` is P (18 words) followed by the four S-boxes. */
function encipher(state: Uint32Array, block: Uint32Array): void {
  let left = block[0]!;
  let right = block[1]!;
  left ^= state[0]!;
  for (let i = 1; i <= 16; i += 2) {
    right ^= feistel(state, left) ^ state[i]!;
    left ^= feistel(state, right) ^ state[i + 1]!;
  }
  right ^= state[17]!;
  block[0] = right >>> 0;
  block[1] = left >>> 0;
}

function feistel(state: Uint32Array, x: number): number {
  const a = state[P_WORDS + (x >>> 24)]!;
  const b = state[P_WORDS + 256 + ((x >>> 16) & 0xff)]!;
  const c = state[P_WORDS + 512 + ((x >>> 8) & 0xff)]!;
  const d = state[P_WORDS + 768 + (x & 0xff)]!;
  return ((((a + b) >>> 0) ^ c) + d) >>> 0;
}

/** P then S0..S3: the first 1042 32-bit words of pi's fractional part in hexadecimal. */
export function blowfishInitialState(): Uint32Array {
  if (initialState !== undefined) return initialState;
  const words = P_WORDS + S_WORDS;
  const guardBits = 64n;
  const bits = BigInt(words * 32) + guardBits;
  const one = 1n << bits;
  const pi = 16n * arctanInverse(5n, one) - 4n * arctanInverse(239n, one);
  const fraction = (pi - 3n * one) >> guardBits;
  const hex = fraction.toString(16).padStart(words * 8, '0');
  const state = new Uint32Array(words);
  for (let i = 0; i < words; i++) state[i] = Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  initialState = state;
  return state;
}

/** arctan(1/x) scaled by `one`, from its Taylor series. */
function arctanInverse(x: bigint, one: bigint): bigint {
  const xSquared = x * x;
  let power = one / x;
  let sum = power;
  let isNegative = true;
  for (let divisor = 3n; power !== 0n; divisor += 2n) {
    power /= xSquared;
    sum = isNegative ? sum - power / divisor : sum + power / divisor;
    isNegative = !isNegative;
  }
  return sum;
}

/** bcrypt's own base64 (alphabet `./A-Za-z0-9`, no padding). */
function encodeBcryptBase64(data: Buffer): string {
  let text = '';
  for (let i = 0; i < data.length; i += 3) {
    const b0 = data[i]!;
    const b1 = data[i + 1] ?? 0;
    const b2 = data[i + 2] ?? 0;
    text += BCRYPT_ALPHABET[b0 >>> 2]! + BCRYPT_ALPHABET[((b0 & 0x03) << 4) | (b1 >>> 4)]!;
    if (i + 1 < data.length) text += BCRYPT_ALPHABET[((b1 & 0x0f) << 2) | (b2 >>> 6)]!;
    if (i + 2 < data.length) text += BCRYPT_ALPHABET[b2 & 0x3f]!;
  }
  return text;
}

function decodeBcryptBase64(text: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let bitBuffer = 0;
  let bitCount = 0;
  let written = 0;
  for (const char of text) {
    bitBuffer = (bitBuffer << 6) | BCRYPT_ALPHABET.indexOf(char);
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      if (written < bytes) out[written++] = (bitBuffer >>> bitCount) & 0xff;
    }
  }
  return out;
}
