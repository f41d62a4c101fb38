/**
 * NATS JWT decoding (core/server/jwt.ts) and operator/account nkeys (nkey.ts): each
 * malformed part is refused with its own reason; the interop suite
 * (test/interop/jwt-auth.test.ts) covers the chain through real connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nkeys } from '@nats-io/transport-node';
import { decodeJwt, extractJwt, jwtTimeProblem } from '../../../core/server/jwt.ts';
import { isPublicNkey } from '../../../core/server/nkey.ts';
import { decoratedOperatorJwt, encodeJwt, newTrustChain, newUser } from '../../helpers/nats-jwt.ts';

function replacePart(jwt: string, index: number, value: unknown): string {
  const parts = jwt.split('.');
  parts[index] = Buffer.from(JSON.stringify(value)).toString('base64url');
  return parts.join('.');
}

test('public nkeys of each role: the prefix decides', () => {
  const operator = nkeys.createOperator().getPublicKey();
  const account = nkeys.createAccount().getPublicKey();
  const user = nkeys.createUser().getPublicKey();
  assert.deepEqual([isPublicNkey(operator, 'operator'), isPublicNkey(account, 'account'), isPublicNkey(user, 'user')], [true, true, true]);
  assert.deepEqual([isPublicNkey(operator, 'account'), isPublicNkey(account, 'user'), isPublicNkey(user, 'operator')], [false, false, false]);
});

test('a valid user JWT decodes to its claims; time claims are Unix seconds', () => {
  const chain = newTrustChain();
  const { user, jwt } = newUser({ signer: chain.account, claims: { exp: 2_000_000_000, nbf: 1_000_000_000 } });
  const decoded = decodeJwt(jwt, 'user');
  assert.equal(decoded.error, undefined);
  assert.equal(decoded.claims?.sub, user.getPublicKey());
  assert.equal(decoded.claims?.iss, chain.account.getPublicKey());
  assert.equal(decoded.claims?.exp, 2_000_000_000);
  assert.equal(jwtTimeProblem(decoded.claims!, 1_500_000_000_000), undefined);
  assert.equal(jwtTimeProblem(decoded.claims!, 2_000_000_000_000), 'expired', 'expired from the exp second on');
  assert.equal(jwtTimeProblem(decoded.claims!, 999_999_999_000), 'not yet valid');
});

test('malformed JWTs: each broken part has its reason', () => {
  const chain = newTrustChain();
  const { jwt } = newUser({ signer: chain.account });
  const [, claimsPart] = jwt.split('.');
  const claims = JSON.parse(Buffer.from(claimsPart ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const cases: [string, string, RegExp][] = [
    ['two parts', jwt.split('.').slice(0, 2).join('.'), /three base64url parts/],
    ['not base64url', `${jwt}!`, /three base64url parts/],
    ['a v1 header', replacePart(jwt, 0, { typ: 'JWT', alg: 'ed25519' }), /"ed25519", not "ed25519-nkey"/],
    ['no JWT header', replacePart(jwt, 0, { alg: 'ed25519-nkey' }), /no JWT header/],
    ['claims not JSON', `${jwt.split('.')[0]}.bm90IGpzb24.${jwt.split('.')[2]}`, /no "nats" claims/],
    ['an account JWT where a user one is due', chain.accountJwt, /is a "account" JWT, not a user JWT/],
    ['a user key as issuer', replacePart(jwt, 1, { ...claims, iss: nkeys.createUser().getPublicKey() }), /issuer \(iss\) that is not an account public key/],
    ['an account key as subject', replacePart(jwt, 1, { ...claims, sub: chain.account.getPublicKey() }), /subject \(sub\) that is not a user public key/],
    ['a fractional exp', replacePart(jwt, 1, { ...claims, exp: 1.5 }), /not Unix seconds/],
    ['claims changed after signing', replacePart(jwt, 1, { ...claims, name: 'mallory' }), /signature that does not verify/],
    ['signed by another key', encodeJwt({ type: 'user', signer: nkeys.createAccount(), subject: String(claims['sub']), claims: { iss: chain.account.getPublicKey() } }), /signature that does not verify/],
  ];
  for (const [name, text, reason] of cases) assert.match(decodeJwt(text, 'user').error ?? 'decoded', reason, name);
});

test('extractJwt takes the JWT out of an nsc-decorated file, or the trimmed text', () => {
  const { operatorJwt } = newTrustChain();
  assert.equal(extractJwt(decoratedOperatorJwt(operatorJwt)), operatorJwt);
  assert.equal(extractJwt(`\n  ${operatorJwt}\n`), operatorJwt);
  const { jwt, creds } = newUser({ signer: nkeys.createAccount() });
  assert.equal(extractJwt(creds), jwt, 'a .creds file: the first block is the JWT');
});
