import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bcryptHash, bcryptVerify, isBcryptHash, isWellFormedBcryptHash } from '../../../core/util/bcrypt.ts';

/** [password, hash]: jBCrypt's published vectors and hashes made with libxcrypt's crypt(3). */
const VECTORS: readonly [string, string][] = [
  ['', '$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.'],
  ['a', '$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe'],
  ['s3cr3t', '$2b$06$yc4iHqDEi99hSGjqEY7zXeyYlI.pw6RW.QMKAbCTHWHwqWVFO60.i'],
  ['s3cr3t', '$2b$04$0123456789ABCDEFGHIJK.1zMXhY2mrjt3Mf/FfGrVEVz6v3myPOm'],
  ['pässwörd', '$2y$05$abcdefghijklmnopqrstuuZVEMa1pjhlynBQ1qXmSvGBJpN9h1w8G'],
  ['x'.repeat(100), '$2b$05$abcdefghijklmnopqrstuujf8SX2ahXLwp9w/B.Y5XdysS6yR576q'],
];

test('known hashes verify with their password and not with another', () => {
  for (const [password, hash] of VECTORS) {
    assert.equal(bcryptVerify(password, hash), true, hash);
    assert.equal(bcryptVerify(`${password}!`, hash), password.length >= 72, hash);
  }
});

test('only the first 72 bytes of a password count', () => {
  const hash = '$2b$05$abcdefghijklmnopqrstuujf8SX2ahXLwp9w/B.Y5XdysS6yR576q';
  assert.equal(bcryptVerify('x'.repeat(72), hash), true);
  assert.equal(bcryptVerify('x'.repeat(71), hash), false);
});

test('a salt whose last character is not canonical still verifies (only the digest is compared)', () => {
  assert.equal(bcryptVerify('s3cr3t', '$2b$04$0123456789ABCDEFGHIJKL1zMXhY2mrjt3Mf/FfGrVEVz6v3myPOm'), true);
});

test('bcryptHash round-trips, salts randomly, and refuses a bad cost', () => {
  const first = bcryptHash('pw', 4);
  const second = bcryptHash('pw', 4);
  assert.match(first, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
  assert.notEqual(first, second);
  assert.equal(bcryptVerify('pw', first), true);
  assert.throws(() => bcryptHash('pw', 3), RangeError);
});

test('hash detection follows nats-server ($2a$/$2b$/$2x$/$2y$ and two digits); malformed hashes never verify', () => {
  assert.equal(isBcryptHash('$2a$11$whatever'), true);
  assert.equal(isBcryptHash('$2z$11$whatever'), false);
  assert.equal(isBcryptHash('plain'), false);
  assert.equal(isWellFormedBcryptHash('$2a$11$whatever'), false);
  assert.equal(isWellFormedBcryptHash('$2a$03$0123456789ABCDEFGHIJK.1zMXhY2mrjt3Mf/FfGrVEVz6v3myPOm'), false);
  assert.equal(bcryptVerify('s3cr3t', '$2b$04$0123456789ABCDEFGHIJK.1zMXhY2mrjt3Mf/FfGrVEVz6v3myPO'), false);
});
