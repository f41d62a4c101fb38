/**
 * The link's TLS settings (issue 4 "Security"): `canopy hub`'s leaf_tls block and
 * --leaf_tls_* flags, `canopy leaf`'s hub_tls block and --hub_tls_* flags. Files are read at
 * start; a missing, unreadable or invalid file, or a setting that cannot work, is a
 * ConfigError naming the key as the user wrote it and the path.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hubOptionsFromArgv } from '../../hub/cli.ts';
import { leafOptionsFromArgv } from '../../leaf/cli.ts';
import { assertConfigError } from '../helpers/config-error.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';


describe('link TLS options', { skip: skipWithoutOpenssl() }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let server: CertFiles;
  let client: CertFiles;
  let config: string;

  before(() => {
    pki = new TestPki();
    ca = pki.ca('ca');
    server = pki.server(ca, 'hub');
    client = pki.client(ca, 'gw-1');
    config = join(pki.dir, 'canopy.json');
  });
  after(() => pki?.remove());

  const writeConfig = (settings: Record<string, unknown>): string => {
    writeFileSync(config, JSON.stringify(settings));
    return config;
  };

  test('hub: the leaf_tls block and the flags give the same settings; a flag wins over the block', () => {
    const fromFile = hubOptionsFromArgv({ config: writeConfig({ leaf_tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify: true } }) }).link;
    const fromFlags = hubOptionsFromArgv({ leaf_tls_cert: server.certFile, leaf_tls_key: server.keyFile, leaf_tls_ca: ca.certFile, leaf_tls_verify: '' }).link;
    for (const link of [fromFile, fromFlags]) {
      assert.equal(link.tls?.isClientCertRequired, true);
      assert.deepEqual(link.tls?.cert, readFileSync(server.certFile));
      assert.deepEqual(link.tls?.ca, readFileSync(ca.certFile));
      assert.equal(link.tls?.certFile, server.certFile);
    }
    const overridden = hubOptionsFromArgv({ config, leaf_tls_verify: 'false' }).link;
    assert.equal(overridden.tls?.isClientCertRequired, false);
    assert.equal(hubOptionsFromArgv({}).link.tls, undefined);
  });

  test('hub: missing and invalid files name the key as written and the path', () => {
    const missing = join(pki.dir, 'nope.pem');
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: missing, leaf_tls_key: server.keyFile }), 'leaf_tls_cert', /cannot read .*nope\.pem/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ leaf_tls: { cert_file: server.certFile, key_file: missing } }) }), 'leaf_tls.key_file', /cannot read .*nope\.pem/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: server.certFile, leaf_tls_key: server.keyFile, leaf_tls_ca: missing, leaf_tls_verify: 'true' }), 'leaf_tls_ca', /nope\.pem/);
    const notPem = join(pki.dir, 'not-pem.txt');
    writeFileSync(notPem, 'hello\n');
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: notPem, leaf_tls_key: server.keyFile }), 'leaf_tls_cert', /not-pem\.txt holds no PEM certificate/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: server.certFile, leaf_tls_key: notPem }), 'leaf_tls_key', /not-pem\.txt is not an unencrypted PEM private key/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: server.certFile, leaf_tls_key: client.keyFile }), 'leaf_tls_key', /gw-1-key\.pem is not the private key of the certificate in .*hub\.pem/);
  });

  test('hub: settings that cannot work are refused', () => {
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: server.certFile }), 'leaf_tls_key', /is required with leaf_tls_cert/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_key: server.keyFile }), 'leaf_tls_cert', /is required with leaf_tls_key/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_cert: server.certFile, leaf_tls_key: server.keyFile, leaf_tls_verify: 'true' }), 'leaf_tls_verify', /needs leaf_tls_ca/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ leaf_tls: { verify: true } }) }), 'leaf_tls.verify', /needs leaf_tls_cert and leaf_tls_key/);
    assertConfigError(() => hubOptionsFromArgv({ leaf_tls_ca: ca.certFile }), 'leaf_tls_ca', /needs leaf_tls_cert and leaf_tls_key/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ leaf_tls: { cert_file: server.certFile, key_file: server.keyFile, insecure: true } }) }), 'leaf_tls.insecure', /not a key of leaf_tls/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ leaf_tls: 'on' }) }), 'leaf_tls', /must be an object/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ leaf_tls: { verify: 'maybe' } }) }), 'leaf_tls.verify', /true or false/);
    assertConfigError(() => hubOptionsFromArgv({ config: writeConfig({ hub_tls: { ca_file: ca.certFile } }) }), 'hub_tls', /an option of canopy leaf, not of canopy hub/);
  });

  test('leaf: the hub_tls block and the flags; system CAs when no ca_file', () => {
    const fromFile = leafOptionsFromArgv({ config: writeConfig({ hub: 'wss://hub.example:7422', hub_tls: { ca_file: ca.certFile, cert_file: client.certFile, key_file: client.keyFile } }) }).link;
    const fromFlags = leafOptionsFromArgv({ hub: 'wss://hub.example:7422', hub_tls_ca: ca.certFile, hub_tls_cert: client.certFile, hub_tls_key: client.keyFile }).link;
    for (const link of [fromFile, fromFlags]) {
      assert.deepEqual(link.tls?.ca, readFileSync(ca.certFile));
      assert.deepEqual(link.tls?.cert, readFileSync(client.certFile));
      assert.deepEqual(link.tls?.key, readFileSync(client.keyFile));
    }
    assert.equal(leafOptionsFromArgv({ hub: 'wss://hub.example:7422' }).link.tls, undefined);
    assert.equal(leafOptionsFromArgv({ hub: 'wss://hub.example:7422', hub_tls_ca: ca.certFile }).link.tls?.cert, undefined);
  });

  test('leaf: missing files, half a key pair, TLS settings without a wss:// URL and the hub\'s block are refused', () => {
    assertConfigError(() => leafOptionsFromArgv({ hub: 'wss://h:1', hub_tls_ca: join(pki.dir, 'gone.pem') }), 'hub_tls_ca', /cannot read .*gone\.pem/);
    assertConfigError(() => leafOptionsFromArgv({ config: writeConfig({ hub: 'wss://h:1', hub_tls: { cert_file: client.certFile } }) }), 'hub_tls.cert_file', /needs hub_tls_key/);
    assertConfigError(() => leafOptionsFromArgv({ hub: 'wss://h:1', hub_tls_key: client.keyFile }), 'hub_tls_key', /needs hub_tls_cert/);
    assertConfigError(() => leafOptionsFromArgv({ hub: 'ws://h:1', hub_tls_ca: ca.certFile }), 'hub_tls_ca', /only on wss:\/\/ hub URLs/);
    assertConfigError(() => leafOptionsFromArgv({ config: writeConfig({ hub: 'wss://h:1', leaf_tls: { cert_file: server.certFile } }) }), 'leaf_tls', /an option of canopy hub, not of canopy leaf/);
  });
});
