/**
 * A hub and one or two leaves in one thread, on virtual time (ms): the link state machines of
 * core/link wired to simulated connections, stores and disks the way a real host wires them
 * to WebSockets and LMDB (core/link/connection.ts "The host wires them").
 *
 * Connection model. A connection is two ordered pipes (WebSocket over TCP): within one
 * connection frames are never lost, duplicated or reordered, only delayed. Faults:
 * - reset: both pipes die and both ends hear `closed` (RST);
 * - dead pipe: from now on nothing is delivered in that direction, and no one is told (a
 *   half-open connection, a blackhole): only heartbeats can find it;
 * - stall (partition): both pipes hold their frames until the partition heals (TCP
 *   retransmits), and new dials get no answer;
 * - a process crash closes its ends (the peer hears FIN), a power loss closes them silently.
 * Across connections frames can be duplicated (a new connection resends what the old one sent)
 * but a frame of a closed connection is never delivered to a newer one: each end checks its
 * connection number, and the host asserts it before routing.
 *
 * Everything random comes from forked SeededPrngs; events at the same virtual time run in
 * scheduling order, so a seed replays exactly.
 */
import type { GapFrame, HubConnection, HubFrame, LeafConnection, LeafFrame, LinkAction, LinkFrame, LinkReceiver, LinkSender, StreamKey } from '../../../core/link/index.ts';
import type * as Link from '../../../core/link/index.ts';
import { messageBytes } from '../../../core/link/index.ts';
import type { Clock } from '../../../core/util/clock.ts';
import { SeededPrng } from '../../../core/util/prng.ts';
import { EventQueue } from '../harness/event-queue.ts';
import { LinkChecker } from './link-checker.ts';
import { SimSink, SimStore, SimStream, keyId } from './sim-store.ts';

/** The implementation under test (a mutated copy in the mutation tests). */
export type LinkImpl = {
  readonly LinkSender: typeof Link.LinkSender;
  readonly LinkReceiver: typeof Link.LinkReceiver;
  readonly LeafConnection: typeof Link.LeafConnection;
  readonly HubConnection: typeof Link.HubConnection;
};

export type HostBugs = {
  /** DELIBERATE BUG: the host tells the receiver a write is durable as soon as it is staged. */
  readonly ackBeforeFlush: boolean;
};

export type WorldOptions = {
  readonly seed: number;
  readonly isTranscriptOn: boolean;
  readonly impl: LinkImpl;
  readonly bugs: HostBugs;
  readonly leafCount: number;
  readonly leafHeartbeatMs: number;
  readonly hubHeartbeatMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly tickMs: number;
  readonly leafWindowBytes: number;
  readonly hubWindowBytes: number;
  readonly batchMsgsMax: number;
  readonly batchBytesMax: number;
  readonly inflightBatchesMax: number;
  readonly delayMin: number;
  readonly delayMax: number;
  readonly diskLatencyMin: number;
  readonly diskLatencyMax: number;
  /** Hosts coalesce outputs: a pump runs 0…pumpDelayMax ms after the input that asked for it. */
  readonly pumpDelayMax: number;
  readonly leafVersions: readonly number[];
  readonly hubVersions: readonly number[];
  /** Stream names the hub refuses from leaves (error 'stream'). */
  readonly refusedStreams: readonly string[];
};

export type WorldStats = {
  events: number;
  framesSent: number;
  framesDelivered: number;
  framesLost: number;
  batches: number;
  msgsSent: number;
  gaps: number;
  ups: number;
  crashes: number;
  resets: number;
  deadPipes: number;
  partitions: number;
  heartbeatTimeouts: number;
  published: number;
  deleted: number;
  recreated: number;
  windowChanges: number;
  authRefusals: number;
  incarnationAlerts: number;
  writesLost: number;
};

/**
 * One direction of a connection: a FIFO with delivery times (never reordered). A stalled pipe
 * holds everything until it is unstalled; a dead one loses everything, silently.
 */
class Pipe {
  readonly queue: { at: number; readonly delivery: () => void }[] = [];
  lastAt = 0;
  isDead = false;
  isStalled = false;
  isDrainScheduled = false;
}

/** One connection between a leaf and the hub. */
class SimLink {
  readonly id: number;
  readonly leaf: string;
  /** The leaf machine's number for this connection. */
  readonly leafConnection: number;
  isLeafOpen = true;
  isHubOpen = false;
  readonly toHub = new Pipe();
  readonly toLeaf = new Pipe();

  constructor(id: number, leaf: string, leafConnection: number) {
    this.id = id;
    this.leaf = leaf;
    this.leafConnection = leafConnection;
  }

