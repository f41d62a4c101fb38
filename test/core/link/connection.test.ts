/**
 * core/link/connection.ts, one scenario per README "Connection" rule: the handshake with
 * version negotiation and refusals, heartbeats (ping after one silent interval, dead after two),
 * the leaf's full-jitter backoff and its reset, URLs in turn, and events of old connections
 * ignored. Method: the machines on explicit time; the test plays the transport and the peer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededPrng } from '../../../core/util/prng.ts';
import type { HelloFrame, HubFrame, LeafFrame, LinkAction, WelcomeFrame } from '../../../core/link/index.ts';
import {
  backoffDelayMs,
  HubConnection,
  LeafConnection,
  LINK_BACKOFF_ATTEMPTS_MAX,
  LINK_BACKOFF_BASE_MS,
  LINK_BACKOFF_MAX_MS,
  LINK_HEARTBEAT_MS_DEFAULT,
  negotiateVersion,
} from '../../../core/link/index.ts';

const HEARTBEAT = 1000;

function leafSetup(options: { urls?: string[]; versions?: number[]; prng?: SeededPrng } = {}) {
  return new LeafConnection({
    leaf: 'pi-7',
    token: 'secret',
    urls: options.urls ?? ['ws://a', 'ws://b'],
    windowBytes: 65_536,
    compression: true,
    prng: options.prng ?? new SeededPrng(1),
    heartbeatMs: HEARTBEAT,
    backoffBaseMs: 100,
    backoffMaxMs: 5000,
    ...(options.versions === undefined ? {} : { versions: options.versions }),
  });
}

function welcome(overrides: Partial<WelcomeFrame> = {}): WelcomeFrame {
  return { t: 'welcome', version: 1, hub: 'hub-1', compression: false, heartbeatMs: HEARTBEAT, windowBytes: 1_048_576, ...overrides };
}

function kinds(actions: readonly LinkAction[]): string[] {
  return actions.map((action) => (action.kind === 'dial' ? `dial ${action.url}` : action.kind === 'close' || action.kind === 'down' ? `${action.kind} ${action.reason}` : action.kind));
}

/** A leaf that is up on connection 1 at time 0. */
function upLeaf(): LeafConnection {
  const leaf = leafSetup();
  leaf.start(0);
  leaf.opened(1, 0);
  leaf.receive(1, welcome(), 0);
  leaf.poll();
  return leaf;
}

function hello(overrides: Partial<HelloFrame> = {}): HelloFrame {
  return { t: 'hello', versions: [1], leaf: 'pi-7', token: 'secret', compression: true, heartbeatMs: 2000, windowBytes: 65_536, ...overrides };
}

function hubSetup(options: { versions?: number[]; compression?: boolean; refuse?: string } = {}) {
  return new HubConnection({
    hub: 'hub-1',
    windowBytes: 1_048_576,
    compression: options.compression ?? true,
    authorize: (frame) => (options.refuse !== undefined || frame.token !== 'secret' ? (options.refuse ?? 'bad token') : undefined),
    heartbeatMs: HEARTBEAT,
    connection: 7,
    nowMs: 0,
    ...(options.versions === undefined ? {} : { versions: options.versions }),
  });
}

// ---------------------------------------------------------------- handshake

test('version negotiation: the newest version both sides speak', () => {
  assert.equal(negotiateVersion([3, 2, 1], [2, 1]), 2);
  assert.equal(negotiateVersion([1], [4, 3, 1]), 1);
  assert.equal(negotiateVersion([2, 1], [3]), undefined);
});

test('leaf handshake: dial, hello with everything the hub needs, welcome → up with the session', () => {
  const leaf = leafSetup();
  leaf.start(0);
  assert.deepEqual(kinds(leaf.poll().actions), ['dial ws://a']);
  assert.equal(leaf.state, 'dialing');
  leaf.opened(1, 5);
  const { frames } = leaf.poll();
  assert.deepEqual(frames, [{ t: 'hello', versions: [1], leaf: 'pi-7', token: 'secret', compression: true, heartbeatMs: HEARTBEAT, windowBytes: 65_536 }]);
  assert.equal(leaf.receive(1, welcome({ heartbeatMs: 3000 }), 10), false);
  const { actions } = leaf.poll();
  assert.deepEqual(actions, [{ kind: 'up', connection: 1, session: { version: 1, heartbeatMs: 3000, compression: false, peer: 'hub-1', peerWindowBytes: 1_048_576 } }]);
  assert.equal(leaf.state, 'up');
});

