/**
 * Helpers for the benchmarks that run servers as child processes (compare.ts,
 * link.bench.ts, nats-leafnode-mirror.ts): Debian's nats-server on PATH, stopping a
 * child, polling until something is ready, and a process's resident memory from /proc.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function isOnPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), fsConstants.X_OK);
      return true;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return false;
}

/** Installs Debian's nats-server with apt-get when it is not on PATH; `label` prefixes the message. */
export function ensureNatsServer(label: string): void {
  if (isOnPath('nats-server')) return;
  process.stderr.write(`${label}: nats-server is not on PATH; running: apt-get update && apt-get install -y nats-server\n`);
  for (const args of [['update'], ['install', '-y', 'nats-server']]) {
    const run = spawnSync('apt-get', args, { stdio: 'inherit' });
    if (run.status !== 0) {
      throw new Error(`apt-get ${args.join(' ')} failed (exit ${run.status ?? run.signal}); install nats-server yourself and retry`);
    }
  }
  if (!isOnPath('nats-server')) throw new Error('apt-get installed nats-server, but it is still not on PATH');
}

/** SIGTERM, then SIGKILL if `child` has not exited within `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Calls `check` every 20 ms (a throw counts as not yet) until it returns a value. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** VmRSS and its anonymous and file-backed parts (the LMDB map's touched pages are file-backed), in MB. */
const CLOCK_TICKS_PER_SEC = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** utime + stime of `pid` in microseconds, from /proc/<pid>/stat (parsed after the last ')', so any command name is safe). */
export function readCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm) ": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / CLOCK_TICKS_PER_SEC) * 1e6;
}

export function rssMb(pid: number | undefined): { total: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { total: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

/** Resident MB of the mappings of files whose path ends with `suffix` (e.g. the LMDB map, `data.mdb`). */
export function mappedFileRssMb(pid: number | undefined, suffix: string): number {
  let kb = 0;
  let isMatch = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ /.test(line);
    if (mapping) isMatch = line.trimEnd().endsWith(suffix);
    else if (isMatch && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return kb / 1024;
}

/** The process's peak resident set so far (VmHWM), MB. */
export function peakRssMb(pid: number | undefined): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}
