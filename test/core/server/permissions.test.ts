/**
 * The permissions block: parsing (ConfigErrors name the key) and the decisions
 * (publish, subscribe with wildcards and queue groups, delivery deny,
 * allow_responses), table-driven against nats-server's rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnectionPermissions,
  PERMISSIONS_CACHE_ENTRIES_MAX,
  isPublishAllowed,
  isSubscribeAllowed,
  parsePermissions,
  publishViolationText,
  subscriptionViolationText,
} from '../../../core/server/permissions.ts';
import { assertConfigError } from '../../helpers/config-error.ts';

const P = 'permissions';

test('the list, single-subject and allow/deny forms parse; allow_responses defaults to 1 response within 2 minutes', () => {
  const list = parsePermissions({ publish: ['a.>', 'b'], subscribe: 'c.*' }, P);
  assert.deepEqual(list.publish, { allow: [{ subject: 'a.>', queue: '' }, { subject: 'b', queue: '' }], deny: undefined });
  assert.deepEqual(list.subscribe, { allow: [{ subject: 'c.*', queue: '' }], deny: undefined });
  const both = parsePermissions({ pub: { deny: ['x'] }, sub: { allow: ['q.* workers'], deny: [] } }, P);
  assert.deepEqual(both.publish, { allow: undefined, deny: [{ subject: 'x', queue: '' }] });
  assert.deepEqual(both.subscribe, { allow: [{ subject: 'q.*', queue: 'workers' }], deny: [] });
  assert.deepEqual(parsePermissions({ allow_responses: true }, P).allowResponses, { msgsMax: 1, expiresMs: 120_000 });
  assert.deepEqual(parsePermissions({ allow_responses: { max: 5, expires: '1m' } }, P).allowResponses, { msgsMax: 5, expiresMs: 60_000 });
  assert.deepEqual(parsePermissions({ allow_responses: { max: 0, expires: 0 } }, P).allowResponses, { msgsMax: 1, expiresMs: 120_000 }, '0 is the default');
  assert.deepEqual(parsePermissions({ allow_responses: { max: -1, ttl: '-1s' } }, P).allowResponses, { msgsMax: 0, expiresMs: 0 }, 'negative is unlimited');
  assert.deepEqual(parsePermissions({ allow_responses: { max_msgs: 3, expiration: -5 } }, P).allowResponses, { msgsMax: 3, expiresMs: 0 });
  assert.equal(parsePermissions({ allow_responses: false }, P).allowResponses, undefined);
});

test('allow_responses without a publish allow list allows publishing responses only (nats-server setPermissions)', () => {
  assert.deepEqual(parsePermissions({ allow_responses: true }, P).publish, { allow: [], deny: undefined });
  const withDeny = parsePermissions({ publish: { deny: ['x'] }, allow_responses: true }, P).publish;
  assert.deepEqual(withDeny, { allow: [], deny: [{ subject: 'x', queue: '' }] });
  const withAllow = parsePermissions({ publish: ['a'], allow_responses: true }, P).publish;
  assert.deepEqual(withAllow?.allow, [{ subject: 'a', queue: '' }]);
});

test('bad shapes and invalid subjects are ConfigErrors naming the key', () => {
  assertConfigError(() => parsePermissions(['x'], P), P, /must be an object/);
  assertConfigError(() => parsePermissions({ publsh: ['x'] }, P), `${P}.publsh`, /unknown key/);
  assertConfigError(() => parsePermissions({ pub: ['x'], publish: ['y'] }, P), `${P}.pub`, /together/);
  assertConfigError(() => parsePermissions({ publish: 5 }, P), `${P}.publish`, /list of subjects/);
  assertConfigError(() => parsePermissions({ publish: { allow: ['a'], denied: ['b'] } }, P), `${P}.publish.denied`, /unknown key/);
  assertConfigError(() => parsePermissions({ publish: ['ok', 'a..b'] }, P), `${P}.publish[1]`, /"a\.\.b" is not a valid subject/);
  assertConfigError(() => parsePermissions({ publish: { deny: ['a.>.b'] } }, P), `${P}.publish.deny[0]`, /not a valid subject/);
  assertConfigError(() => parsePermissions({ publish: ['a q'] }, P), `${P}.publish[0]`, /one subject/);
  assertConfigError(() => parsePermissions({ subscribe: { allow: ['a q r'] } }, P), `${P}.subscribe.allow[0]`, /<subject> <queue>/);
  assertConfigError(() => parsePermissions({ subscribe: [7] }, P), `${P}.subscribe[0]`, /subject string/);
  assertConfigError(() => parsePermissions({ allow_responses: 'yes' }, P), `${P}.allow_responses`, /true, false/);
  assertConfigError(() => parsePermissions({ allow_responses: { max: 1.5 } }, P), `${P}.allow_responses.max`, /whole number/);
  assertConfigError(() => parsePermissions({ allow_responses: { max: 1, max_msgs: 2 } }, P), `${P}.allow_responses.max_msgs`, /together/);
  assertConfigError(() => parsePermissions({ allow_responses: { expires: 'soon' } }, P), `${P}.allow_responses.expires`, /duration/);
  assertConfigError(() => parsePermissions({ allow_responses: { maximum: 1 } }, P), `${P}.allow_responses.maximum`, /unknown key/);
});

test('publish: allow list with wildcards, deny wins', () => {
  const permission = parsePermissions({ publish: { allow: ['orders.>', 'ping'], deny: ['orders.secret.*'] } }, P).publish!;
  const cases: [string, boolean][] = [
    ['orders.new', true],
    ['orders.eu.new', true],
    ['orders', false],
    ['ping', true],
    ['ping.x', false],
    ['orders.secret.x', false],
    ['orders.secret', true],
    ['other', false],
  ];
  for (const [subject, expected] of cases) assert.equal(isPublishAllowed(permission, subject), expected, subject);
  const denyOnly = parsePermissions({ publish: { deny: ['$JS.API.>'] } }, P).publish!;
  assert.equal(isPublishAllowed(denyOnly, 'anything'), true);
  assert.equal(isPublishAllowed(denyOnly, '$JS.API.STREAM.CREATE.S'), false);
});

test('subscribe: a wildcard SUB needs an allow entry at least as wide, token by token (nats-server sublist Match on the SUB subject)', () => {
  const permission = parsePermissions({ subscribe: { allow: ['foo.*', 'bar.>', 'baz.x'], deny: ['bar.secret', 'foo.*.deep'] } }, P).subscribe!;
  const cases: [string, boolean][] = [
    ['foo.a', true],
    ['foo.*', true],
    ['foo.>', true], // nats-server parity: `>` is one token here, which `foo.*` matches
    ['foo', false],
    ['bar.a.b', true],
    ['bar.*', true],
    ['bar.>', true],
    ['baz.x', true],
    ['baz.*', false],
    ['>', false],
    ['bar.secret', false],
    ['bar.secret.more', true],
  ];
  for (const [subject, expected] of cases) assert.equal(isSubscribeAllowed(permission, subject, ''), expected, subject);
});

test('subscribe: deny entries deny SUBs they match, wildcard SUBs that only overlap them stay allowed', () => {
  const permission = parsePermissions({ subscribe: { deny: ['secret.>', 'ops.*.keys'] } }, P).subscribe!;
  assert.equal(isSubscribeAllowed(permission, 'secret.a', ''), false);
  assert.equal(isSubscribeAllowed(permission, 'secret.>', ''), false);
  assert.equal(isSubscribeAllowed(permission, 'ops.eu.keys', ''), false);
  assert.equal(isSubscribeAllowed(permission, 'ops.*.keys', ''), false);
  assert.equal(isSubscribeAllowed(permission, 'ops.>', ''), true, 'overlapping, filtered at delivery');
  assert.equal(isSubscribeAllowed(permission, '>', ''), true, 'overlapping, filtered at delivery');
});

test('subscribe: queue entries decide for queue SUBs; a plain deny entry denies every queue group', () => {
  const permission = parsePermissions({ subscribe: { allow: ['jobs.* workers', 'jobs.* team.*', 'public.>'], deny: ['public.x', 'public.y spies'] } }, P)
    .subscribe!;
  assert.equal(isSubscribeAllowed(permission, 'jobs.a', 'workers'), true);
  assert.equal(isSubscribeAllowed(permission, 'jobs.a', 'team.red'), true, 'queue pattern with a wildcard');
  assert.equal(isSubscribeAllowed(permission, 'jobs.a', 'others'), false);
  assert.equal(isSubscribeAllowed(permission, 'jobs.a', ''), false, 'a queue entry does not allow plain SUBs');
  assert.equal(isSubscribeAllowed(permission, 'public.a', 'any'), true, 'plain allow entries allow any queue');
  assert.equal(isSubscribeAllowed(permission, 'public.x', 'any'), false);
  assert.equal(isSubscribeAllowed(permission, 'public.y', 'spies'), false);
  assert.equal(isSubscribeAllowed(permission, 'public.y', 'friends'), true);
  assert.equal(isSubscribeAllowed(permission, 'public.y', ''), true);
});

test('delivery: the plain subscribe deny entries filter delivered subjects; the cache stays bounded', () => {
  const connection = new ConnectionPermissions(parsePermissions({ subscribe: { deny: ['secret.*', 'x workers'] } }, P));
  assert.equal(connection.isDeliveryDenied('secret.a'), true);
  assert.equal(connection.isDeliveryDenied('secret.a.b'), false);
  assert.equal(connection.isDeliveryDenied('x'), false, 'queue deny entries only refuse SUBs');
  for (let i = 0; i < PERMISSIONS_CACHE_ENTRIES_MAX * 3; i++) assert.equal(connection.isDeliveryDenied(`secret.${i}`), true);
  const unrestricted = new ConnectionPermissions(parsePermissions({ publish: ['a'] }, P));
  assert.equal(unrestricted.hasDeliveryDeny, false);
  assert.equal(unrestricted.isDeliveryDenied('secret.a'), false);
});

test('allow_responses: max responses per delivered reply subject, within expires', () => {
  const connection = new ConnectionPermissions(parsePermissions({ allow_responses: { max: 2, expires: '1s' } }, P));
  assert.equal(connection.canPublish('_INBOX.a', () => 0), false, 'no request was delivered');
  connection.onDeliveredReply('_INBOX.a', 1000);
  assert.equal(connection.canPublish('_INBOX.a', () => 1001), true);
  assert.equal(connection.canPublish('_INBOX.a', () => 1002), true);
  assert.equal(connection.canPublish('_INBOX.a', () => 1003), false, 'max 2');
  connection.onDeliveredReply('_INBOX.b', 1000);
  assert.equal(connection.canPublish('_INBOX.b', () => 2001), false, 'expired');
  assert.equal(connection.canPublish('other', () => 1000), false);
  const unlimited = new ConnectionPermissions(parsePermissions({ allow_responses: { max: -1, expires: '-1s' } }, P));
  unlimited.onDeliveredReply('r', 0);
  for (let i = 0; i < 10; i++) assert.equal(unlimited.canPublish('r', () => 1e9), true);
});

test('the -ERR texts are the ones nats-server sends', () => {
  assert.equal(publishViolationText('a.b'), 'Permissions Violation for Publish to "a.b"');
  assert.equal(subscriptionViolationText('a.*', ''), 'Permissions Violation for Subscription to "a.*"');
  assert.equal(subscriptionViolationText('a.*', 'q'), 'Permissions Violation for Subscription to "a.*" using queue "q"');
});
