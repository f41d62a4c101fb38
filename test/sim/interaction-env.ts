/**
 * A hand-driven Raft cluster for transcript tests, after etcd's
 * rafttest.InteractionEnv (STYLE.md §2.8 (4)): each command does one thing
 * (tick a node, process its Ready, deliver its mail) and prints what
 * happened, so a test reads as a protocol trace and a bug report becomes a
 * short script. Time and randomness are fixed: node n's PRNG is seeded n.
 *
 * Commands (arguments are `key=value`, lists are `(1,2,3)`):
 *   add-nodes <count> voters=(…) [learners=(…)] [prevote=…] [checkquorum=…] [election=…] [heartbeat=…] [inflight=…] [msgbytes=…]
 *   campaign <id>            tick <id> [count]        tick-election <id>     tick-heartbeat <id>
 *   process-ready <id>…      deliver-msgs <id>…       drop-msgs <id>…        stabilize [<id>…]
 *   propose <id> <data>      propose-batch <id> <data>…
 *   propose-conf-change <id> <add-learner|add-voter|remove> <node>
 *   transfer-leadership <from> <to>                   read-index <id> <request-id>
 *   partition (…) (…)        heal                     crash <id>             restart <id>
 *   wipe <id> as=<new-id>    snapshot <id>            compact <id> <index>
 *   status <id>              raft-log <id>            log-level <none|info|debug>
 */
import { SeededPrng } from '../../core/util/prng.ts';
import type { ConfChange, ConfState, Entry, Message, NodeId, RaftConfig, RaftLogFields, RaftNodeOptions, Ready } from '../../hub/raft/index.ts';
import { applyConfChange, formatConfState, MemoryLogStorage, RAFT_CONFIG_DEFAULTS, RaftNode } from '../../hub/raft/index.ts';

type LogLevel = 'none' | 'info' | 'debug';

