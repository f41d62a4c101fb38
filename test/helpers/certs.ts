/**
 * Test certificates made at test time with the `openssl` command (EC P-256 keys: fast to make
 * and to handshake). A CA, server certificates (serverAuth, with SANs for hostname checks) and
 * client certificates (clientAuth, subject CN = the identity), each a PEM file pair in a
 * temporary folder. Tests that need them skip with a reason when `openssl` is not on PATH.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its private key, as PEM file paths. */
export type CertFiles = { readonly certFile: string; readonly keyFile: string };

/** How long the certificates are valid: a test run, with room for a slow machine. */
const CERT_VALID_DAYS = 2;

let opensslFound: boolean | undefined;

/** Whether `openssl` runs here (checked once). */
export function hasOpenssl(): boolean {
  if (opensslFound === undefined) {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      opensslFound = true;
    } catch {
      opensslFound = false;
    }
  }
  return opensslFound;
}

/** `node:test`'s skip option for tests that need openssl (false when it is there). */
export function skipWithoutOpenssl(): string | false {
  return hasOpenssl() ? false : 'openssl is not on PATH (test certificates are made with it)';
}

/** A folder of test certificates; `remove()` deletes it. */
export class TestPki {
  readonly dir: string;
  #serial = 0;

  constructor(prefix = 'canopy-certs-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A self-signed CA named `name`. */
  ca(name: string): CertFiles {
    const files = this.#files(name);
    openssl([
      'req', '-x509', ...EC_KEY, '-nodes', '-keyout', files.keyFile, '-out', files.certFile,
      '-subj', `/CN=${name}`, '-days', String(CERT_VALID_DAYS),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return files;
  }

  /** A server certificate signed by `ca`: subject CN `name`, SANs such as `IP:127.0.0.1`, `DNS:localhost`. */
  server(ca: CertFiles, name: string, sans: readonly string[] = ['IP:127.0.0.1', 'DNS:localhost']): CertFiles {
    return this.#signed(ca, name, { subject: `/CN=${name}`, extensions: [`subjectAltName=${sans.join(',')}`, 'extendedKeyUsage=serverAuth'] });
  }

  /**
   * A client certificate signed by `ca` whose subject CN is `cn` (the identity a hub reads), or
   * whose subject is `subject` in openssl's form (`/C=US/O=Acme/CN=app`); `sans` such as
   * `email:app@example.com`, `DNS:app.example.com` (what verify_and_map reads).
   */
  client(ca: CertFiles, name: string, cn: string = name, options: { subject?: string; sans?: readonly string[] } = {}): CertFiles {
    const sans = options.sans === undefined ? [] : [`subjectAltName=${options.sans.join(',')}`];
    return this.#signed(ca, name, { subject: options.subject ?? `/CN=${cn}`, extensions: ['extendedKeyUsage=clientAuth', ...sans] });
  }

  #signed(ca: CertFiles, name: string, options: { subject: string; extensions: readonly string[] }): CertFiles {
    const files = this.#files(name);
    const csr = join(this.dir, `${name}.csr`);
    const extFile = join(this.dir, `${name}.ext`);
    writeFileSync(extFile, ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', ...options.extensions, ''].join('\n'));
    openssl(['req', '-new', ...EC_KEY, '-nodes', '-keyout', files.keyFile, '-out', csr, '-subj', options.subject, '-multivalue-rdn']);
    openssl([
      'x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(++this.#serial + 1000),
      '-days', String(CERT_VALID_DAYS), '-extfile', extFile, '-out', files.certFile,
    ]);
    return files;
  }

  #files(name: string): CertFiles {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`certificate file name ${JSON.stringify(name)}: letters, digits, - and _ only`);
    return { certFile: join(this.dir, `${name}.pem`), keyFile: join(this.dir, `${name}-key.pem`) };
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

function openssl(args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8') ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}