test('hub handshake: welcome with the newest common version, the larger heartbeat, compression if both want it', () => {
  const hub = hubSetup({ versions: [2, 1] });
  assert.equal(hub.receive(hello({ versions: [3, 2, 1] }), 1), false);
  const { frames, actions } = hub.poll();
  assert.deepEqual(frames, [{ t: 'welcome', version: 2, hub: 'hub-1', compression: true, heartbeatMs: 2000, windowBytes: 1_048_576 }]);
  assert.deepEqual(actions, [{ kind: 'up', connection: 7, session: { version: 2, heartbeatMs: 2000, compression: true, peer: 'pi-7', peerWindowBytes: 65_536 } }]);
  const noCompression = hubSetup({ compression: false });
  noCompression.receive(hello(), 1);
  assert.equal((noCompression.poll().frames[0] as WelcomeFrame).compression, false);
});

test('hub handshake: refusals are an error frame and a close (version, auth, protocol, malformed hello)', () => {
  const cases: [HubConnection, LeafFrame, string][] = [
    [hubSetup({ versions: [2] }), hello({ versions: [1] }), 'version'],
    [hubSetup(), hello({ token: 'wrong' }), 'auth'],
    [hubSetup(), { t: 'ping' }, 'protocol'],
    [hubSetup(), { t: 'offer', stream: 'a', incarnation: 'x', firstSeq: 1, lastSeq: 0 }, 'protocol'],
    [hubSetup(), hello({ windowBytes: 5 }), 'protocol'],
    [hubSetup(), hello({ leaf: '' }), 'protocol'],
  ];
  for (const [hub, frame, code] of cases) {
    hub.receive(frame, 1);
    const { frames, actions } = hub.poll();
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.t, 'error');
    assert.equal((frames[0] as { code: string }).code, code);
    assert.deepEqual(actions.map((action) => action.kind), ['close']);
    assert.equal(hub.state, 'closed');
  }
});

test('hub: after welcome, sync frames are for the host; a second hello or a connection-level error is a protocol error', () => {
  const hub = hubSetup();
  hub.receive(hello(), 0);
  hub.poll();
  assert.equal(hub.receive({ t: 'cursor', stream: 'a', incarnation: 'x', seq: 1, batch: undefined }, 1), true);
  assert.equal(hub.receive({ t: 'error', code: 'stream', text: 'no', stream: 'a' }, 1), true);
  assert.equal(hub.receive({ t: 'ping' }, 1), false);
  hub.receive(hello(), 2);
  const { frames, actions } = hub.poll();
  assert.equal((frames[0] as { code: string }).code, 'protocol');
  assert.deepEqual(actions.map((action) => action.kind), ['close', 'down']);
});

test('leaf: anything but welcome before welcome, or a bad welcome, closes with a protocol reason', () => {
  const frames: HubFrame[] = [{ t: 'ping' }, welcome({ version: 9 }), welcome({ heartbeatMs: 10 }), welcome({ windowBytes: 1 }), { t: 'hello' } as unknown as HubFrame];
  for (const frame of frames) {
    const leaf = leafSetup();
    leaf.start(0);
    leaf.opened(1, 0);
    leaf.poll();
    leaf.receive(1, frame, 1);
    const { actions } = leaf.poll();
    assert.equal(actions[0]?.kind, 'close');
    assert.match((actions[0] as { reason: string }).reason, /^protocol/);
    assert.equal(leaf.state, 'backoff');
  }
});

test('leaf: a hub refusal (auth, version) waits the longest backoff; other errors the normal one', () => {
  const leaf = leafSetup();
  leaf.start(0);
  leaf.opened(1, 0);
  leaf.poll();
  leaf.receive(1, { t: 'error', code: 'auth', text: 'bad token', stream: undefined }, 10);
  assert.deepEqual(kinds(leaf.poll().actions), ['close hub error auth']);
  assert.equal(leaf.attempt, LINK_BACKOFF_ATTEMPTS_MAX, 'the cap is the backoff max (5000 ms here)');
  assert.ok(leaf.retryAtMs! <= 10 + 5000);
  const other = leafSetup();
  other.start(0);
  other.opened(1, 0);
  other.receive(1, { t: 'error', code: 'protocol', text: 'cursor went backwards', stream: undefined }, 10);
  assert.equal(other.attempt, 1);
  assert.ok(other.retryAtMs! <= 10 + 100);
});

