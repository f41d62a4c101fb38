import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../core/server/options.ts';
import { LEAF_PORT_DEFAULT, LINK_HEARTBEAT_MS_DEFAULT, resolveLinkOptions } from '../../../core/server/link-options.ts';

test('hub link options: defaults, port forms, tokens from a flag list or a config object', () => {
  assert.deepEqual(resolveLinkOptions('hub', {}), {
    role: 'hub',
    port: LEAF_PORT_DEFAULT,
    host: '0.0.0.0',
    tokens: new Map(),
    heartbeatMs: LINK_HEARTBEAT_MS_DEFAULT,
  });
  const hub = resolveLinkOptions('hub', { leaf_port: '-1', leaf_tokens: 'gw-1=s3cret, gw_2=other', link_heartbeat: '500ms' });
  assert.equal(hub.role, 'hub');
  assert.equal(hub.port, 0);
  assert.deepEqual([...hub.tokens], [['gw-1', 's3cret'], ['gw_2', 'other']]);
  assert.equal(hub.heartbeatMs, 500);
  const fromFile = resolveLinkOptions('hub', { leaf_port: 0, leaf_tokens: { a: 'x', b: { token: 'y' } } });
  assert.equal(fromFile.role === 'hub' && fromFile.port, undefined);
  assert.deepEqual(fromFile.role === 'hub' && [...fromFile.tokens], [['a', 'x'], ['b', 'y']]);
});

test('leaf link options: hub URLs tried in turn, name, token, compression', () => {
  const leaf = resolveLinkOptions('leaf', { hub: 'ws://h1:7422, wss://h2:443', leaf_name: 'gw-07', hub_token: 't', link_compression: 'true' });
  assert.deepEqual(leaf, {
    role: 'leaf',
    hubUrls: ['ws://h1:7422', 'wss://h2:443'],
    leafName: 'gw-07',
    hubToken: 't',
    heartbeatMs: LINK_HEARTBEAT_MS_DEFAULT,
    isCompressionWanted: true,
  });
});

test('bad link options name the key and what is allowed', () => {
  const cases: [Parameters<typeof resolveLinkOptions>, RegExp][] = [
    [['leaf', {}], /"hub": canopy leaf needs the hub URL/],
    [['leaf', { hub: 'http://h:1' }], /"hub": must be ws:\/\/ or wss:\/\/ URLs \(got "http:\/\/h:1"\)/],
    [['leaf', { hub: 'ws://h:1', leaf_name: 'a.b' }], /"leaf_name": must be 1 to 64 letters, digits/],
    [['leaf', { hub: 'ws://h:1', leaf_port: 1 }], /"leaf_port": is an option of canopy hub, not of canopy leaf/],
    [['hub', { hub: 'ws://h:1' }], /"hub": is an option of canopy leaf, not of canopy hub/],
    [['hub', { leaf_tokens: 'a=x,a=y' }], /"leaf_tokens": leaf a is listed twice/],
    [['hub', { leaf_tokens: 'a' }], /"leaf_tokens": leaf a needs a non-empty token/],
    [['hub', { leaf_tokens: 'a b=x' }], /"leaf_tokens": leaf name "a b" is not a valid leaf name/],
    [['hub', { link_heartbeat: '10ms' }], /"link_heartbeat": must be at least 100 ms/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => resolveLinkOptions(...args), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, pattern);
      return true;
    });
  }
});
