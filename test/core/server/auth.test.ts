import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nkeys } from '@nats-io/transport-node';
import { Authenticator, newNonce, resolveAuthOptions, type AuthOptions } from '../../../core/server/auth.ts';
import { decodeUserPublicNkey, isUserPublicNkey, userNkeyVerifier, verifyNonceSignature } from '../../../core/server/nkey.ts';
import { ConfigError, resolveServerOptions } from '../../../core/server/options.ts';

const NO_FLAGS = { token: '', user: '', password: '' };
const S3CR3T_BCRYPT = '$2b$04$0123456789ABCDEFGHIJK.1zMXhY2mrjt3Mf/FfGrVEVz6v3myPOm';

function resolve(authorization: unknown, flags: Partial<typeof NO_FLAGS> = {}): AuthOptions | undefined {
  return resolveAuthOptions({ authorization, ...NO_FLAGS, ...flags });
}

function assertConfigError(fn: () => unknown, key: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key, err.message);
    return true;
  });
}

test('no authorization block and no flags: no auth', () => {
  assert.equal(resolve(undefined), undefined);
  assert.equal(resolve({}), undefined, 'an empty block is no auth, as in nats-server');
  assert.equal(resolveServerOptions({}).auth, undefined);
});

test('token, single user, users and nkey users resolve with their permissions parsed', () => {
  assert.equal(resolve({ token: 't' })?.token, 't');
  const single = resolve({ username: 'a', pass: 'b', permissions: { publish: 'x' } });
  const publishX = { publish: { allow: [{ subject: 'x', queue: '' }], deny: undefined }, subscribe: undefined, allowResponses: undefined };
  assert.deepEqual(single?.users.get('a'), { user: 'a', password: 'b', permissions: publishX, account: '$G' });
  const nkey = nkeys.createUser().getPublicKey();
  const many = resolve({
    default_permissions: { subscribe: ['d'] },
    users: [{ user: 'a', password: 'b' }, { user: 'c', password: S3CR3T_BCRYPT, permissions: { publish: ['c'] } }, { nkey }],
  });
  const subscribeD = { publish: undefined, subscribe: { allow: [{ subject: 'd', queue: '' }], deny: undefined }, allowResponses: undefined };
  assert.deepEqual(many?.users.get('a')?.permissions, subscribeD);
  assert.deepEqual(many?.users.get('c')?.permissions?.publish?.allow, [{ subject: 'c', queue: '' }]);
  assert.equal(many?.users.get('c')?.permissions?.subscribe, undefined, "a user's own permissions replace the defaults");
  assert.deepEqual(many?.nkeyUsers.get(nkey), { nkey, permissions: subscribeD, account: '$G' });
});

test('flags set or replace the token and the single user', () => {
  assert.equal(resolve(undefined, { token: 'flag' })?.token, 'flag');
  assert.equal(resolve({ token: 'file' }, { token: 'flag' })?.token, 'flag');
  assert.deepEqual([...(resolve({ user: 'u', password: 'p' }, { password: 'q' })?.users.values() ?? [])], [{ user: 'u', password: 'q', permissions: undefined, account: '$G' }]);
  const options = resolveServerOptions({ user: 'ops', pass: 'pw' });
  assert.equal(options.auth?.users.get('ops')?.password, 'pw');
});

test('authorization.timeout replaces auth_timeout', () => {
  assert.equal(resolveServerOptions({ authorization: { token: 't', timeout: 0.5 } }).authTimeoutMs, 500);
  assert.equal(resolveServerOptions({ authorization: { token: 't', timeout: '3s' } }).authTimeoutMs, 3000);
  assert.equal(resolveServerOptions({ authorization: { token: 't' }, auth_timeout: 4 }).authTimeoutMs, 4000);
});