  end(side: 'leaf' | 'hub'): string {
    return `c${this.id}:${side}`;
  }
}

abstract class SimNode {
  readonly name: string;
  readonly store: SimStore;
  /** Receiver sinks by sender peer; disk, so they survive crashes. */
  readonly sinks = new Map<string, SimSink>();
  life = 0;
  isUp = true;
  isFlushPending = false;
  isPumpPending = false;

  constructor(name: string) {
    this.name = name;
    this.store = new SimStore(name);
  }
}

class LeafNode extends SimNode {
  conn!: LeafConnection;
  sender!: LinkSender;
  receiver!: LinkReceiver;
  /** Connections by the machine's connection number (this life). */
  links = new Map<number, SimLink>();
}

type PeerMachines = { readonly sender: LinkSender; readonly receiver: LinkReceiver; active: HubConnection | undefined; activeLink: SimLink | undefined };

class HubNode extends SimNode {
  /** Per leaf (this life). */
  peers = new Map<string, PeerMachines>();
  /** Accepted connections by link id (this life). */
  conns = new Map<number, { hc: HubConnection; link: SimLink }>();
}

const HUB = 'hub';

export class LinkWorld {
  readonly options: WorldOptions;
  readonly checker: LinkChecker;
  readonly transcript: string[] = [];
  readonly stats: WorldStats = {
    events: 0,
    framesSent: 0,
    framesDelivered: 0,
    framesLost: 0,
    batches: 0,
    msgsSent: 0,
    gaps: 0,
    ups: 0,
    crashes: 0,
    resets: 0,
    deadPipes: 0,
    partitions: 0,
    heartbeatTimeouts: 0,
    published: 0,
    deleted: 0,
    recreated: 0,
    windowChanges: 0,
    authRefusals: 0,
    incarnationAlerts: 0,
    writesLost: 0,
  };
  now = 0;
  readonly hub: HubNode;
  readonly leaves: LeafNode[] = [];
  readonly clock: Clock = { nowMs: () => this.now };
  /** Leaves cut off from the hub (their links stall, their dials get no answer). */
  readonly partitioned = new Set<string>();
  /** A node's disk is slow (flushes take 0.3–3 s, an SD card under load) until this time. */
  readonly diskSlowUntil = new Map<string, number>();
  /** The hub refuses a leaf's hello (auth) until this time. */
  readonly authRefusedUntil = new Map<string, number>();
  readonly #queue = new EventQueue<{ readonly label: string; readonly action: () => void }>();
  readonly #netPrng: SeededPrng;
  readonly #diskPrng: SeededPrng;
  readonly #machinePrng: SeededPrng;
  #linkIds = 0;
  #incarnations = 0;
  /** Every link ever made (for faults and healing). */
  readonly #links: SimLink[] = [];

  constructor(options: WorldOptions) {
    this.options = options;
    const root = new SeededPrng(options.seed);
    this.#netPrng = root.fork();
    this.#diskPrng = root.fork();
    this.#machinePrng = root.fork();
    this.checker = new LinkChecker({ batchMsgsMax: options.batchMsgsMax, batchBytesMax: options.batchBytesMax });
    this.hub = new HubNode(HUB);
    for (let i = 1; i <= options.leafCount; i++) this.leaves.push(new LeafNode(`leaf${i}`));
    for (const leaf of this.leaves) {
      leaf.sinks.set(HUB, this.#newSink(leaf.name, HUB));
      this.hub.sinks.set(leaf.name, this.#newSink(HUB, leaf.name));
    }
  }

  #newSink(owner: string, peer: string): SimSink {
    const refused = owner === HUB ? (stream: string) => this.options.refusedStreams.includes(stream) : () => false;
    return new SimSink({ owner, peer, watcher: this.checker, refused });
  }

  /** Starts every node's machines (call after creating the initial streams). */
  start(): void {
    this.#startHub();
    for (const leaf of this.leaves) this.#startLeaf(leaf);
  }

  // ---------------------------------------------------------------- plumbing

  note(line: string): void {
    if (this.options.isTranscriptOn) this.transcript.push(`${String(this.now).padStart(7, '0')} ${line}`);
  }

  schedule(delay: number, label: string, action: () => void): void {
    this.#queue.push(this.now + Math.max(0, delay), { label, action });
  }

  runUntil(until: number): void {
    for (;;) {
      const time = this.#queue.peekTime();
      if (time === undefined || time > until) break;
      const item = this.#queue.pop()!;
      this.now = item.time;
      this.stats.events++;
      item.event.action();
    }
    this.now = Math.max(this.now, until);
  }

  #delay(): number {
    return this.#netPrng.between(this.options.delayMin, this.options.delayMax);
  }

