/**
 * Deliberate bugs, to prove the link simulator and its checkers can fail (TigerBeetle: a test
 * that cannot fail proves nothing; the Raft simulator's test/sim/mutants.ts does the same).
 *
 * A core bug is a textual mutation of core/link source lines: `loadLinkMutant` copies the link
 * state machines into a temporary directory, applies the mutation there (never to the real
 * sources) and imports the copy. A host bug breaks the host's side of the contract in the
 * simulator instead (link-world.ts `HostBugs`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HostBugs, LinkImpl } from './link-world.ts';
import { REAL_LINK_IMPL } from './link-sim.ts';

type Edit = { readonly file: string; readonly find: string; readonly replace: string };

type CoreMutation = {
  readonly kind: 'core';
  readonly name: string;
  /** The README rule the mutation breaks. */
  readonly rule: string;
  readonly edits: readonly Edit[];
};

type HostBug = { readonly kind: 'host'; readonly name: string; readonly rule: string; readonly bugs: HostBugs };

export type LinkBug = CoreMutation | HostBug;

const NO_HOST_BUGS: HostBugs = { ackBeforeFlush: false };

/** The files of core/link the state machines are made of (codec.ts and its package stay out). */
const LINK_FILES = ['frames.ts', 'limits.ts', 'credit.ts', 'sender.ts', 'receiver.ts', 'connection.ts', 'index.ts'] as const;

export const LINK_BUGS: readonly LinkBug[] = [
  {
    kind: 'core',
    name: 'receiver-acks-staged',
    rule: 'README "Batch": the receiver sends cursor only after the append is durable',
    edits: [
      {
        file: 'receiver.ts',
        find: '    if (ack.seq <= track.durableSeq) this.#sendCursor(track);',
        replace: "    this.#frames.push({ t: 'cursor', stream: track.key.stream, incarnation: track.key.incarnation, seq: track.stagedSeq, batch: ack.batch });",
      },
    ],
  },
  {
    kind: 'core',
    name: 'offer-answers-staged',
    rule: 'README "Offer": the receiver answers every offer with its durable cursor (loss on reconnect)',
    edits: [{ file: 'receiver.ts', find: 'seq: track.durableSeq, batch: undefined });', replace: 'seq: track.stagedSeq, batch: undefined });' }],
  },
  {
    kind: 'core',
    name: 'sender-skips-gap',
    rule: 'README "Gap": the sender sends gap(cursor + 1, firstSeq - 1) before the next batch',
    edits: [{ file: 'sender.ts', find: '      this.#sendGap(sync, state.firstSeq - 1, this.#gapReason(sync, state.firstSeq - 1));\n', replace: '      sync.nextSeq = state.firstSeq;\n' }],
  },
  {
    kind: 'core',
    name: 'gap-covers-kept-data',
    rule: 'README "Gap": a gap is never sent for data the sender still has',
    edits: [{ file: 'sender.ts', find: '      this.#sendGap(sync, state.firstSeq - 1, this.#gapReason(sync, state.firstSeq - 1));\n', replace: '      this.#sendGap(sync, state.firstSeq, this.#gapReason(sync, state.firstSeq - 1));\n' }],
  },
  {
    kind: 'core',
    name: 'receiver-appends-resends',
    rule: 'README "Batch": messages at or below the cursor (durable or pending) are ignored',
    edits: [
      { file: 'receiver.ts', find: 'const skip = Math.max(0, Math.min(msgs.length, track.stagedSeq - msgs[0]!.seq + 1));', replace: 'const skip = 0;' },
      { file: 'receiver.ts', find: 'if (msgs[skip]!.seq !== track.stagedSeq + 1) {', replace: 'if (msgs[skip]!.seq > track.stagedSeq + 1) {' },
    ],
  },
  {
    kind: 'core',
    name: 'receiver-ignores-incarnation',
    rule: 'README "Incarnation": a new incarnation is a new sequence space (EDGE-SYNC.md: re-created stores skipped)',
    edits: [{ file: 'receiver.ts', find: 'function keyId(key: StreamKey): string {\n  return `${key.stream}\\u0000${key.incarnation}`;', replace: 'function keyId(key: StreamKey): string {\n  return key.stream;' }],
  },
  {
    kind: 'core',
    name: 'credit-ignores-window',
    rule: 'README "Window": at most windowBytes unacknowledged, all streams together',
    edits: [{ file: 'credit.ts', find: 'return this.#unackedBytes === 0 || this.#unackedBytes + bytes <= this.#windowBytes;', replace: 'return true;' }],
  },
  {
    kind: 'core',
    name: 'no-dead-detection',
    rule: 'README "Connection" 2: a side that received nothing for two intervals declares the connection dead',
    edits: [{ file: 'connection.ts', find: 'return nowMs - this.#lastReceivedMs >= LINK_DEAD_INTERVALS * this.intervalMs;', replace: 'return false && nowMs > LINK_DEAD_INTERVALS;' }],
  },
  {
    kind: 'host',
    name: 'ack-before-flush',
    rule: 'house rule 8: the host reports a write durable only after the sink flushed it',
    bugs: { ackBeforeFlush: true },
  },
];

export function findLinkBug(name: string): LinkBug {
  const bug = LINK_BUGS.find((candidate) => candidate.name === name);
  if (bug === undefined) throw new Error(`unknown bug ${name}; known: ${LINK_BUGS.map((candidate) => candidate.name).join(', ')}`);
  return bug;
}

export type LoadedLinkMutant = { readonly impl: LinkImpl; readonly bugs: HostBugs; dispose(): void };

/** Builds the link implementation and host bugs for `bug` (for a host bug: the real implementation). */
export async function loadLinkMutant(bug: LinkBug): Promise<LoadedLinkMutant> {
  if (bug.kind === 'host') return { impl: REAL_LINK_IMPL, bugs: bug.bugs, dispose() {} };
  const sourceDir = resolve('core/link');
  const utilDir = resolve('core/util');
  const directory = mkdtempSync(join(tmpdir(), `canopy-link-mutant-${bug.name}-`));
  for (const name of LINK_FILES) {
    let source = readFileSync(join(sourceDir, name), 'utf8').replaceAll("'../util/", `'${utilDir}/`);
    for (const edit of bug.edits) {
      if (edit.file !== name) continue;
      const count = source.split(edit.find).length - 1;
      if (count !== 1) throw new Error(`mutation ${bug.name}: expected one match in ${name}, found ${count} (did the source change?)`);
      source = source.replace(edit.find, edit.replace);
    }
    writeFileSync(join(directory, name), source);
  }
  const module = (await import(pathToFileURL(join(directory, 'index.ts')).href)) as LinkImpl;
  return {
    impl: { LinkSender: module.LinkSender, LinkReceiver: module.LinkReceiver, LeafConnection: module.LeafConnection, HubConnection: module.HubConnection },
    bugs: NO_HOST_BUGS,
    dispose() {
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