test('bad shapes are ConfigErrors naming the key', () => {
  assertConfigError(() => resolve([]), 'authorization');
  assertConfigError(() => resolve({ timeout: 1 }), 'authorization');
  assertConfigError(() => resolve({ tokn: 'x' }), 'authorization.tokn');
  assertConfigError(() => resolve({ token: '' }), 'authorization.token');
  assertConfigError(() => resolve({ token: 5 }), 'authorization.token');
  assertConfigError(() => resolve({ token: '$2a$10$short' }), 'authorization.token');
  assertConfigError(() => resolve({ user: 'a' }), 'authorization.user');
  assertConfigError(() => resolve({ password: 'a' }), 'authorization.password');
  assertConfigError(() => resolve({ user: 'a', username: 'b', password: 'c' }), 'authorization.username');
  assertConfigError(() => resolve({ user: 'a', password: 'b', users: [] }), 'authorization.users');
  assertConfigError(() => resolve({ token: 't', user: 'a', password: 'b' }), 'authorization.token');
  assertConfigError(() => resolve({ timeout: 'soon', token: 't' }), 'authorization.timeout');
  assertConfigError(() => resolve({ permissions: ['x'], token: 't' }), 'authorization.permissions');
  assertConfigError(() => resolve({ users: {} }), 'authorization.users');
  assertConfigError(() => resolve({ users: ['a'] }), 'authorization.users[0]');
  assertConfigError(() => resolve({ users: [{}] }), 'authorization.users[0]');
  assertConfigError(() => resolve({ users: [{ user: 'a', password: 'b' }, { user: 'a', password: 'c' }] }), 'authorization.users[1].user');
  assertConfigError(() => resolve({ users: [{ user: 'a', password: 'b', permissions: 'all' }] }), 'authorization.users[0].permissions');
  const nkey = nkeys.createUser().getPublicKey();
  assertConfigError(() => resolve({ users: [{ nkey, password: 'b' }] }), 'authorization.users[0].nkey');
  assertConfigError(() => resolve({ users: [{ nkey }, { nkey }] }), 'authorization.users[1].nkey');
  assertConfigError(() => resolve({ users: [{ nkey: nkeys.createAccount().getPublicKey() }] }), 'authorization.users[0].nkey');
  assertConfigError(() => resolve(undefined, { user: 'a' }), 'user');
  assertConfigError(() => resolve(undefined, { password: 'a' }), 'pass');
  assertConfigError(() => resolve({ users: [{ user: 'a', password: 'b' }] }, { token: 't' }), 'auth');
  assertConfigError(() => resolveServerOptions({ authorization: { users: [{ user: 'a' }] } }), 'authorization.users[0].password');
});

test('user public nkeys: checksum, prefix and alphabet are checked', () => {
  const user = nkeys.createUser();
  const publicKey = user.getPublicKey();
  assert.equal(decodeUserPublicNkey(publicKey)?.length, 32);
  const verifier = userNkeyVerifier(publicKey);
  assert.ok(verifier !== undefined);
  const signature = Buffer.from(user.sign(new TextEncoder().encode('nonce'))).toString('base64');
  assert.equal(verifyNonceSignature(verifier, 'nonce', signature), true, 'the decoded key checks the seed holder\'s signature');
  const flipped = publicKey.slice(0, 20) + (publicKey[20] === 'A' ? 'B' : 'A') + publicKey.slice(21);
  assert.equal(isUserPublicNkey(flipped), false);
  assert.equal(isUserPublicNkey(publicKey.toLowerCase()), false);
  assert.equal(isUserPublicNkey(nkeys.createOperator().getPublicKey()), false);
  assert.equal(isUserPublicNkey(new TextDecoder().decode(user.getSeed())), false);
});

test('Authenticator: nkey before user before token, with reasons that hold no secret', () => {
  const user = nkeys.createUser();
  const nkey = user.getPublicKey();
  const authenticator = new Authenticator(resolve({ users: [{ nkey }, { user: 'a', password: S3CR3T_BCRYPT }] }) as AuthOptions);
  assert.equal(authenticator.isNonceRequired, true);
  const nonce = newNonce();
  assert.match(nonce, /^[A-Za-z0-9_-]{15}$/);
  const sig = Buffer.from(user.sign(new TextEncoder().encode(nonce))).toString('base64url');
  assert.deepEqual(authenticator.authenticate({ nkey, sig }, { nonce: nonce, tlsPeer: undefined }), { isAuthorized: true, user: { kind: 'nkey', name: nkey, permissions: undefined, account: '$G' } });
  assert.equal(authenticator.authenticate({ nkey, sig }, { nonce: newNonce(), tlsPeer: undefined }).isAuthorized, false);
  assert.equal(authenticator.authenticate({ nkey, sig: 'not base64!' }, { nonce: nonce, tlsPeer: undefined }).isAuthorized, false);
  assert.equal(authenticator.authenticate({ user: 'a', pass: 's3cr3t' }, { nonce: nonce, tlsPeer: undefined }).isAuthorized, true);
  const wrong = authenticator.authenticate({ user: 'a', pass: 'guess' }, { nonce: nonce, tlsPeer: undefined });
  assert.deepEqual(wrong, { isAuthorized: false, reason: 'wrong password', user: 'a' });
  assert.deepEqual(authenticator.authenticate({ jwt: 'x.y.z', nkey, sig }, { nonce: nonce, tlsPeer: undefined }), { isAuthorized: false, reason: 'a JWT (credentials) was given, but operator mode is off (no "operator" configured)', user: undefined });
  const tokens = new Authenticator(resolve({ token: 't' }) as AuthOptions);
  assert.equal(tokens.isNonceRequired, false);
  assert.equal(tokens.authenticate({ auth_token: 't' }, { nonce: undefined, tlsPeer: undefined }).isAuthorized, true);
  assert.deepEqual(tokens.authenticate({ auth_token: 'u' }, { nonce: undefined, tlsPeer: undefined }), { isAuthorized: false, reason: 'wrong token', user: undefined });
  assert.deepEqual(tokens.authenticate({ user: 'a', pass: 'b' }, { nonce: undefined, tlsPeer: undefined }), { isAuthorized: false, reason: 'no token given', user: undefined });
});