type EnvNode = {
  id: NodeId;
  node: RaftNode | undefined;
  storage: MemoryLogStorage;
  config: Omit<RaftConfig, 'id' | 'appliedIndex'>;
  applied: string[];
  appliedIndex: number;
  appliedConf: ConfState;
};

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function formatEntry(entry: Entry): string {
  if (entry.kind === 'normal') return `${entry.term}/${entry.index} normal ${JSON.stringify(textDecoder.decode(entry.data))}`;
  return `${entry.term}/${entry.index} conf ${entry.change.type} ${entry.change.nodeId}`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} log=${m.logTerm}/${m.index} commit=${m.commit} entries=[${m.entries.map(formatEntry).join(', ')}]`;
    case 'append-resp':
      return m.reject ? `${head} reject index=${m.index} hint=${m.logTerm}/${m.rejectHint}` : `${head} index=${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.context > 0 ? ` context=${m.context}` : ''}`;
    case 'heartbeat-resp':
      return `${head}${m.context > 0 ? ` context=${m.context}` : ''}`;
    case 'vote':
    case 'pre-vote':
      return `${head} last=${m.logTerm}/${m.index}${m.force ? ' force' : ''}`;
    case 'vote-resp':
    case 'pre-vote-resp':
      return `${head} ${m.reject ? 'rejected' : 'granted'}`;
    case 'snapshot':
      return `${head} snapshot=${m.snapshot.metadata.term}/${m.snapshot.metadata.index} ${formatConfState(m.snapshot.metadata.confState)}`;
    case 'timeout-now':
      return head;
    case 'read-index':
      return `${head} request=${m.requestId}`;
    case 'read-index-resp':
      return `${head} request=${m.requestId} index=${m.index}`;
  }
}

/** The env's state machine is the list of applied values; a snapshot stores it comma-separated. */
function decodeApplied(data: Uint8Array): string[] {
  const text = textDecoder.decode(data);
  return text === '' ? [] : text.split(',');
}

function parseList(text: string | undefined): NodeId[] {
  if (text === undefined || text === '()') return [];
  const match = /^\(([\d,\s]*)\)$/.exec(text);
  if (match === null) throw new Error(`expected a list like (1,2,3), got ${text}`);
  return (match[1] ?? '')
    .split(',')
    .filter((part) => part.trim() !== '')
    .map((part) => Number(part.trim()));
}

export type RaftNodeClass = new (options: RaftNodeOptions) => RaftNode;

export class InteractionEnv {
  readonly #raftNodeClass: RaftNodeClass;
  readonly #nodes = new Map<NodeId, EnvNode>();
  /** Pending mail, per recipient, in send order. */
  readonly #mail = new Map<NodeId, Message[]>();
  /** Blocked directed links "from>to". */
  readonly #blocked = new Set<string>();
  #output: string[] = [];
  #logLevel: LogLevel = 'info';

  /** `raftNodeClass` lets the mutation tests run a transcript against a deliberately broken copy. */
  constructor(options: { raftNodeClass: RaftNodeClass } = { raftNodeClass: RaftNode }) {
    this.#raftNodeClass = options.raftNodeClass;
  }

  /** Runs one command line and returns its output (never empty). */
  run(line: string): string {
    this.#output = [];
    const [command, ...args] = line.trim().split(/\s+/);
    if (command === undefined || command === '') throw new Error('empty command');
    this.#dispatch(command, args);
    return this.#output.length === 0 ? 'ok' : this.#output.join('\n');
  }

  #print(line: string): void {
    this.#output.push(line);
  }

  #dispatch(command: string, args: string[]): void {
    const id = (): NodeId => this.#id(args[0]);
    switch (command) {
      case 'add-nodes':
        return this.#addNodes(args);
      case 'campaign':
        return this.#live(id()).campaign();
      case 'tick':
        return this.#tick(id(), Number(args[1] ?? '1'));
      case 'tick-election':
        return this.#tickElection(id());
      case 'tick-heartbeat':
        return this.#tick(id(), this.#env(id()).config.heartbeatTicks);
      case 'process-ready':
        for (const arg of args) this.#processReady(this.#id(arg));
        return;
      case 'deliver-msgs':
        for (const arg of args) this.#deliver(this.#id(arg));
        return;
      case 'drop-msgs':
        for (const arg of args) this.#dropMail(this.#id(arg));
        return;
      case 'stabilize':
        return this.#stabilize(args.length === 0 ? [...this.#nodes.keys()] : args.map((arg) => this.#id(arg)));
      case 'propose':
        return this.#printResult(id(), this.#live(id()).propose(textEncoder.encode(args[1] ?? '')));
      case 'propose-batch':
        return this.#printResult(id(), this.#live(id()).proposeBatch(args.slice(1).map((text) => textEncoder.encode(text))));
      case 'propose-conf-change':
        return this.#proposeConfChange(id(), args);
      case 'transfer-leadership':
        return this.#printResult(id(), this.#live(id()).transferLeadership(this.#id(args[1])));
      case 'read-index':
        this.#print(`read-index ${args[1] ?? ''}: ${this.#live(id()).readIndex(Number(args[1])) ? 'pending' : 'dropped'}`);
        return;
      case 'partition':
        return this.#partition(args);
      case 'heal':
        this.#blocked.clear();
        return;
      case 'crash':
        return this.#crash(id());
      case 'restart':
        return this.#restart(id());
      case 'wipe':
        return this.#wipe(id(), args);
      case 'snapshot':
        return this.#snapshot(id());
      case 'compact':
        this.#env(id()).storage.compact(Number(args[1]));
        this.#print(`compacted ${id()} to ${args[1] ?? ''}: first index ${this.#env(id()).storage.firstIndex()}`);
        return;
      case 'status':
        return this.#status(id());
      case 'raft-log':
        return this.#raftLog(id());
      case 'log-level':
        this.#logLevel = (args[0] ?? 'info') as LogLevel;
        return;
      default:
        throw new Error(`unknown command ${command}`);
    }
  }

  #id(text: string | undefined): NodeId {
    const id = Number(text);
    if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`bad node id ${text}`);
    return id;
  }

  #env(id: NodeId): EnvNode {
    const env = this.#nodes.get(id);
    if (env === undefined) throw new Error(`no node ${id}`);
    return env;
  }

  #live(id: NodeId): RaftNode {
    const node = this.#env(id).node;
    if (node === undefined) throw new Error(`node ${id} is crashed`);
    return node;
  }

  #addNodes(args: string[]): void {
    const count = Number(args[0]);
    const options = new Map<string, string>();
    for (const arg of args.slice(1)) {
      const [key, value] = arg.split('=', 2);
      if (key === undefined || value === undefined) throw new Error(`bad option ${arg}`);
      options.set(key, value);
    }
    const voters = parseList(options.get('voters'));
    const bool = (key: string, fallback: boolean): boolean => (options.has(key) ? options.get(key) === 'true' : fallback);
    const int = (key: string, fallback: number): number => (options.has(key) ? Number(options.get(key)) : fallback);
    const config = {
      ...RAFT_CONFIG_DEFAULTS,
      electionTicks: int('election', 10),
      heartbeatTicks: int('heartbeat', 1),
      preVote: bool('prevote', false),
      checkQuorum: bool('checkquorum', false),
      inflightMsgsMax: int('inflight', RAFT_CONFIG_DEFAULTS.inflightMsgsMax),
      msgBytesMax: int('msgbytes', RAFT_CONFIG_DEFAULTS.msgBytesMax),
    };
    const first = this.#nodes.size + 1;
    for (let id = first; id < first + count; id++) {
      const storage = voters.includes(id) ? MemoryLogStorage.bootstrap(voters) : new MemoryLogStorage();
      const env: EnvNode = { id, node: undefined, storage, config, applied: [], appliedIndex: 0, appliedConf: storage.snapshot().metadata.confState };
      this.#nodes.set(id, env);
      this.#start(env);
    }
  }

  #start(env: EnvNode): void {
    const log = (level: LogLevel) => (message: string, fields: RaftLogFields) => {
      if (this.#logLevel === 'none' || (level === 'debug' && this.#logLevel !== 'debug')) return;
      let line = `${env.id}: ${message}`;
      for (const key of Object.keys(fields)) if (key !== 'id') line += ` ${key}=${String(fields[key])}`;
      this.#print(line);
    };
    const snapshot = env.storage.snapshot();
    env.appliedIndex = snapshot.metadata.index;
    env.appliedConf = snapshot.metadata.confState;
    env.applied = decodeApplied(snapshot.data);
    env.node = new this.#raftNodeClass({
      config: { ...env.config, id: env.id, appliedIndex: snapshot.metadata.index },
      storage: env.storage,
      prng: new SeededPrng(env.id),
      logger: { debug: log('debug'), info: log('info'), warn: log('info') },
    });
  }

  #tick(id: NodeId, count: number): void {
    for (let i = 0; i < count; i++) this.#live(id).tick();
  }

  /** Ticks until the node's role or term changes (at most 2 × election ticks). */
  #tickElection(id: NodeId): void {
    const node = this.#live(id);
    const before = node.status();
    const limit = 2 * this.#env(id).config.electionTicks;
    for (let i = 0; i < limit; i++) {
      node.tick();
      const after = node.status();
      if (after.role !== before.role || after.term !== before.term) return;
    }
  }

  #processReady(id: NodeId): void {
    const env = this.#env(id);
    const node = env.node;
    if (node === undefined || !node.hasReady()) return;
    const ready = node.ready();
    this.#print(`> ${id} handling Ready`);
    this.#printReady(ready);
    // Persist first (house rule 1), then send, then apply, then advance.
    if (ready.snapshot !== undefined) env.storage.applySnapshot(ready.snapshot);
    env.storage.append(ready.entries);
    if (ready.hardState !== undefined) env.storage.setHardState(ready.hardState);
    for (const message of ready.messages) {
      if (this.#blocked.has(`${message.from}>${message.to}`)) {
        this.#print(`  dropped (partition): ${formatMessage(message)}`);
        continue;
      }
      const queue = this.#mail.get(message.to) ?? [];
      queue.push(message);
      this.#mail.set(message.to, queue);
    }
    if (ready.snapshot !== undefined) {
      env.appliedIndex = ready.snapshot.metadata.index;
      env.appliedConf = ready.snapshot.metadata.confState;
      env.applied = decodeApplied(ready.snapshot.data);
    }
    for (const entry of ready.committedEntries) {
      env.appliedIndex = entry.index;
      if (entry.kind === 'conf-change') env.appliedConf = applyConfChange(env.appliedConf, entry.change);
      else if (entry.data.length > 0) env.applied.push(textDecoder.decode(entry.data));
    }
    node.advance(ready);
  }

  #printReady(ready: Ready): void {
    if (ready.softState !== undefined) this.#print(`  lead=${ready.softState.lead} role=${ready.softState.role}`);
    if (ready.hardState !== undefined) {
      this.#print(`  HardState term=${ready.hardState.term} vote=${ready.hardState.vote} commit=${ready.hardState.commit}`);
    }
    if (ready.snapshot !== undefined) {
      const meta = ready.snapshot.metadata;
      this.#print(`  Snapshot ${meta.term}/${meta.index} ${formatConfState(meta.confState)}`);
    }
    if (ready.entries.length > 0) this.#print(`  Entries: ${ready.entries.map(formatEntry).join(', ')}`);
    if (ready.committedEntries.length > 0) this.#print(`  CommittedEntries: ${ready.committedEntries.map(formatEntry).join(', ')}`);
    for (const read of ready.readStates) this.#print(`  ReadState request=${read.requestId} index=${read.index}`);
    if (ready.messages.length > 0) {
      this.#print('  Messages:');
      for (const message of ready.messages) this.#print(`  ${formatMessage(message)}`);
    }
    this.#print(`  mustSync=${ready.mustSync}`);
  }

  #deliver(id: NodeId): number {
    const queue = this.#mail.get(id) ?? [];
    this.#mail.set(id, []);
    const env = this.#env(id);
    let count = 0;
    for (const message of queue) {
      if (this.#blocked.has(`${message.from}>${message.to}`)) {
        this.#print(`dropped (partition): ${formatMessage(message)}`);
        continue;
      }
      if (env.node === undefined) {
        this.#print(`dropped (crashed): ${formatMessage(message)}`);
        continue;
      }
      this.#print(formatMessage(message));
      env.node.step(message);
      count += 1;
    }
    return count;
  }

  #dropMail(id: NodeId): void {
    for (const message of this.#mail.get(id) ?? []) this.#print(`dropped: ${formatMessage(message)}`);
    this.#mail.set(id, []);
  }

  #stabilize(ids: NodeId[]): void {
    for (let round = 0; round < 100; round++) {
      let isBusy = false;
      for (const id of ids) {
        if (this.#env(id).node?.hasReady() === true) {
          this.#processReady(id);
          isBusy = true;
        }
      }
      for (const id of ids) {
        if ((this.#mail.get(id) ?? []).length > 0) {
          this.#deliver(id);
          isBusy = true;
        }
      }
      if (!isBusy) return;
    }
    throw new Error('stabilize did not settle in 100 rounds');
  }

  #printResult(id: NodeId, result: ReturnType<RaftNode['propose']>): void {
    if (result.isAccepted) this.#print(`${id}: accepted at ${result.term}/${result.index}`);
    else this.#print(`${id}: refused ${result.refusal} (${result.detail}) lead=${result.lead}`);
  }

  #proposeConfChange(id: NodeId, args: string[]): void {
    const type = args[1];
    if (type !== 'add-learner' && type !== 'add-voter' && type !== 'remove') throw new Error(`bad conf change type ${type}`);
    const change: ConfChange = { type, nodeId: this.#id(args[2]), context: new Uint8Array(0) };
    this.#printResult(id, this.#live(id).proposeConfChange(change));
  }

  /** `partition (1,2) (3)`: blocks every link between the groups, both ways. */
  #partition(args: string[]): void {
    this.#blocked.clear();
    const groups = args.map(parseList);
    for (let a = 0; a < groups.length; a++) {
      for (let b = 0; b < groups.length; b++) {
        if (a === b) continue;
        for (const from of groups[a]!) for (const to of groups[b]!) this.#blocked.add(`${from}>${to}`);
      }
    }
  }

  #crash(id: NodeId): void {
    const env = this.#env(id);
    env.node = undefined;
    this.#mail.set(id, []);
    this.#print(`${id}: crashed (unprocessed state lost, storage kept)`);
  }

  #restart(id: NodeId): void {
    const env = this.#env(id);
    if (env.node !== undefined) throw new Error(`node ${id} is running`);
    this.#start(env);
  }

  /** The host lost node `id`'s disk; it comes back blank under a new id (README "Wiped and rolled-back nodes"). */
  #wipe(id: NodeId, args: string[]): void {
    const asArg = args.find((arg) => arg.startsWith('as='));
    const newId = this.#id(asArg?.slice(3));
    if (this.#nodes.has(newId)) throw new Error(`id ${newId} already used`);
    const old = this.#env(id);
    old.node = undefined;
    this.#mail.set(id, []);
    const env: EnvNode = { id: newId, node: undefined, storage: new MemoryLogStorage(), config: old.config, applied: [], appliedIndex: 0, appliedConf: { voters: [], learners: [] } };
    this.#nodes.set(newId, env);
    this.#print(`${id}: disk wiped; host restarts blank as ${newId}`);
    this.#start(env);
  }

  #snapshot(id: NodeId): void {
    const env = this.#env(id);
    const data = textEncoder.encode(env.applied.join(','));
    const snapshot = env.storage.createSnapshot({ index: env.appliedIndex, confState: env.appliedConf, data });
    this.#print(`${id}: snapshot at ${snapshot.metadata.term}/${snapshot.metadata.index} ${formatConfState(snapshot.metadata.confState)}`);
  }

  #status(id: NodeId): void {
    const env = this.#env(id);
    if (env.node === undefined) {
      this.#print(`${id}: crashed`);
      return;
    }
    const s = env.node.status();
    this.#print(
      `${id}: ${s.role} term=${s.term} vote=${s.vote} lead=${s.lead} commit=${s.commit} applied=${s.applied} ` +
        `log=[${s.firstIndex},${s.lastIndex}] ${formatConfState(s.confState)}`,
    );
    for (const p of s.progress) this.#print(`  ${p.id}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}`);
  }

  #raftLog(id: NodeId): void {
    const env = this.#env(id);
    const storage = env.storage;
    const snapshot = storage.snapshot().metadata;
    this.#print(`${id}: snapshot ${snapshot.term}/${snapshot.index}, log [${storage.firstIndex()},${storage.lastIndex()}]`);
    if (storage.lastIndex() >= storage.firstIndex()) {
      for (const entry of storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) this.#print(`  ${formatEntry(entry)}`);
    }
    this.#print(`  applied: [${env.applied.join(',')}]`);
  }
}
