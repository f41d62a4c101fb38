/**
 * TLS material: the PEM files named by a TLS block (the client port's `tls`, the WebSocket
 * port's `websocket.tls`, the link's `leaf_tls` on the hub and `hub_tls` on the leaf), read
 * once at start and checked, so that a missing, unreadable or wrong file stops the process with
 * a ConfigError naming the key and the path, not a failed handshake later. Files are not
 * watched: a renewed certificate takes effect at the next start.
 *
 * Also the one-line reason logged for a failed server-side handshake ({@link tlsFailureReason}).
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { ConfigError } from './config-error.ts';

/** One configured file: the key as the user spelled it (for errors) and its path. */
export type TlsFileSetting = { readonly label: string; readonly path: string };

/** PEM bytes of what one side (a listener, or the leaf dialling its hub) presents and trusts. */
export type TlsMaterial = {
  /** This side's certificate (chain, first = its own); undefined = none. */
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** CA bundle that peers' certificates must chain to; undefined = the system CAs (leaf) or none (hub). */
  readonly ca: Buffer | undefined;
  /** The paths, for logs. */
  readonly certFile: string | undefined;
  readonly caFile: string | undefined;
};

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the files of one side; every problem is a ConfigError naming the file's key and path. */
export function loadTlsMaterial(files: { readonly cert?: TlsFileSetting; readonly key?: TlsFileSetting; readonly ca?: TlsFileSetting }): TlsMaterial {
  const cert = files.cert === undefined ? undefined : readCertificates(files.cert);
  const key = files.key === undefined ? undefined : readPrivateKey(files.key);
  const ca = files.ca === undefined ? undefined : readCertificates(files.ca);
  if (files.cert !== undefined && files.key !== undefined && cert !== undefined && key !== undefined) {
    const own = new X509Certificate(cert);
    if (!own.checkPrivateKey(createPrivateKey(key))) {
      throw new ConfigError(files.key.label, `${files.key.path} is not the private key of the certificate in ${files.cert.path}`);
    }
  }
  try {
    // What the sockets will use: anything OpenSSL still refuses (an unsupported algorithm, say) shows here.
    createSecureContext({ ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }), ...(ca === undefined ? {} : { ca }) });
  } catch (err) {
    const blamed = files.cert ?? files.ca ?? files.key;
    throw new ConfigError(blamed?.label ?? 'tls', `${blamed?.path ?? ''}: ${(err as Error).message}`);
  }
  return { cert, key, ca, certFile: files.cert?.path, caFile: files.ca?.path };
}

function readFile(setting: TlsFileSetting): Buffer {
  try {
    return readFileSync(setting.path);
  } catch (err) {
    throw new ConfigError(setting.label, `cannot read ${setting.path}: ${(err as Error).message}`);
  }
}

/** A PEM file of one or more certificates (a chain, or a CA bundle), each of which must parse. */
function readCertificates(setting: TlsFileSetting): Buffer {
  const bytes = readFile(setting);
  const blocks = bytes.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(setting.label, `${setting.path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(setting.label, `${setting.path} holds a certificate that does not parse: ${(err as Error).message}`);
    }
  }
  return bytes;
}

function readPrivateKey(setting: TlsFileSetting): Buffer {
  const bytes = readFile(setting);
  try {
    createPrivateKey(bytes);
  } catch (err) {
    throw new ConfigError(setting.label, `${setting.path} is not an unencrypted PEM private key: ${(err as Error).message}`);
  }
  return bytes;
}

/** What a listener says about itself in a failed handshake's reason. */
export type TlsFailureHints = {
  /** Why a client certificate was required (`tls verify requires one`). */
  readonly verifyHint: string;
  /** What a client speaking plain text on the TLS port should do instead. */
  readonly plainHint: string;
  /** The handshake timeout, for the timeout reason. */
  readonly handshakeTimeoutMs: number;
};

/** One line an operator can act on, for a failed handshake as the server saw it. */
export function tlsFailureReason(err: Error, socket: TLSSocket, hints: TlsFailureHints): string {
  // Set (an OpenSSL verify code) when the client's certificate did not verify; Node then drops the socket without an error of its own.
  const certError: unknown = socket.authorizationError;
  if (certError !== null && certError !== undefined) return `client certificate not accepted: ${String(certError)}`;
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return `no client certificate (${hints.verifyHint})`;
    case 'ERR_SSL_HTTP_REQUEST':
      return `plain HTTP on the TLS port (${hints.plainHint})`;
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `plain text on the TLS port (${hints.plainHint})`;
    case 'ECONNRESET':
      return 'the client closed the connection during the handshake (does it trust the server\'s certificate?)';
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return `no TLS handshake within ${hints.handshakeTimeoutMs} ms`;
  }
  // OpenSSL errors carry a short `reason` besides their long message.
  const reason: unknown = (err as Error & { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : err.message;
}
