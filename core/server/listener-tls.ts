/**
 * TLS of the broker's own listeners (issue 6): the client port (nats-server's `tls` block and
 * `--tls`, `--tlscert`, `--tlskey`, `--tlscacert`, `--tlsverify` flags), the WebSocket port
 * (`websocket.tls`) and the monitoring port (`https_port`, which serves with the client port's
 * certificate, as nats-server does). The link's TLS (`leaf_tls`, `hub_tls`) is resolved in
 * link-options.ts; both read and check their files with tls-material.ts.
 */
import type { CertIdentity } from './cert-identity.ts';
import { ConfigError } from './config-error.ts';
import { loadTlsMaterial, type TlsFileSetting, type TlsMaterial } from './tls-material.ts';

/**
 * nats-server's default `tls.timeout` (TLS_TIMEOUT, 2 s): how long a client may take from the
 * INFO to a finished handshake. A client that never starts one holds a socket until then.
 */
export const TLS_HANDSHAKE_MS_DEFAULT = 2000;

/** A listener that serves TLS. */
export type ListenerTls = TlsMaterial & {
  readonly cert: Buffer;
  readonly key: Buffer;
  /**
   * `verify`: the handshake requires a client certificate signed by `ca` (OpenSSL refuses
   * the rest).
   */
  readonly isClientCertRequired: boolean;
  /**
   * `verify_and_map` (implies `verify`): the certificate names the user (cert-identity.ts);
   * the client port only.
   */
  readonly isCertMapped: boolean;
  readonly handshakeTimeoutMs: number;
  /**
   * `handshake_first` (nats-server ≥ 2.10.4, nats.js `tls.handshakeFirst`): the client starts
   * the handshake at once and INFO comes after it, encrypted. nats-server's fallback form
   * (a delay after which INFO goes out in plain text) is not supported.
   */
  readonly isHandshakeFirst: boolean;
};

/** The files and switches of one TLS block, as the user named them (labels for errors). */
export type ListenerTlsSettings = {
  /** How the block is named in errors: `tls`, `websocket.tls`. */
  readonly block: string;
  readonly cert: TlsFileSetting | undefined;
  readonly key: TlsFileSetting | undefined;
  readonly ca: TlsFileSetting | undefined;
  readonly verify: { readonly label: string; readonly isOn: boolean };
  /** `verify_and_map` (the client port's `tls` block); turns `verify` on. */
  readonly isCertMapped: boolean;
  /** The client port's `handshake_first`. */
  readonly isHandshakeFirst: boolean;
  /** Whether TLS was switched on without files (`--tls`). */
  readonly isRequested: boolean;
  readonly handshakeTimeoutMs: number;
};

/**
 * Reads and checks one listener's TLS. Any setting of the block turns TLS on; it then needs a
 * certificate and its key, and `verify` needs a CA (without one the listener would accept
 * client certificates from any public CA). Undefined when nothing is set.
 */
export function resolveListenerTls(settings: ListenerTlsSettings): ListenerTls | undefined {
  const { cert, key, ca, block } = settings;
  const verify = settings.isCertMapped ? { ...settings.verify, isOn: true } : settings.verify;
  const isOn = settings.isRequested || cert !== undefined || key !== undefined || ca !== undefined || verify.isOn;
  if (!isOn) return undefined;
  if (cert === undefined) throw new ConfigError(`${block}.cert_file`, `TLS on this listener needs a certificate (${block}.cert_file) and its key (${block}.key_file)`);
  if (key === undefined) throw new ConfigError(`${block}.key_file`, `TLS on this listener needs the private key of ${cert.label} (${block}.key_file)`);
  if (verify.isOn && ca === undefined) throw new ConfigError(verify.label, `needs ${block}.ca_file: the CA that signs the clients' certificates`);
  const material = loadTlsMaterial({ cert, key, ...(ca === undefined ? {} : { ca }) });
  return {
    ...material,
    cert: material.cert!,
    key: material.key!,
    isClientCertRequired: verify.isOn,
    isCertMapped: settings.isCertMapped,
    handshakeTimeoutMs: settings.handshakeTimeoutMs,
    isHandshakeFirst: settings.isHandshakeFirst,
  };
}

/**
 * What a client's TLS handshake established, kept on its connection (/connz `tls_version`,
 * `tls_cipher_suite`). With `verify`, the client certificate's names are here too: what
 * `verify_and_map` maps to a user (cert-identity.ts).
 */
export type ClientTlsPeer = {
  readonly version: string;
  readonly cipherSuite: string;
  /** Subject of the verified client certificate, RFC 2253 (`CN=…,O=…`); undefined without one. */
  readonly certSubject: string | undefined;
  /** Its subject CN when it has exactly one. */
  readonly certCn: string | undefined;
  /** The verified certificate's names (SANs, subject DN); undefined without one. */
  readonly certIdentity: CertIdentity | undefined;
};
