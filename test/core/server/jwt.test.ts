/**
 * NATS JWT decoding (core/server/jwt.ts) and operator/account nkeys (nkey.ts): each
 * malformed part is refused with its own reason, and (properties, fast-check; a failure
 * prints its seed, SEED=<n> replays it, JWT_PROPERTY_RUNS=<n> runs longer) no string and
 * no signed claims make decoding or authentication throw. The interop suite
 * (test/interop/jwt-auth.test.ts) covers the chain through real connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nkeys } from '@nats-io/transport-node';
import { decodeJwt, extractJwt, jwtTimeProblem } from '../../../core/server/jwt.ts';
import { isPublicNkey } from '../../../core/server/nkey.ts';
import { authenticateJwt, resolveOperatorMode } from '../../../core/server/operator-mode.ts';
import { decoratedOperatorJwt, encodeJwt, newTrustChain, newUser, signNonce } from '../../helpers/nats-jwt.ts';
import { fastCheckParameters } from '../subjects/fast-check-parameters.ts';

function propertyParameters<T>(defaultRuns: number): fc.Parameters<T> {
  const runs = process.env['JWT_PROPERTY_RUNS'];
  return fastCheckParameters({ numRuns: runs === undefined || runs === '' ? defaultRuns : Number(runs) });
}

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

test('property: any string gives claims or an error from decodeJwt, never a throw', () => {
  const { jwt } = newUser({ signer: nkeys.createAccount() });
  const near = fc.tuple(fc.nat({ max: jwt.length }), fc.string({ maxLength: 8 })).map(([at, text]) => jwt.slice(0, at) + text + jwt.slice(at + text.length));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), near), (text) => {
      const decoded = decodeJwt(text, 'user');
      assert.ok(decoded.error !== undefined || decoded.claims.sub !== '');
    }),
    propertyParameters(2000),
  );
});

test('property: a correctly signed user JWT with arbitrary claims is authorized or refused, never a throw', () => {
  const chain = newTrustChain();
  const mode = resolveOperatorMode({ operator: chain.operatorJwt, systemAccount: undefined, resolver: 'MEMORY', resolverPreload: { [chain.account.getPublicKey()]: chain.accountJwt } });
  assert.ok(mode !== undefined);
  const user = nkeys.createUser();
  const claimKeys = fc.constantFrom('pub', 'sub', 'resp', 'src', 'times', 'subs', 'data', 'payload', 'bearer_token', 'issuer_account', 'allowed_connection_types');
  const subjectish = fc.oneof(fc.constantFrom('a.b', 'a.*', '>', 'q.> workers', '', 'a..b'), fc.string({ maxLength: 10 }));
  const permission = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({ allow: fc.array(subjectish, { maxLength: 3 }), deny: fc.array(subjectish, { maxLength: 3 }) }, { requiredKeys: [] }));
  const natsClaims = fc.dictionary(claimKeys, fc.oneof(permission, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 });
  // Signing is tweetnacl in JavaScript (tens of ms on a loaded Pi-class core): one nonce signature serves every run.
  const sig = signNonce(user, 'nonce');
  const client = { remoteAddress: '127.0.0.1', connectionType: 'STANDARD' } as const;
  const times = fc.record({ exp: fc.jsonValue({ maxDepth: 0 }), nbf: fc.jsonValue({ maxDepth: 0 }), iat: fc.jsonValue({ maxDepth: 0 }) }, { requiredKeys: [] });
  fc.assert(
    fc.property(natsClaims, times, (nats, claims) => {
      const jwt = encodeJwt({ type: 'user', signer: chain.account, subject: user.getPublicKey(), nats, claims });
      const result = authenticateJwt({ mode, connect: { jwt, sig }, nonce: 'nonce', client, nowMs: Date.now() });
      if (result.isAuthorized) assert.equal(result.user.name, user.getPublicKey());
      else assert.equal(typeof result.reason, 'string');
    }),
    propertyParameters(60),
  );
});
