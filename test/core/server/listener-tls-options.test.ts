/**
 * Options of the listeners' TLS and of monitoring (issue 6 items 1 and 6): the `tls` block and
 * nats-server's --tls* flags, `websocket.tls`, `https_port`, `monitor_token`, nats-server's
 * `http: "host:port"`, and `canopy leaf`'s monitoring bound to 127.0.0.1 unless a host is given.
 * Files are read at start; every problem is a ConfigError naming the key as the user wrote it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serverOptionsFromArgv } from '../../../core/cli.ts';
import { resolveServerOptions } from '../../../core/server/options.ts';
import { leafOptionsFromArgv } from '../../../leaf/cli.ts';
import { assertConfigError } from '../../helpers/config-error.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../../helpers/certs.ts';


describe('listener TLS options', { skip: skipWithoutOpenssl() }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let server: CertFiles;
  let other: CertFiles;

  before(() => {
    pki = new TestPki();
    ca = pki.ca('ca');
    server = pki.server(ca, 'server');
    other = pki.server(ca, 'other');
  });
  after(() => pki?.remove());

  test('the tls block and the flags give the same settings; a flag wins over the block', () => {
    const block = { tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify: true, timeout: '500ms' } };
    const fromBlock = resolveServerOptions(block).tls;
    const fromFlags = serverOptionsFromArgv({ tls: '', tlscert: server.certFile, tlskey: server.keyFile, tlscacert: ca.certFile, tlsverify: '', tls_timeout: '500ms' }).tls;
    for (const tls of [fromBlock, fromFlags]) {
      assert.deepEqual(tls?.cert, readFileSync(server.certFile));
      assert.deepEqual(tls?.ca, readFileSync(ca.certFile));
      assert.equal(tls?.isClientCertRequired, true);
      assert.equal(tls?.handshakeTimeoutMs, 500);
    }
    const config = join(pki.dir, 'tls.json');
    writeFileSync(config, JSON.stringify(block));
    assert.equal(serverOptionsFromArgv({ config, tlsverify: 'false' }).tls?.isClientCertRequired, false);
    assert.equal(fromBlock?.isHandshakeFirst, false);
    assert.equal(resolveServerOptions({ tls: { ...block.tls, handshake_first: true } }).tls?.isHandshakeFirst, true);
    assertConfigError(() => resolveServerOptions({ tls: { ...block.tls, handshake_first: '300ms' } }), 'tls.handshake_first', /must be true or false/);
    // `--tls` beside the block keeps the block.
    assert.equal(serverOptionsFromArgv({ config, tls: '' }).tls?.certFile, server.certFile);
    const defaults = resolveServerOptions({});
    assert.equal(defaults.tls, undefined);
    assert.equal(defaults.websocketTls, undefined);
    assert.equal(defaults.httpsPort, undefined);
    assert.equal(defaults.monitorToken, undefined);
  });

  test('websocket.tls becomes the WebSocket port\'s TLS, separate from the client port\'s', () => {
    const options = resolveServerOptions({ websocket: { port: 8443, tls: { cert_file: other.certFile, key_file: other.keyFile } } });
    assert.equal(options.websocketPort, 8443);
    assert.equal(options.websocketTls?.certFile, other.certFile);
    assert.equal(options.websocketTls?.isClientCertRequired, false);
    assert.equal(options.tls, undefined);
  });

  test('missing and wrong files, a missing key or CA, and unknown block keys name the key', () => {
    const missing = join(pki.dir, 'missing.pem');
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: missing, key_file: server.keyFile } }), 'tls.cert_file', /cannot read .*missing\.pem/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile, key_file: missing } }), 'tls.key_file', /cannot read/);
    assertConfigError(() => resolveServerOptions({ tlscert: server.certFile, tlskey: server.keyFile, tlscacert: missing }), 'tlscacert', /cannot read/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile, key_file: other.keyFile } }), 'tls.key_file', /is not the private key of the certificate/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.keyFile, key_file: server.keyFile } }), 'tls.cert_file', /holds no PEM certificate/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile } }), 'tls.key_file', /needs the private key/);
    assertConfigError(() => resolveServerOptions({ tls: {} }), 'tls.cert_file', /needs a certificate/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile, key_file: server.keyFile, verify: true } }), 'tls.verify', /needs tls\.ca_file/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile, cipher_suites: [] } }), 'tls.cipher_suites', /is not a key of tls/);
    assertConfigError(() => resolveServerOptions({ tls: { cert_file: server.certFile, key_file: server.keyFile, timeout: 'soon' } }), 'tls.timeout', /must be a duration/);
    assertConfigError(() => resolveServerOptions({ websocket: { tls: { cert_file: missing, key_file: server.keyFile } } }), 'websocket.tls.cert_file', /cannot read/);
    assertConfigError(() => resolveServerOptions({ websocket: { tls: { key_file: server.keyFile } } }), 'websocket.tls.cert_file', /needs a certificate/);
  });

  test('https_port serves monitoring with the tls certificate: it needs the tls block and excludes http_port', () => {
    const tls = { cert_file: server.certFile, key_file: server.keyFile };
    const options = resolveServerOptions({ tls, https_port: 8443 });
    assert.equal(options.httpsPort, 8443);
    assert.equal(options.httpPort, undefined, 'the default http_port gives way');
    assertConfigError(() => resolveServerOptions({ https_port: 8443 }), 'https_port', /needs the tls block/);
    assertConfigError(() => resolveServerOptions({ tls, https_port: 8443, http_port: 8222 }), 'https_port', /cannot be used with http_port/);
    assert.equal(resolveServerOptions({ tls, https_port: 8443, http_port: 0 }).httpsPort, 8443);
  });
});

test('monitor_token, and nats-server\'s http: "host:port"', () => {
  assert.equal(resolveServerOptions({ monitor_token: 'abc' }).monitorToken, 'abc');
  assert.equal(resolveServerOptions({ monitor_token: '' }).monitorToken, undefined);
  const http = resolveServerOptions({ http: '127.0.0.1:9222' });
  assert.equal(http.httpHost, '127.0.0.1');
  assert.equal(http.httpPort, 9222);
  assert.equal(resolveServerOptions({ http: '[::1]:9222' }).httpHost, '::1');
  assertConfigError(() => resolveServerOptions({ http: '9222' }), 'http', /must be "host:port"/);
  assertConfigError(() => resolveServerOptions({ http: 'localhost:many' }), 'http', /must be an integer/);
});

test('canopy leaf binds monitoring to 127.0.0.1 unless a host is given; canopy server keeps 0.0.0.0', (t) => {
  const hub = 'ws://hub:7422';
  assert.equal(leafOptionsFromArgv({ hub }).options.httpHost, '127.0.0.1');
  assert.equal(leafOptionsFromArgv({ hub, http_host: '0.0.0.0' }).options.httpHost, '0.0.0.0');
  const dir = new TestPki('canopy-leaf-http-');
  t.after(() => dir.remove());
  const config = join(dir.dir, 'leaf.json');
  writeFileSync(config, JSON.stringify({ hub, http: '0.0.0.0:8222' }));
  assert.equal(leafOptionsFromArgv({ config }).options.httpHost, '0.0.0.0');
  writeFileSync(config, JSON.stringify({ hub, http: { port: 8223 } }));
  assert.equal(leafOptionsFromArgv({ config }).options.httpHost, '127.0.0.1');
  assert.equal(serverOptionsFromArgv({}).httpHost, '0.0.0.0');
});
