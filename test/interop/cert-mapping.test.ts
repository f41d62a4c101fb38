/**
 * Certificate → user mapping (`tls { verify_and_map: true }`, issue 6 item 2) with the official
 * client: email and DNS SANs and the subject DN name users of `authorization.users` (entries
 * without a password), the mapped user's permissions apply, no match is an Authorization
 * Violation; /connz?auth=true shows `authorized_user`; a reload renews the server certificate
 * (new handshakes use it, established connections keep going) and re-maps live connections.
 * Certificates are made at test time (TestPki, openssl).
 */
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { connect, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { hasSameRdns, isSameDn, parseDistinguishedName } from '../../core/server/cert-identity.ts';
import { resolveServerOptions } from '../../core/server/options.ts';
import { startTestBroker, type TestBroker } from '../helpers/broker.ts';
import { skipWithoutOpenssl, TestPki, type CertFiles } from '../helpers/certs.ts';
import { assertConfigError } from '../helpers/config-error.ts';
import { eventually } from '../helpers/eventually.ts';

const skip = skipWithoutOpenssl();

function fetchJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    httpGet(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    }).on('error', reject);
  });
}

test('distinguished names: RFC 2253 parsing, type case, escapes, multi-valued RDNs, reordering', () => {
  const dn = parseDistinguishedName('CN=app 1+OU=eng,O=Acme\\, Inc,C=US');
  assert.deepEqual(dn, [
    [{ type: 'CN', value: 'app 1' }, { type: 'OU', value: 'eng' }],
    [{ type: 'O', value: 'Acme, Inc' }],
    [{ type: 'C', value: 'US' }],
  ]);
  assert.equal(parseDistinguishedName('alice'), undefined);
  assert.equal(parseDistinguishedName('app@example.com'), undefined);
  assert.ok(isSameDn(dn!, parseDistinguishedName('ou=eng+cn=app 1, o=Acme\\, Inc, c=US')!));
  const reordered = parseDistinguishedName('C=US,O=Acme\\, Inc,OU=eng+CN=app 1')!;
  assert.equal(isSameDn(dn!, reordered), false);
  assert.ok(hasSameRdns(dn!, reordered));
  assert.equal(hasSameRdns(dn!, parseDistinguishedName('CN=app 1,O=Acme\\, Inc,C=US')!), false, 'an RDN short');
  assert.equal(isSameDn(dn!, parseDistinguishedName('CN=App 1+OU=eng,O=Acme\\, Inc,C=US')!), false, 'values compare exactly');
});