// ---------------------------------------------------------------- heartbeats

test('heartbeat: a ping after one interval of sending nothing; sending anything postpones it', () => {
  const leaf = upLeaf();
  leaf.tick(HEARTBEAT - 1);
  assert.deepEqual(leaf.poll().frames, []);
  leaf.sent(1, 500);
  leaf.receive(1, { t: 'ping' }, 900);
  leaf.tick(HEARTBEAT);
  assert.deepEqual(leaf.poll().frames, [], 'something was sent at 500');
  leaf.tick(1500);
  assert.deepEqual(leaf.poll().frames, [{ t: 'ping' }]);
  leaf.tick(1600);
  assert.deepEqual(leaf.poll().frames, [], 'the ping itself counts as sent');
});

test('heartbeat: nothing received for two intervals → dead: close, down, backoff', () => {
  const leaf = upLeaf();
  leaf.receive(1, { t: 'ping' }, 700);
  leaf.tick(700 + 2 * HEARTBEAT - 1);
  assert.equal(leaf.state, 'up');
  leaf.tick(700 + 2 * HEARTBEAT);
  assert.deepEqual(kinds(leaf.poll().actions), ['close heartbeat timeout', 'down heartbeat timeout']);
  assert.equal(leaf.state, 'backoff');
});

test('heartbeat on the hub: silent client dropped after two intervals, pings and dead detection once up', () => {
  const silent = hubSetup();
  silent.tick(2 * HEARTBEAT);
  assert.deepEqual(kinds(silent.poll().actions), ['close handshake timeout']);
  const hub = hubSetup();
  hub.receive(hello({ heartbeatMs: HEARTBEAT }), 0);
  hub.poll();
  hub.tick(HEARTBEAT);
  assert.deepEqual(hub.poll().frames, [{ t: 'ping' }]);
  hub.tick(2 * HEARTBEAT);
  assert.deepEqual(kinds(hub.poll().actions), ['close heartbeat timeout', 'down heartbeat timeout']);
});

test('leaf: a dial or a handshake that does not finish within two intervals times out', () => {
  const leaf = leafSetup();
  leaf.start(0);
  leaf.poll();
  leaf.tick(2 * HEARTBEAT);
  assert.deepEqual(kinds(leaf.poll().actions), ['close dialing timeout']);
  const other = leafSetup();
  other.start(0);
  other.opened(1, 100);
  other.poll();
  other.tick(100 + 2 * HEARTBEAT);
  assert.deepEqual(kinds(other.poll().actions), ['close handshake timeout']);
});

// ---------------------------------------------------------------- backoff

test('backoff: full jitter, uniform in [0, min(max, base × 2^attempt)]', () => {
  const prng = new SeededPrng(3);
  for (let attempt = 0; attempt < 12; attempt++) {
    const cap = Math.min(LINK_BACKOFF_MAX_MS, LINK_BACKOFF_BASE_MS * 2 ** attempt);
    let max = 0;
    for (let i = 0; i < 300; i++) {
      const delay = backoffDelayMs({ attempt, baseMs: LINK_BACKOFF_BASE_MS, maxMs: LINK_BACKOFF_MAX_MS, prng });
      assert.ok(delay >= 0 && delay <= cap, `attempt ${attempt}: ${delay} > ${cap}`);
      max = Math.max(max, delay);
    }
    assert.ok(max > cap * 0.9, `attempt ${attempt}: the range is used up to the cap`);
  }
  assert.equal(LINK_HEARTBEAT_MS_DEFAULT, 5000);
});

test('backoff: failed attempts raise the cap, URLs are tried in turn, the dial happens at retryAtMs', () => {
  const leaf = leafSetup({ urls: ['ws://a', 'ws://b', 'ws://c'] });
  leaf.start(0);
  const urls = kinds(leaf.poll().actions);
  let now = 0;
  for (let connection = 1; connection <= 5; connection++) {
    leaf.closed(connection, now, 'connection refused');
    assert.equal(leaf.attempt, connection);
    const retryAt = leaf.retryAtMs!;
    assert.ok(retryAt - now <= Math.min(5000, 100 * 2 ** (connection - 1)));
    if (retryAt > now) {
      leaf.tick(retryAt - 1);
      assert.deepEqual(leaf.poll().actions, [], 'not before retryAtMs');
    }
    now = retryAt;
    leaf.tick(now);
    urls.push(...kinds(leaf.poll().actions));
  }
  assert.deepEqual(urls, ['dial ws://a', 'dial ws://b', 'dial ws://c', 'dial ws://a', 'dial ws://b', 'dial ws://c']);
});

