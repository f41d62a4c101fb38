/**
 * A memory cgroup for one benchmarked process: the limit systemd's `MemoryMax=` sets on a
 * gateway. RSS counts the clean LMDB map pages a process touched (page cache the kernel takes
 * back under pressure); a cgroup limit shows whether the process really runs in that much memory.
 * cgroup v2 (`memory.max`, `memory.peak`, `memory.events`) or v1 (`memory.limit_in_bytes`,
 * `memory.max_usage_in_bytes`, `memory.oom_control`). Needs root; `create` answers undefined
 * where cgroups cannot be made (the benchmark then says so).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type MemoryCgroup = {
  readonly path: string;
  /** A shell command prefix that moves the shell into the group before it execs the process (so every page is charged to it). */
  readonly enterCommand: string;
  /** The highest memory charge so far (anonymous + page cache), bytes. */
  peakBytes(): number;
  /** Processes the kernel killed for the limit. */
  oomKills(): number;
  remove(): void;
};

const V2_ROOT = '/sys/fs/cgroup';
const V1_ROOT = '/sys/fs/cgroup/memory';

export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup | undefined {
  try {
    if (existsSync(join(V2_ROOT, 'cgroup.controllers')) && readFileSync(join(V2_ROOT, 'cgroup.controllers'), 'utf8').includes('memory')) {
      const path = join(V2_ROOT, name);
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'memory.max'), String(limitBytes));
      writeFileSync(join(path, 'memory.swap.max'), '0');
      return group(path, () => readNumber(join(path, 'memory.peak')), () => eventCount(join(path, 'memory.events'), 'oom_kill'));
    }
    if (existsSync(join(V1_ROOT, 'memory.limit_in_bytes'))) {
      const path = join(V1_ROOT, name);
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'memory.limit_in_bytes'), String(limitBytes));
      return group(path, () => readNumber(join(path, 'memory.max_usage_in_bytes')), () => eventCount(join(path, 'memory.oom_control'), 'oom_kill'));
    }
  } catch {
    // Not root, or a read-only cgroup file system (a container): no group.
  }
  return undefined;
}

function group(path: string, peakBytes: () => number, oomKills: () => number): MemoryCgroup {
  return {
    path,
    enterCommand: `echo $$ > ${join(path, 'cgroup.procs')} && exec`,
    peakBytes,
    oomKills,
    remove: () => {
      try {
        rmdirSync(path);
      } catch {
        // Still has a process (killed late) or already gone.
      }
    },
  };
}

function readNumber(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

function eventCount(file: string, key: string): number {
  const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
  return match === null ? 0 : Number(match[1]);
}
