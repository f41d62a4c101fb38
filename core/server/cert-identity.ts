/**
 * Certificate → user mapping (nats-server's `tls { verify_and_map: true }`, auth.go
 * checkClientTLSCertSubject): the names a verified client certificate offers, and the rules
 * that pick the user they name. nats-server's order: the email SANs, then the DNS SANs, then
 * the URI SANs (each looked up as a user name, exactly), then the subject as a distinguished
 * name. A DN matches a user name that parses as the same DN: attribute types compare without
 * case (`cn=app` is `CN=app`), values exactly, and the RDNs either in the same order or, as
 * nats-server's second pass (ldap RDNsMatch), in any order.
 */
import type { X509Certificate } from 'node:crypto';

/** One attribute of a relative distinguished name: type upper-cased, value unescaped. */
type Attribute = { readonly type: string; readonly value: string };
/** A DN: its RDNs most specific first (RFC 2253 order); each RDN's attributes sorted. */
export type DistinguishedName = readonly (readonly Attribute[])[];

/** What a verified client certificate offers to be mapped to a user. */
export type CertIdentity = {
  readonly emails: readonly string[];
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  /** The subject, RFC 2253 (`CN=app 1+OU=eng,O=Acme\, Inc,C=US`): logs, and a literal match. */
  readonly subject: string;
  readonly subjectDn: DistinguishedName;
};

/** The identity of a certificate (Node's X509Certificate of the peer). */
export function certIdentityOf(cert: X509Certificate): CertIdentity {
  const sans = splitSubjectAltName(cert.subjectAltName ?? '');
  // Node prints the subject one RDN a line, least specific first, multi-valued RDNs joined by " + ".
  const lines = cert.subject.split('\n').filter((line) => line !== '');
  const subject = lines.reverse().map((line) => line.split(' + ').join('+')).join(',');
  return {
    emails: sans.filter((san) => san.type === 'email').map((san) => san.value),
    dnsNames: sans.filter((san) => san.type === 'DNS').map((san) => san.value),
    uris: sans.filter((san) => san.type === 'URI').map((san) => san.value),
    subject,
    subjectDn: parseDistinguishedName(subject) ?? [],
  };
}

/** Node's `subjectAltName`: `DNS:a, email:b, URI:c`; a value holding `, ` or `"` comes JSON-quoted. */
function splitSubjectAltName(text: string): { type: string; value: string }[] {
  const entries: { type: string; value: string }[] = [];
  let rest = text;
  while (rest.length > 0) {
    const colon = rest.indexOf(':');
    if (colon < 0) break;
    const type = rest.slice(0, colon).trim();
    rest = rest.slice(colon + 1);
    let value: string;
    if (rest.startsWith('"')) {
      const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (quoted === null) break;
      value = JSON.parse(quoted[0]) as string;
      rest = rest.slice(quoted[0].length);
    } else {
      const end = rest.indexOf(', ');
      value = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? '' : rest.slice(end);
    }
    entries.push({ type, value });
    rest = rest.replace(/^, /, '');
  }
  return entries;
}

/**
 * Parses an RFC 2253 string (`CN=app,O=Acme`; `\` escapes, `+` joins a multi-valued RDN);
 * undefined when it is not one (a user name such as `alice`).
 */
export function parseDistinguishedName(text: string): DistinguishedName | undefined {
  const rdns: Attribute[][] = [];
  let attributes: Attribute[] = [];
  let current = '';
  let type: string | undefined;
  const endAttribute = (): boolean => {
    if (type === undefined) return false;
    attributes.push({ type: type.trim().toUpperCase(), value: current.trim() });
    type = undefined;
    current = '';
    return true;
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '\\' && i + 1 < text.length) {
      current += text[++i];
    } else if (char === '=' && type === undefined) {
      type = current;
      current = '';
      if (!/^\s*[A-Za-z][A-Za-z0-9-]*\s*$|^\s*\d+(\.\d+)*\s*$/.test(type)) return undefined;
    } else if (char === '+' || char === ',') {
      if (!endAttribute()) return undefined;
      if (char === ',') {
        rdns.push(attributes);
        attributes = [];
      }
    } else {
      current += char;
    }
  }
  if (!endAttribute()) return undefined;
  rdns.push(attributes);
  return rdns.map((rdn) => rdn.sort((a, b) => (a.type === b.type ? (a.value < b.value ? -1 : 1) : a.type < b.type ? -1 : 1)));
}

function rdnKey(rdn: readonly Attribute[]): string {
  return JSON.stringify(rdn.map((attribute) => [attribute.type, attribute.value]));
}

/** Same RDNs in the same order (ldap DN.Equal). */
export function isSameDn(a: DistinguishedName, b: DistinguishedName): boolean {
  return a.length === b.length && a.every((rdn, i) => rdnKey(rdn) === rdnKey(b[i]!));
}

/** Same RDNs in any order (ldap DN.RDNsMatch: nats-server's fallback for reordered subjects). */
export function hasSameRdns(a: DistinguishedName, b: DistinguishedName): boolean {
  if (a.length !== b.length) return false;
  const keys = a.map(rdnKey).sort();
  const others = b.map(rdnKey).sort();
  return keys.every((key, i) => key === others[i]);
}

/** A user name that is a DN, parsed once (by the Authenticator) for {@link mapCertToUser}. */
export type UserDn = { readonly name: string; readonly dn: DistinguishedName };

/** The user names among `names` that parse as distinguished names. */
export function userDnsOf(names: Iterable<string>): UserDn[] {
  const userDns: UserDn[] = [];
  for (const name of names) {
    const dn = parseDistinguishedName(name);
    if (dn !== undefined) userDns.push({ name, dn });
  }
  return userDns;
}

/**
 * The user name `identity` maps to, in nats-server's order; undefined when none. `names` are
 * the configured user names, `userDns` those of them that are DNs.
 */
export function mapCertToUser(identity: CertIdentity, names: ReadonlyMap<string, unknown>, userDns: readonly UserDn[]): string | undefined {
  for (const candidate of [...identity.emails, ...identity.dnsNames, ...identity.uris]) {
    if (names.has(candidate)) return candidate;
  }
  if (identity.subjectDn.length === 0) return undefined;
  return (
    userDns.find((entry) => isSameDn(entry.dn, identity.subjectDn))?.name ??
    userDns.find((entry) => hasSameRdns(entry.dn, identity.subjectDn))?.name
  );
}
