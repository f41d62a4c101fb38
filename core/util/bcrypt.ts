/**
 * bcrypt-hashed passwords and tokens, as nats-server accepts them: `$2a$`, `$2b$`, `$2x$` and
 * `$2y$` hashes, all treated alike (as Go's x/crypto/bcrypt does). The hashing is bcryptjs's
 * (a well-kept pure-JS implementation); this file holds nats-server's rules around it.
 *
 * Synchronous: a check costs about 2^cost Blowfish key schedules of CPU on the event loop, so
 * callers cache successes (core/server/auth.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** The lowest and highest cost a bcrypt hash may name. */
export const BCRYPT_COST_MIN = 4;
export const BCRYPT_COST_MAX = 31;
/** The digest: the last 31 characters of a hash. */
const DIGEST_CHARS = 31;
/** nats-server's test for a bcrypt password or token (auth.go `validBcryptPrefix`). */
const BCRYPT_PREFIX = /^\$2[abxy]\$\d{2}\$/;
const BCRYPT_HASH = /^\$2[abxy]\$(\d{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;

/** Whether `secret` is meant as a bcrypt hash (nats-server's rule: it starts with `$2a$NN$` and the like). */
export function isBcryptHash(secret: string): boolean {
  return BCRYPT_PREFIX.test(secret);
}

/** Whether `hash` is a complete, well-formed bcrypt hash whose cost is in range. */
export function isWellFormedBcryptHash(hash: string): boolean {
  const match = BCRYPT_HASH.exec(hash);
  if (match === null) return false;
  const cost = Number(match[1]);
  return cost >= BCRYPT_COST_MIN && cost <= BCRYPT_COST_MAX;
}

/** Whether `password` matches `hash`; false for a malformed hash. Constant time in the comparison. */
export function bcryptVerify(password: string, hash: string): boolean {
  const match = BCRYPT_HASH.exec(hash);
  if (match === null || !isWellFormedBcryptHash(hash)) return false;
  // Every minor version hashes alike; only the digest is compared: the salt's last character
  // carries 2 bits, and some tools write other characters there (Go's bcrypt keeps the salt
  // text as written too), which bcryptjs would re-encode.
  const computed = bcrypt.hashSync(password, `$2b$${match[1]}$${match[2]}`);
  const actual = Buffer.from(computed.slice(-DIGEST_CHARS), 'latin1');
  const expected = Buffer.from(match[3] ?? '', 'latin1');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Hashes `password` as `$2b$<cost>$…` with a random salt. */
export function bcryptHash(password: string, cost: number): string {
  if (!Number.isInteger(cost) || cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX) throw new RangeError(`bcrypt cost must be ${BCRYPT_COST_MIN} to ${BCRYPT_COST_MAX}`);
  return bcrypt.hashSync(password, bcrypt.genSaltSync(cost));
}
