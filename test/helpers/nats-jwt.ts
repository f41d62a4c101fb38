/**
 * NATS JWTs made at test time, as `nsc` makes them: operator, account and user nkeys
 * (@nats-io/nkeys, which the official client re-exports as `nkeys`), v2 JWTs signed
 * by their issuer, and `.creds` files in nats' exact format for `credsAuthenticator`.
 * Nothing here is canopy code: the server under test verifies what this writes.
 */
import { randomBytes } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

export type KeyPair = ReturnType<typeof nkeys.createUser>;

/** Unix seconds, as JWT claims count time. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/**
 * A v2 NATS JWT of `type` about `subject`, signed by `signer`. `nats` holds the
 * type's claims (`signing_keys`, `pub`, …); `claims` overrides standard ones (exp, nbf, iat).
 */
export function encodeJwt(options: {
  type: 'operator' | 'account' | 'user';
  signer: KeyPair;
  subject: string;
  name?: string;
  nats?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims = {
    jti: randomBytes(16).toString('hex').toUpperCase(),
    iat: nowSeconds(),
    iss: options.signer.getPublicKey(),
    name: options.name ?? options.type,
    sub: options.subject,
    ...options.claims,
    nats: { ...options.nats, type: options.type, version: 2 },
  };
  const payload = base64url(JSON.stringify(claims));
  const signature = Buffer.from(options.signer.sign(new TextEncoder().encode(`${header}.${payload}`))).toString('base64url');
  return `${header}.${payload}.${signature}`;
}

/** The unlimited user limits nsc writes by default. */
export const NSC_USER_DEFAULTS = { pub: {}, sub: {}, subs: -1, data: -1, payload: -1 } as const;

/** A `.creds` file as `nsc generate creds` writes it (nats-server's test genCredsFile has the same layout). */
export function credsFile(jwt: string, seed: Uint8Array): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(seed),
    '------END USER NKEY SEED------',
    '',
    '*************************************************************',
    '',
  ].join('\n');
}

/** An operator JWT decorated as `nsc describe operator --raw` / `nsc env` files hold it. */
export function decoratedOperatorJwt(jwt: string): string {
  return `-----BEGIN NATS OPERATOR JWT-----\n${jwt}\n------END NATS OPERATOR JWT------\n`;
}

/** An operator and one account it signed: the trust chain most tests need. */
export type TrustChain = {
  readonly operator: KeyPair;
  readonly operatorJwt: string;
  readonly account: KeyPair;
  readonly accountJwt: string;
};

export function newTrustChain(options: { accountNats?: Record<string, unknown>; accountClaims?: Record<string, unknown> } = {}): TrustChain {
  const operator = nkeys.createOperator();
  const operatorJwt = encodeJwt({ type: 'operator', signer: operator, subject: operator.getPublicKey(), name: 'test-operator' });
  const account = nkeys.createAccount();
  const accountJwt = encodeJwt({
    type: 'account',
    signer: operator,
    subject: account.getPublicKey(),
    name: 'test-account',
    nats: { limits: { subs: -1, conn: -1, data: -1, payload: -1 }, ...options.accountNats },
    ...(options.accountClaims === undefined ? {} : { claims: options.accountClaims }),
  });
  return { operator, operatorJwt, account, accountJwt };
}

/** A new user of `signer`'s account: its key pair, its JWT and the `.creds` text. */
export function newUser(options: { signer: KeyPair; nats?: Record<string, unknown>; claims?: Record<string, unknown> }): { user: KeyPair; jwt: string; creds: string } {
  const user = nkeys.createUser();
  const jwt = encodeJwt({
    type: 'user',
    signer: options.signer,
    subject: user.getPublicKey(),
    name: 'test-user',
    nats: { ...NSC_USER_DEFAULTS, ...options.nats },
    ...(options.claims === undefined ? {} : { claims: options.claims }),
  });
  return { user, jwt, creds: credsFile(jwt, user.getSeed()) };
}

/** The CONNECT `sig` for `nonce`: the user key's signature, base64url (what nats.js sends). */
export function signNonce(user: KeyPair, nonce: string): string {
  return Buffer.from(user.sign(new TextEncoder().encode(nonce))).toString('base64url');
}