test('backoff: the attempt count resets after a connection that got welcome and stayed up one interval', () => {
  const longLived = upLeaf();
  longLived.closed(1, 10, 'peer closed'); // up for 10 ms only
  assert.equal(longLived.attempt, 1, 'a flapping connection does not reset the count');
  const leaf = upLeaf();
  leaf.closed(1, HEARTBEAT, 'peer closed');
  assert.equal(leaf.attempt, 1, 'reset to 0, then this close counts as attempt 1');
  assert.ok(leaf.retryAtMs! - HEARTBEAT <= 100, 'the first delay is within [0, base]');
});

test('backoff is deterministic for a seed', () => {
  const delays = (seed: number): number[] => {
    const leaf = leafSetup({ prng: new SeededPrng(seed) });
    leaf.start(0);
    const out: number[] = [];
    for (let connection = 1; connection <= 6; connection++) {
      leaf.closed(connection, 0, 'x');
      out.push(leaf.retryAtMs!);
      leaf.tick(leaf.retryAtMs!);
      leaf.poll();
    }
    return out;
  };
  assert.deepEqual(delays(9), delays(9));
  assert.notDeepEqual(delays(9), delays(10));
});

// ---------------------------------------------------------------- connections

test('leaf: sync frames are handed to the host, pings are not; events of an old connection are ignored', () => {
  const leaf = upLeaf();
  assert.equal(leaf.receive(1, { t: 'batch', stream: 'a', incarnation: 'x', id: 1, msgs: [] }, 1), true);
  assert.equal(leaf.receive(1, { t: 'ping' }, 1), false);
  leaf.closed(1, 2, 'peer closed');
  leaf.tick(leaf.retryAtMs!);
  assert.deepEqual(kinds(leaf.poll().actions), ['down peer closed', 'dial ws://b']);
  assert.equal(leaf.connection, 2);
  assert.equal(leaf.receive(1, { t: 'cursor', stream: 'a', incarnation: 'x', seq: 1, batch: undefined }, 3), false, 'a late frame of connection 1');
  leaf.closed(1, 3, 'late close of connection 1');
  leaf.opened(1, 3);
  assert.equal(leaf.state, 'dialing', 'connection 2 is unaffected');
});

test('leaf: abort (a protocol violation found by the sync machines) closes; stop closes for good', () => {
  const leaf = upLeaf();
  leaf.abort(1, 5, 'batch starts at 9, cursor is 4');
  assert.deepEqual(kinds(leaf.poll().actions), ['close protocol: batch starts at 9, cursor is 4', 'down protocol: batch starts at 9, cursor is 4']);
  const stopped = upLeaf();
  stopped.stop(5);
  assert.deepEqual(kinds(stopped.poll().actions), ['close stopped', 'down stopped']);
  stopped.tick(1_000_000);
  assert.deepEqual(stopped.poll().actions, []);
  assert.equal(stopped.state, 'stopped');
});

test('hub: abort sends the error then closes; replace closes an older connection of the same leaf', () => {
  const hub = hubSetup();
  hub.receive(hello(), 0);
  hub.poll();
  hub.abort({ t: 'error', code: 'protocol', text: 'cursor went backwards', stream: undefined }, 3);
  const output = hub.poll();
  assert.deepEqual(output.frames, [{ t: 'error', code: 'protocol', text: 'cursor went backwards', stream: undefined }]);
  assert.deepEqual(kinds(output.actions), ['close protocol: cursor went backwards', 'down protocol: cursor went backwards']);
  const old = hubSetup();
  old.receive(hello(), 0);
  old.poll();
  old.replace();
  assert.deepEqual(kinds(old.poll().actions), ['close replaced by a newer connection', 'down replaced by a newer connection']);
  assert.equal(old.receive({ t: 'ping' }, 1), false);
});
