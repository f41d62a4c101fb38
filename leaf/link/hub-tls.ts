/**
 * The leaf's side of TLS on the link (leaf/README.md "TLS"): the socket options for a wss://
 * hub URL (the `hub_tls` CA and client certificate; Node verifies the hub's certificate
 * chain and host name, against the system CAs when no CA is configured) and a reading of a
 * failed dial that tells TLS failures, which an operator must fix, from network ones.
 */
import type { ClientOptions } from 'ws';
import type { LeafLinkTls } from '../../core/server/link-options.ts';

/** What a failed dial was: the reason to log and report, and the TLS error code when TLS failed. */
export type DialFailure = { readonly reason: string; readonly tlsCode: string | undefined };

/**
 * OpenSSL's certificate verification results as Node names them (the `tls` docs, "X509
 * certificate error codes"): the hub's certificate was not accepted.
 */
const X509_VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA',
  'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH',
]);

/** The `ws` options that make a dial to `url` use the leaf's TLS settings (none for ws:// URLs). */
export function tlsDialOptions(url: string, tls: LeafLinkTls | undefined): ClientOptions {
  if (tls === undefined || !url.startsWith('wss://')) return {};
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
  };
}

/** Reads a socket error of a dial to `url` (before the WebSocket opened). */
export function dialFailureOf(url: string, err: Error): DialFailure {
  const code = (err as NodeJS.ErrnoException).code;
  // OpenSSL errors carry a short `reason` besides a message with file names and line numbers.
  const short: unknown = (err as Error & { reason?: unknown }).reason;
  const text = typeof short === 'string' ? short : err.message;
  if (code === undefined || !url.startsWith('wss://')) return { reason: err.message, tlsCode: undefined };
  if (X509_VERIFY_CODES.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return { reason: `the hub's certificate is not accepted: ${text} (hub_tls_ca, and the host name in the hub URL)`, tlsCode: code };
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return { reason: `${text}: the hub does not serve TLS on this port (ws://, or leaf_tls on the hub)`, tlsCode: code };
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return { reason: `${text}: the hub requires a client certificate (hub_tls_cert)`, tlsCode: code };
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return { reason: text, tlsCode: code };
  // The hub drops a handshake whose client certificate it does not accept without telling why.
  if (code === 'ECONNRESET') return { reason: `${err.message} (during TLS: does the hub accept this leaf's client certificate? see the hub's log)`, tlsCode: undefined };
  return { reason: err.message, tlsCode: undefined };
}