describe('tls verify_and_map', { skip }, () => {
  let pki: TestPki;
  let ca: CertFiles;
  let server: CertFiles;
  let broker: TestBroker;
  const certs: Record<string, CertFiles> = {};
  let config: Record<string, unknown>;

  const users = [
    { user: 'sensor@example.com', permissions: { publish: ['sensors.>'], subscribe: ['sensors.>', '_INBOX.>'] } },
    { user: 'gw.example.com' },
    { user: 'CN=app,OU=eng,O=Acme,C=US', permissions: { subscribe: ['app.>'] } },
    { user: 'locked', password: 'pw' },
  ];

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('ca');
    server = pki.server(ca, 'server');
    certs['email'] = pki.client(ca, 'email', 'ignored-cn', { sans: ['email:sensor@example.com', 'DNS:gw.example.com'] });
    certs['dns'] = pki.client(ca, 'dns', 'gw', { sans: ['DNS:other.example.com', 'DNS:gw.example.com'] });
    certs['dn'] = pki.client(ca, 'dn', '', { subject: '/C=US/O=Acme/OU=eng/CN=app' });
    certs['reordered'] = pki.client(ca, 'reordered', '', { subject: '/CN=app/OU=eng/O=Acme/C=US' });
    certs['unknown'] = pki.client(ca, 'unknown', 'nobody');
    certs['locked'] = pki.client(ca, 'locked', 'locked', { sans: ['DNS:locked'] });
    config = {
      jetstream: false,
      tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify_and_map: true },
      authorization: { users },
    };
    broker = await startTestBroker(config);
  });
  after(async () => {
    await broker?.close();
    pki?.remove();
  });

  function connectWith(name: string, extra: Record<string, unknown> = {}): Promise<NatsConnection> {
    const files = certs[name]!;
    return connect({ servers: broker.url, reconnect: false, tls: { caFile: ca.certFile, certFile: files.certFile, keyFile: files.keyFile }, ...extra });
  }

  async function authorizedUsers(): Promise<Map<number, string | undefined>> {
    const connz = (await fetchJson(`${broker.httpUrl}/connz?auth=true`)) as { connections: { cid: number; authorized_user?: string }[] };
    return new Map(connz.connections.map((info) => [info.cid, info.authorized_user]));
  }

  test('an email SAN comes first and names the user, whose permissions apply; /connz?auth=true shows it', async (t) => {
    const nc = await connectWith('email', { user: 'gw.example.com' });
    t.after(() => nc.close());
    const sub = nc.subscribe('sensors.>', { max: 1 });
    nc.publish('sensors.t', 'ok');
    for await (const message of sub) assert.equal(message.string(), 'ok');
    const denied = nc.subscribe('app.x');
    assert.ok((await denied.closed) instanceof PermissionViolationError);
    assert.equal((await authorizedUsers()).get(nc.info!.client_id), 'sensor@example.com');
    const plain = (await fetchJson(`${broker.httpUrl}/connz`)) as { connections: Record<string, unknown>[] };
    assert.equal(plain.connections.some((info) => 'authorized_user' in info), false, 'only with auth=true');
    const filtered = (await fetchJson(`${broker.httpUrl}/connz?auth=true&user=sensor@example.com`)) as { connections: { cid: number }[] };
    assert.deepEqual(filtered.connections.map((info) => info.cid), [nc.info!.client_id]);
  });

  test('a DNS SAN, the subject DN, and a reordered subject DN name users', async (t) => {
    const byDns = await connectWith('dns');
    const byDn = await connectWith('dn');
    const byReordered = await connectWith('reordered');
    t.after(() => Promise.all([byDns.close(), byDn.close(), byReordered.close()]));
    const mapped = await authorizedUsers();
    assert.equal(mapped.get(byDns.info!.client_id), 'gw.example.com');
    assert.equal(mapped.get(byDn.info!.client_id), 'CN=app,OU=eng,O=Acme,C=US');
    assert.equal(mapped.get(byReordered.info!.client_id), 'CN=app,OU=eng,O=Acme,C=US');
    const connection = broker.broker.server.connections.get(byDn.info!.client_id);
    assert.equal(connection?.tlsPeer?.certSubject, 'CN=app,OU=eng,O=Acme,C=US');
  });

  test('no matching user is an Authorization Violation; a mapped user with a password still needs it', async () => {
    await assert.rejects(connectWith('unknown'), /Authorization Violation/i);
    await assert.rejects(connectWith('locked'), /Authorization Violation/i);
    // nats.js sends `pass` only with a `user`; the certificate, not CONNECT's user, names the user.
    const locked = await connectWith('locked', { user: 'someone-else', pass: 'pw' });
    assert.equal((await authorizedUsers()).get(locked.info!.client_id), 'locked');
    await locked.close();
  });

  test('a reload renews the server certificate for new handshakes and re-maps live connections', async () => {
    const kept = await connectWith('dns');
    const dropped = await connectWith('dn');
    const droppedClosed = dropped.closed();
    const otherCa = pki.ca('ca-2');
    const renewed = pki.server(otherCa, 'server-2');
    const outcome = broker.reload({
      ...config,
      tls: { cert_file: renewed.certFile, key_file: renewed.keyFile, ca_file: ca.certFile, verify_and_map: true },
      authorization: { users: users.filter((user) => user.user !== 'CN=app,OU=eng,O=Acme,C=US') },
    });
    assert.deepEqual(outcome.changed, ['tls', 'authorization']);
    assert.equal(outcome.closedConnections, 1);
    assert.match(String(await droppedClosed), /Authorization Violation/i);
    // Established connections keep their TLS session and their user.
    await kept.flush();
    // New handshakes present the renewed certificate: trusted by ca-2 only.
    await assert.rejects(connectWith('dns'), /certificate|self-signed|verify/i);
    const files = certs['dns']!;
    const renewedClient = await connect({ servers: broker.url, reconnect: false, tls: { caFile: otherCa.certFile, certFile: files.certFile, keyFile: files.keyFile } });
    await eventually(async () => assert.equal((await authorizedUsers()).get(renewedClient.info!.client_id), 'gw.example.com'));
    await Promise.all([kept.close(), renewedClient.close()]);
  });

  test('config errors: verify_and_map needs users; a user without a password needs verify_and_map', () => {
    assertConfigError(
      () => resolveServerOptions({ tls: { cert_file: server.certFile, key_file: server.keyFile, ca_file: ca.certFile, verify_and_map: true } }),
      'tls.verify_and_map',
      /needs authorization\.users/,
    );
    assertConfigError(() => resolveServerOptions({ authorization: { users: [{ user: 'x' }] } }), 'authorization.users[0].password', /verify_and_map/);
  });
});