  node(name: string): SimNode {
    if (name === HUB) return this.hub;
    const leaf = this.leaves.find((candidate) => candidate.name === name);
    if (leaf === undefined) throw new Error(`no node ${name}`);
    return leaf;
  }

  // ---------------------------------------------------------------- streams (workload)

  /** Creates (or re-creates, with a new incarnation) a stream on `node`. */
  createStream(node: SimNode, name: string, retention: 'any' | 'acked'): SimStream {
    const old = node.store.current.get(name);
    if (old !== undefined) old.isDeleted = true;
    this.#incarnations += 1;
    const incarnation = `${node.name}-${this.#incarnations}-${this.#machinePrng.nextU32().toString(16).padStart(8, '0')}`;
    const stream = new SimStream({ node: node.name, name, incarnation, retention, createdAt: this.now });
    this.checker.registerStream(stream);
    node.store.current.set(name, stream);
    if (old !== undefined) {
      this.stats.recreated++;
      this.note(`STREAM ${node.name} re-creates ${name}: ${old.incarnation} -> ${incarnation}`);
    }
    this.streamChanged(node, name);
    return stream;
  }

  /** Tells every sender of `node` that `stream` changed, and pumps. */
  streamChanged(node: SimNode, stream: string): void {
    if (!node.isUp) return;
    if (node instanceof LeafNode) {
      if (node.sender !== undefined) node.sender.streamChanged(stream);
    } else {
      for (const peer of this.hub.peers.values()) peer.sender.streamChanged(stream);
    }
    this.#requestPump(node);
  }

  /** The lowest cursor every peer acknowledged for `stream` (for "keep until acknowledged" retention). */
  ackedByAll(node: SimNode, stream: SimStream): number {
    if (!node.isUp) return 0;
    const senders = node instanceof LeafNode ? [node.sender] : [...this.hub.peers.values()].map((peer) => peer.sender);
    if (node === this.hub && senders.length < this.leaves.length) return 0;
    let min = Number.MAX_SAFE_INTEGER;
    for (const sender of senders) {
      const acked = sender.acked(stream.name);
      if (acked === undefined || acked.incarnation !== stream.incarnation) return 0;
      min = Math.min(min, acked.seq);
    }
    return min === Number.MAX_SAFE_INTEGER ? 0 : min;
  }

  /** A receiver changes its window. */
  changeWindow(node: SimNode, windowBytes: number): void {
    if (!node.isUp) return;
    this.stats.windowChanges++;
    this.note(`WINDOW ${node.name} -> ${windowBytes}`);
    if (node instanceof LeafNode) node.receiver.setWindow(windowBytes);
    else for (const peer of this.hub.peers.values()) peer.receiver.setWindow(windowBytes);
    this.#requestPump(node);
  }

  // ---------------------------------------------------------------- leaf host

