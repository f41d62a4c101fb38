/**
 * NATS JWTs (nats-io/jwt v2, as `nsc` writes them): decoding one and checking its
 * signature. A NATS JWT is three base64url parts, `header.claims.signature`: the
 * header is `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims are JSON with the
 * standard `iss`, `sub`, `iat`, `exp`, `nbf` and a `nats` object whose `type` says
 * what the JWT describes (operator, account or user), and the signature is the
 * Ed25519 signature of `header.claims` (the ASCII text) by the `iss` nkey.
 *
 * Who may issue what (the `iss` role) is fixed by the type: operators sign their own
 * JWT (or with an operator signing key), operators sign accounts, accounts sign users.
 * Whether that issuer is *trusted* is operator-mode.ts's question, not this file's.
 * v1 JWTs (`alg` "ed25519") are refused: nsc has written v2 since 2020.
 */
import { isPlainObject } from './config-fields.ts';
import { isEd25519SignatureValid, isPublicNkey, publicNkeyVerifier, type NkeyRole } from './nkey.ts';

export const JwtType = ['operator', 'account', 'user'] as const;
export type JwtType = (typeof JwtType)[number];

/** The claims of a verified NATS JWT. Times are Unix seconds, as on the wire. */
export type JwtClaims = {
  /** The public nkey that signed the JWT. */
  readonly iss: string;
  /** The public nkey the JWT describes. */
  readonly sub: string;
  readonly name: string;
  readonly iat: number;
  /** Expiry; undefined (or 0 on the wire) = never. */
  readonly exp: number | undefined;
  /** Not valid before; undefined = at once. */
  readonly nbf: number | undefined;
  /** The type's own claims (`signing_keys`, `revocations`, `pub`, `sub`, …), unchecked beyond being an object. */
  readonly nats: Readonly<Record<string, unknown>>;
};

/** A verified JWT's claims, or why it is not one (for logs: never the JWT itself). */
export type JwtDecodeResult = { readonly claims: JwtClaims; readonly error?: undefined } | { readonly error: string };

const JWT_ALGORITHM = 'ed25519-nkey';
/** The role of the key that may sign each type. */
const ISSUER_ROLE: Readonly<Record<JwtType, NkeyRole>> = { operator: 'operator', account: 'operator', user: 'account' };
/** base64url without padding (nats-io/jwt writes RawURLEncoding); padding is tolerated. */
const BASE64URL_PART = /^[A-Za-z0-9_-]+={0,2}$/;

function parseJsonPart(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    // Not JSON: the caller reports the part as malformed.
    return undefined;
  }
}

/** A claim time (Unix seconds); 0 and absent both mean "unset", as in nats-io/jwt. */
function timeClaim(value: unknown): number | undefined | false {
  if (value === undefined || value === 0) return undefined;
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : false;
}

/**
 * Decodes `text` as a NATS JWT of `type` and checks its signature by its issuer.
 * Time validity (exp, nbf) is checked separately ({@link jwtTimeProblem}), so a
 * config can hold an account JWT that expires later.
 */
export function decodeJwt(text: string, type: JwtType): JwtDecodeResult {
  const parts = text.trim().split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL_PART.test(part))) return { error: 'is not a JWT (three base64url parts)' };
  const [headerPart = '', claimsPart = '', signaturePart = ''] = parts;
  const header = parseJsonPart(headerPart);
  if (!isPlainObject(header) || typeof header['typ'] !== 'string' || header['typ'].toUpperCase() !== 'JWT') return { error: 'has no JWT header' };
  if (header['alg'] !== JWT_ALGORITHM) return { error: `is signed with ${JSON.stringify(header['alg'])}, not "${JWT_ALGORITHM}" (v2 JWTs only)` };
  const claims = parseJsonPart(claimsPart);
  if (!isPlainObject(claims) || !isPlainObject(claims['nats'])) return { error: 'has no "nats" claims' };
  const nats = claims['nats'];
  if (nats['type'] !== type) return { error: `is a ${JSON.stringify(nats['type'])} JWT, not a ${type} JWT` };
  const { iss, sub } = claims;
  const issuerRole = ISSUER_ROLE[type];
  if (typeof iss !== 'string' || !isPublicNkey(iss, issuerRole)) return { error: `has an issuer (iss) that is not an ${issuerRole} public key` };
  if (typeof sub !== 'string' || !isPublicNkey(sub, type)) return { error: `has a subject (sub) that is not ${type === 'account' ? 'an' : 'a'} ${type} public key` };
  const iat = claims['iat'] === undefined ? 0 : claims['iat'];
  const exp = timeClaim(claims['exp']);
  const nbf = timeClaim(claims['nbf']);
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat) || exp === false || nbf === false) return { error: 'has a time claim (iat, exp, nbf) that is not Unix seconds' };
  const verifier = publicNkeyVerifier(iss, issuerRole);
  const signed = Buffer.from(`${headerPart}.${claimsPart}`, 'ascii');
  if (verifier === undefined || !isEd25519SignatureValid(verifier, signed, Buffer.from(signaturePart, 'base64url'))) {
    return { error: 'has a signature that does not verify' };
  }
  const name = typeof claims['name'] === 'string' ? claims['name'] : '';
  return { claims: { iss, sub, name, iat, exp, nbf, nats } };
}

/**
 * 'expired' or 'not yet valid' when the claims' time window excludes `nowMs`, else
 * undefined. A JWT is expired from its `exp` second on (nats-io/jwt lets the last
 * second through; canopy closes the connection at `exp` anyway, so it refuses it).
 */
export function jwtTimeProblem(claims: JwtClaims, nowMs: number): 'expired' | 'not yet valid' | undefined {
  if (claims.exp !== undefined && nowMs >= claims.exp * 1000) return 'expired';
  if (claims.nbf !== undefined && nowMs < claims.nbf * 1000) return 'not yet valid';
  return undefined;
}

/**
 * The JWT inside `text`: the text itself, or the first block of a decorated file as
 * `nsc` writes them (`-----BEGIN NATS OPERATOR JWT-----`, the JWT, `------END …`).
 */
export function extractJwt(text: string): string {
  const decorated = /-{3,}[^\n]*-{3,}\r?\n\s*([A-Za-z0-9_\-.=]+)\s*\r?\n\s*-{3,}[^\n]*-{3,}/.exec(text);
  return decorated?.[1] ?? text.trim();
}
