/**
 * TLS material of the leaf↔hub link (issue 4 "Security"): the PEM files named by the hub's
 * `leaf_tls` block and the leaf's `hub_tls` block, read once at start and checked, so that a
 * missing, unreadable or wrong file stops the process with a ConfigError naming the key and
 * the path, not a failed handshake later. Files are not watched: a renewed certificate takes
 * effect at the next start.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './options.ts';

/** One configured file: the key as the user spelled it (for errors) and its path. */
export type TlsFileSetting = { readonly label: string; readonly path: string };

/** PEM bytes of what a side of the link presents and trusts. */
export type LinkTlsMaterial = {
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
export function loadLinkTlsMaterial(files: { readonly cert?: TlsFileSetting; readonly key?: TlsFileSetting; readonly ca?: TlsFileSetting }): LinkTlsMaterial {
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