  #startLeaf(leaf: LeafNode): void {
    const { impl } = this.options;
    const life = leaf.life;
    leaf.links = new Map();
    leaf.conn = new impl.LeafConnection({
      leaf: leaf.name,
      token: `token-${leaf.name}`,
      urls: ['ws://hub-a/leafnode', 'ws://hub-b/leafnode'],
      windowBytes: this.options.leafWindowBytes,
      compression: false,
      prng: this.#machinePrng.fork(),
      versions: this.options.leafVersions,
      heartbeatMs: this.options.leafHeartbeatMs,
      backoffBaseMs: this.options.backoffBaseMs,
      backoffMaxMs: this.options.backoffMaxMs,
    });
    const limits = { batchMsgsMax: this.options.batchMsgsMax, batchBytesMax: this.options.batchBytesMax, inflightBatchesMax: this.options.inflightBatchesMax };
    leaf.sender = new impl.LinkSender({ streams: leaf.store.senderStreams(), clock: this.clock, ...limits });
    leaf.receiver = new impl.LinkReceiver({ sink: leaf.sinks.get(HUB)!, clock: this.clock });
    leaf.conn.start(this.now);
    this.#leafActions(leaf);
    this.#scheduleTick(leaf, life, this.#machinePrng.between(1, this.options.tickMs));
  }

  #scheduleTick(node: SimNode, life: number, delay: number): void {
    this.schedule(delay, 'tick', () => {
      if (node.life !== life || !node.isUp) return;
      if (node instanceof LeafNode) {
        node.conn.tick(this.now);
        this.#leafActions(node);
      } else {
        for (const entry of [...this.hub.conns.values()]) {
          entry.hc.tick(this.now);
          this.#hubActions(entry.hc, entry.link);
        }
      }
      this.#requestPump(node);
      this.#scheduleTick(node, life, this.options.tickMs);
    });
  }

  /** Sends the leaf connection machine's frames and performs its actions. */
  #leafActions(leaf: LeafNode): void {
    const output = leaf.conn.poll();
    const link = leaf.links.get(leaf.conn.connection);
    if (output.frames.length > 0 && link !== undefined) this.#transmit(link, 'leaf', output.frames);
    for (const action of output.actions) this.#leafAction(leaf, action);
  }

  #leafAction(leaf: LeafNode, action: LinkAction): void {
    const link = leaf.links.get(action.connection);
    switch (action.kind) {
      case 'dial':
        this.#dial(leaf, action.connection, action.url);
        return;
      case 'up':
        this.stats.ups++;
        this.note(`UP ${leaf.name} c${link!.id} v${action.session.version} heartbeat=${action.session.heartbeatMs} window=${action.session.peerWindowBytes}`);
        this.checker.onUp(link!.end('leaf'), action.session.peerWindowBytes);
        leaf.sender.connected(action.session.peerWindowBytes);
        leaf.receiver.connected();
        this.#requestPump(leaf);
        return;
      case 'close':
        this.note(`CLOSE ${leaf.name} c${link?.id ?? '?'}: ${action.reason}`);
        if (action.reason === 'heartbeat timeout') this.stats.heartbeatTimeouts++;
        if (link !== undefined) this.#closeEnd(link, 'leaf');
        return;
      case 'down':
        this.note(`DOWN ${leaf.name} c${link?.id ?? '?'}: ${action.reason}`);
        if (link !== undefined) this.checker.onDown(link.end('leaf'));
        leaf.sender.disconnected();
        leaf.receiver.disconnected();
        return;
    }
  }

  #dial(leaf: LeafNode, connection: number, url: string): void {
    this.#linkIds += 1;
    const link = new SimLink(this.#linkIds, leaf.name, connection);
    this.#links.push(link);
    leaf.links.set(connection, link);
    const life = leaf.life;
    this.note(`DIAL ${leaf.name} c${link.id} ${url}`);
    if (this.partitioned.has(leaf.name)) return; // no answer: the dial times out
    // SYN and SYN-ACK travel the connection's own pipes, so stalls and dead pipes apply to them.
    this.#send(link, link.toHub, () => {
      if (!link.isLeafOpen) return;
      if (!this.hub.isUp) {
        if (this.#netPrng.chance(0.5)) this.#send(link, link.toLeaf, () => this.#leafClosed(leaf, life, link, 'connection refused'));
        return;
      }
      link.isHubOpen = true;
      this.#accept(link);
      this.#send(link, link.toLeaf, () => {
        if (leaf.life !== life || !link.isLeafOpen) return;
        leaf.conn.opened(connection, this.now);
        this.#leafActions(leaf);
      });
    });
  }

  #leafClosed(leaf: LeafNode, life: number, link: SimLink, reason: string): void {
    if (leaf.life !== life || !link.isLeafOpen) return;
    link.isLeafOpen = false;
    this.note(`CLOSED ${leaf.name} c${link.id}: ${reason}`);
    leaf.conn.closed(link.leafConnection, this.now, reason);
    this.#leafActions(leaf);
  }

  #leafReceive(leaf: LeafNode, link: SimLink, frame: HubFrame): void {
    const isSync = leaf.conn.receive(link.leafConnection, frame, this.now);
    this.#leafActions(leaf);
    if (!isSync) return;
    // A frame of an older connection must never reach the sync machines (brief, fault model).
    if (leaf.links.get(leaf.conn.connection) !== link || leaf.conn.state !== 'up') throw new Error(`leaf ${leaf.name} routes a frame of c${link.id}, not its current connection`);
    this.#route(leaf, leaf.sender, leaf.receiver, leaf.sinks.get(HUB)!, link.end('leaf'), frame);
    this.#requestPump(leaf);
  }

  // ---------------------------------------------------------------- hub host

  #startHub(): void {
    const life = this.hub.life;
    this.hub.peers = new Map();
    this.hub.conns = new Map();
    this.#scheduleTick(this.hub, life, this.#machinePrng.between(1, this.options.tickMs));
  }

  #peer(leaf: string): PeerMachines {
    let peer = this.hub.peers.get(leaf);
    if (peer === undefined) {
      const { impl } = this.options;
      const limits = { batchMsgsMax: this.options.batchMsgsMax, batchBytesMax: this.options.batchBytesMax, inflightBatchesMax: this.options.inflightBatchesMax };
      peer = {
        sender: new impl.LinkSender({ streams: this.hub.store.senderStreams(), clock: this.clock, ...limits }),
        receiver: new impl.LinkReceiver({ sink: this.hub.sinks.get(leaf)!, clock: this.clock }),
        active: undefined,
        activeLink: undefined,
      };
      this.hub.peers.set(leaf, peer);
    }
    return peer;
  }

  #accept(link: SimLink): void {
    const hc = new this.options.impl.HubConnection({
      hub: HUB,
      windowBytes: this.options.hubWindowBytes,
      compression: true,
      authorize: (hello) => {
        if ((this.authRefusedUntil.get(hello.leaf) ?? 0) > this.now) {
          this.stats.authRefusals++;
          return 'token expired';
        }
        return hello.token === `token-${hello.leaf}` ? undefined : 'bad token';
      },
      versions: this.options.hubVersions,
      heartbeatMs: this.options.hubHeartbeatMs,
      connection: link.id,
      nowMs: this.now,
    });
    this.hub.conns.set(link.id, { hc, link });
  }

  #hubActions(hc: HubConnection, link: SimLink): void {
    const output = hc.poll();
    if (output.frames.length > 0) this.#transmit(link, 'hub', output.frames);
    for (const action of output.actions) this.#hubAction(hc, link, action);
  }

  #hubAction(hc: HubConnection, link: SimLink, action: LinkAction): void {
    switch (action.kind) {
      case 'dial':
        throw new Error('the hub never dials');
      case 'up': {
        const peer = this.#peer(action.session.peer);
        if (peer.active !== undefined && peer.active !== hc) {
          const old = peer.active;
          const oldLink = peer.activeLink!;
          old.replace();
          this.#hubActions(old, oldLink);
        }
        peer.active = hc;
        peer.activeLink = link;
        this.checker.onUp(link.end('hub'), action.session.peerWindowBytes);
        peer.sender.connected(action.session.peerWindowBytes);
        peer.receiver.connected();
        this.#requestPump(this.hub);
        return;
      }
      case 'close':
        this.note(`CLOSE hub c${link.id}: ${action.reason}`);
        if (action.reason === 'heartbeat timeout') this.stats.heartbeatTimeouts++;
        this.hub.conns.delete(link.id);
        this.#closeEnd(link, 'hub');
        return;
      case 'down': {
        this.note(`DOWN hub c${link.id}: ${action.reason}`);
        this.hub.conns.delete(link.id);
        const peer = this.hub.peers.get(hc.session!.peer)!;
        if (peer.active === hc) {
          this.checker.onDown(link.end('hub'));
          peer.sender.disconnected();
          peer.receiver.disconnected();
          peer.active = undefined;
          peer.activeLink = undefined;
        }
        return;
      }
    }
  }

  #hubClosed(link: SimLink, reason: string): void {
    if (!link.isHubOpen) return;
    link.isHubOpen = false;
    this.note(`CLOSED hub c${link.id}: ${reason}`);
    const entry = this.hub.conns.get(link.id);
    if (entry === undefined) return;
    entry.hc.closed(reason);
    this.#hubActions(entry.hc, link);
    this.hub.conns.delete(link.id);
  }

  #hubReceive(link: SimLink, frame: LeafFrame): void {
    const entry = this.hub.conns.get(link.id);
    if (entry === undefined) return;
    const isSync = entry.hc.receive(frame, this.now);
    this.#hubActions(entry.hc, link);
    if (!isSync) return;
    const peer = this.hub.peers.get(entry.hc.session!.peer)!;
    if (peer.active !== entry.hc || peer.activeLink !== link) throw new Error(`hub routes a frame of c${link.id}, not ${link.leaf}'s current connection`);
    this.#route(this.hub, peer.sender, peer.receiver, this.hub.sinks.get(link.leaf)!, link.end('hub'), frame);
    this.#requestPump(this.hub);
  }

  // ---------------------------------------------------------------- both

  /** Routes a sync frame to the sender or receiver of one peer (connection.ts "The host wires them"). */
  #route(node: SimNode, sender: LinkSender, receiver: LinkReceiver, sink: SimSink, end: string, frame: LinkFrame): void {
    switch (frame.t) {
      case 'cursor':
      case 'window':
      case 'error':
        this.checker.onDeliverToSender(end, frame);
        sender.receive(frame);
        return;
      case 'offer':
      case 'batch':
      case 'gap':
        receiver.receive(frame);
        if (sink.stagedCount > 0) this.#requestFlush(node);
        if (this.options.bugs.ackBeforeFlush && frame.t !== 'offer') receiver.durable(frame, sink.stagedCursor(frame));
        return;
      default:
        throw new Error(`not a sync frame: ${frame.t}`);
    }
  }

  #requestPump(node: SimNode): void {
    if (node.isPumpPending || !node.isUp) return;
    node.isPumpPending = true;
    const life = node.life;
    this.schedule(this.#machinePrng.between(0, this.options.pumpDelayMax), 'pump', () => {
      if (node.life !== life) return;
      node.isPumpPending = false;
      this.#pump(node);
    });
  }

  /** Hands out the sync machines' outputs: frames to send, errors to close on, events to log. */
  #pump(node: SimNode): void {
    if (node instanceof LeafNode) {
      const link = node.links.get(node.conn.connection);
      if (node.conn.state !== 'up' || link === undefined) return;
      this.#pumpPeer({ node, peer: HUB, sender: node.sender, receiver: node.receiver, link, side: 'leaf' });
      return;
    }
    for (const [leafName, peer] of this.hub.peers) {
      if (peer.active === undefined || peer.activeLink === undefined) continue;
      this.#pumpPeer({ node, peer: leafName, sender: peer.sender, receiver: peer.receiver, link: peer.activeLink, side: 'hub' });
    }
  }

  #pumpPeer(options: { node: SimNode; peer: string; sender: LinkSender; receiver: LinkReceiver; link: SimLink; side: 'leaf' | 'hub' }): void {
    const { node, link, side } = options;
    const sent = options.sender.poll();
    const received = options.receiver.poll();
    for (const event of received.events) {
      if (event.kind === 'incarnation') this.stats.incarnationAlerts++;
      this.note(`EVENT ${node.name} ${event.kind} ${event.stream} ${event.kind === 'gap' ? `${event.from}..${event.to} ${event.reason}` : `${event.previous} -> ${event.incarnation}`}`);
      this.checker.onReceiverEvent(node.name, options.peer, event);
    }
    const error = sent.error ?? received.error;
    if (error !== undefined) this.checker.onProtocolError(node.name, error.text);
    const frames: LinkFrame[] = [...received.frames, ...sent.frames];
    if (frames.length === 0) return;
    this.checker.onSend({ end: link.end(side), node: node.name, frames, sink: node.sinks.get(options.peer) });
    this.#transmit(link, side, frames);
    if (node instanceof LeafNode) node.conn.sent(link.leafConnection, this.now);
    else this.hub.peers.get(link.leaf)!.active!.sent(this.now);
  }

  /**
   * A group commit: the writes staged when it starts become durable when it ends (a slow disk
   * takes long); writes staged meanwhile wait for the next one.
   */
  #requestFlush(node: SimNode): void {
    if (node.isFlushPending) return;
    node.isFlushPending = true;
    const life = node.life;
    const counts = new Map<string, number>();
    for (const [peer, sink] of node.sinks) counts.set(peer, sink.stagedCount);
    const isSlow = (this.diskSlowUntil.get(node.name) ?? 0) > this.now;
    const latency = isSlow ? this.#diskPrng.between(300, 3000) : this.#diskPrng.between(this.options.diskLatencyMin, this.options.diskLatencyMax);
    this.schedule(latency, 'flush', () => {
      if (node.life !== life) return;
      node.isFlushPending = false;
      let isMore = false;
      for (const [peer, sink] of node.sinks) {
        const moved = sink.flush(counts.get(peer) ?? 0);
        this.checker.onDurable(sink);
        const receiver = node instanceof LeafNode ? node.receiver : this.hub.peers.get(peer)?.receiver;
        for (const { key, seq } of moved) receiver?.durable(key, seq);
        if (sink.stagedCount > 0) isMore = true;
      }
      if (isMore) this.#requestFlush(node);
      this.#requestPump(node);
    });
  }

  // ---------------------------------------------------------------- network

  #transmit(link: SimLink, from: 'leaf' | 'hub', frames: readonly LinkFrame[]): void {
    if (from === 'leaf' ? !link.isLeafOpen : !link.isHubOpen) return;
    for (const frame of frames) {
      this.stats.framesSent++;
      if (frame.t === 'batch') {
        this.stats.batches++;
        this.stats.msgsSent += frame.msgs.length;
      } else if (frame.t === 'gap') this.stats.gaps++;
      if (this.options.isTranscriptOn) this.note(`${from === 'leaf' ? `${link.leaf} -> hub` : `hub -> ${link.leaf}`} c${link.id} ${describeFrame(frame)}`);
      this.#send(link, from === 'leaf' ? link.toHub : link.toLeaf, () => this.#deliver(link, from === 'leaf' ? 'hub' : 'leaf', frame));
    }
  }

  /** Puts `delivery` on `pipe` behind everything already on it. */
  #send(link: SimLink, pipe: Pipe, delivery: () => void): void {
    if (pipe.isDead) {
      this.stats.framesLost++;
      return;
    }
    const at = Math.max(pipe.lastAt, this.now + this.#delay());
    pipe.lastAt = at;
    pipe.queue.push({ at, delivery });
    this.#scheduleDrain(pipe);
    void link;
  }

  #scheduleDrain(pipe: Pipe): void {
    const head = pipe.queue[0];
    if (pipe.isDrainScheduled || pipe.isStalled || head === undefined) return;
    pipe.isDrainScheduled = true;
    this.schedule(head.at - this.now, 'deliver', () => {
      pipe.isDrainScheduled = false;
      if (pipe.isDead) {
        this.stats.framesLost += pipe.queue.length;
        pipe.queue.length = 0;
        return;
      }
      while (!pipe.isStalled && !pipe.isDead && pipe.queue.length > 0 && pipe.queue[0]!.at <= this.now) pipe.queue.shift()!.delivery();
      this.#scheduleDrain(pipe);
    });
  }

  #stall(pipe: Pipe): void {
    pipe.isStalled = true;
  }

  /** The partition healed: TCP retransmits what the pipe held, in order, from now on. */
  #unstall(pipe: Pipe): void {
    if (!pipe.isStalled) return;
    pipe.isStalled = false;
    const base = this.now + this.#delay();
    for (const item of pipe.queue) item.at = Math.max(item.at, base);
    pipe.lastAt = Math.max(pipe.lastAt, base);
    this.#scheduleDrain(pipe);
  }

  #kill(pipe: Pipe): void {
    pipe.isDead = true;
    this.stats.framesLost += pipe.queue.length;
    pipe.queue.length = 0;
  }

  #deliver(link: SimLink, to: 'leaf' | 'hub', frame: LinkFrame): void {
    if (to === 'leaf' ? !link.isLeafOpen : !link.isHubOpen) {
      this.stats.framesLost++;
      return;
    }
    this.stats.framesDelivered++;
    if (to === 'hub') this.#hubReceive(link, frame as LeafFrame);
    else this.#leafReceive(this.#leafNode(link.leaf), link, frame as HubFrame);
  }

  #leafNode(name: string): LeafNode {
    return this.node(name) as LeafNode;
  }

  /** One end closes its side: the peer hears FIN after everything already sent. */
  #closeEnd(link: SimLink, side: 'leaf' | 'hub'): void {
    if (side === 'leaf') {
      if (!link.isLeafOpen) return;
      link.isLeafOpen = false;
      const leaf = this.#leafNode(link.leaf);
      this.#send(link, link.toHub, () => this.#hubClosed(link, 'peer closed'));
      void leaf;
    } else {
      if (!link.isHubOpen) return;
      link.isHubOpen = false;
      const leaf = this.#leafNode(link.leaf);
      const life = leaf.life;
      this.#send(link, link.toLeaf, () => this.#leafClosed(leaf, life, link, 'peer closed'));
    }
  }

  openLinks(): SimLink[] {
    return this.#links.filter((link) => link.isLeafOpen || link.isHubOpen);
  }

  // ---------------------------------------------------------------- faults

  /** Both ends hear a reset; whatever is in flight is lost. */
  reset(link: SimLink): void {
    this.stats.resets++;
    this.note(`FAULT reset c${link.id}`);
    this.#kill(link.toHub);
    this.#kill(link.toLeaf);
    const leaf = this.#leafNode(link.leaf);
    const life = leaf.life;
    this.schedule(this.#delay(), 'rst', () => this.#leafClosed(leaf, life, link, 'connection reset'));
    this.schedule(this.#delay(), 'rst', () => this.#hubClosed(link, 'connection reset'));
  }

  /** From now on nothing arrives in that direction, and nobody is told. */
  killPipe(link: SimLink, direction: 'toHub' | 'toLeaf' | 'both'): void {
    this.stats.deadPipes++;
    this.note(`FAULT blackhole c${link.id} ${direction}`);
    if (direction !== 'toLeaf') this.#kill(link.toHub);
    if (direction !== 'toHub') this.#kill(link.toLeaf);
  }

  partition(leaf: string): void {
    if (this.partitioned.has(leaf)) return;
    this.stats.partitions++;
    this.note(`FAULT partition ${leaf}`);
    this.partitioned.add(leaf);
    for (const link of this.#links) {
      if (link.leaf !== leaf) continue;
      this.#stall(link.toHub);
      this.#stall(link.toLeaf);
    }
  }

  healPartition(leaf: string): void {
    if (!this.partitioned.delete(leaf)) return;
    this.note(`HEAL partition ${leaf}`);
    for (const link of this.#links) {
      if (link.leaf !== leaf) continue;
      this.#unstall(link.toHub);
      this.#unstall(link.toLeaf);
    }
  }

  /** A process crash (peers hear FIN) or a power loss (peers hear nothing). Staged writes are partly lost. */
  crash(node: SimNode, kind: 'process' | 'power'): void {
    if (!node.isUp) return;
    this.stats.crashes++;
    node.isUp = false;
    node.life += 1;
    node.isFlushPending = false;
    node.isPumpPending = false;
    let lost = 0;
    for (const sink of node.sinks.values()) {
      lost += sink.crash(this.#diskPrng);
      this.checker.onDurable(sink);
    }
    this.stats.writesLost += lost;
    this.note(`FAULT crash ${node.name} ${kind} staged-writes-lost=${lost}`);
    const side = node === this.hub ? 'hub' : 'leaf';
    for (const link of this.#links) {
      if (side === 'leaf' && link.leaf !== node.name) continue;
      const isOpen = side === 'leaf' ? link.isLeafOpen : link.isHubOpen;
      if (!isOpen) continue;
      this.checker.onDown(link.end(side));
      if (kind === 'process') this.#closeEnd(link, side);
      else if (side === 'leaf') link.isLeafOpen = false;
      else link.isHubOpen = false;
    }
  }

  restart(node: SimNode): void {
    if (node.isUp) return;
    node.isUp = true;
    node.life += 1;
    this.note(`RESTART ${node.name}`);
    if (node instanceof LeafNode) this.#startLeaf(node);
    else this.#startHub();
  }

  // ---------------------------------------------------------------- views for the run

  leafConnectionState(leaf: string): string {
    const node = this.#leafNode(leaf);
    return node.isUp ? node.conn.state : 'crashed';
  }

  senderOf(sender: SimNode, receiver: string): LinkSender | undefined {
    if (!sender.isUp) return undefined;
    if (sender instanceof LeafNode) return sender.sender;
    return this.hub.peers.get(receiver)?.sender;
  }

  isHubUpFor(leaf: string): boolean {
    return this.hub.isUp && this.hub.peers.get(leaf)?.active !== undefined;
  }

  /** The receiving node's copy state of a sender stream. */
  copyCursor(receiver: SimNode, sender: string, key: StreamKey): { durable: number; staged: number } {
    const sink = receiver.sinks.get(sender)!;
    return { durable: sink.cursor(key), staged: sink.stagedCursor(key) };
  }

  describeNode(node: SimNode): string {
    if (!node.isUp) return `${node.name} crashed`;
    if (node instanceof LeafNode) {
      return `${node.name} ${node.conn.state} attempt=${node.conn.attempt} ${JSON.stringify(node.sender.credit ?? null)}`;
    }
    return `hub peers=${[...this.hub.peers].map(([name, peer]) => `${name}:${peer.active?.state ?? '-'}`).join(',')} conns=${this.hub.conns.size}`;
  }
}

export function describeFrame(frame: LinkFrame): string {
  switch (frame.t) {
    case 'batch': {
      let bytes = 0;
      for (const message of frame.msgs) bytes += messageBytes(message);
      return `batch#${frame.id} ${frame.stream}@${frame.incarnation} ${frame.msgs[0]?.seq ?? '?'}..${frame.msgs[frame.msgs.length - 1]?.seq ?? '?'} (${frame.msgs.length} msgs ${bytes} B)`;
    }
    case 'gap':
      return describeGap(frame);
    case 'cursor':
      return `cursor ${frame.stream}@${frame.incarnation} ${frame.seq}${frame.batch === undefined ? '' : ` batch#${frame.batch}`}`;
    case 'offer':
      return `offer ${frame.stream}@${frame.incarnation} ${frame.firstSeq}..${frame.lastSeq}`;
    case 'window':
      return `window ${frame.windowBytes}`;
    case 'error':
      return `error ${frame.code}${frame.stream === undefined ? '' : ` ${frame.stream}`}: ${frame.text}`;
    case 'hello':
      return `hello ${frame.leaf} v${frame.versions.join(',')} heartbeat=${frame.heartbeatMs} window=${frame.windowBytes}`;
    case 'welcome':
      return `welcome v${frame.version} heartbeat=${frame.heartbeatMs} window=${frame.windowBytes}`;
    case 'ping':
      return 'ping';
  }
}

function describeGap(frame: GapFrame): string {
  return `gap ${frame.stream}@${frame.incarnation} ${frame.from}..${frame.to} ${frame.reason}`;
}

export { keyId };
export type { LeafNode, HubNode, SimNode, SimLink };
