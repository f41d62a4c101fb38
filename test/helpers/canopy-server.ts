/**
 * A real `canopy server` process with JetStream on a given store_dir, for fault
 * tests that stop, kill and restart it (test/fault). Built on runCanopy.
 */
import { connect as connectTcp } from 'node:net';
import { runCanopy, type CliRun } from './processes.ts';

export type CanopyServer = {
  readonly run: CliRun;
  readonly pid: number;
  readonly port: number;
  /** 127.0.0.1:<port>, for `servers`. */
  readonly server: string;
  /** The process's log (stdout, pino JSON lines) plus stderr. */
  logs(): string;
  /** The parsed JSON log lines of stdout (lines that are not JSON are skipped). */
  logLines(): Record<string, unknown>[];
  /** True while the process has not exited. */
  isAlive(): boolean;
  /** SIGTERM; resolves with the exit code (or signal name). */
  stop(): Promise<number | string>;
  /** SIGKILL; resolves when the process is gone. */
  kill(): Promise<number | string>;
};

/** `canopy server|leaf|hub -a 127.0.0.1 -p <port> -m <httpPort: 0, off> --websocket_port 0 --store_dir <dir>`. */
export function serverArgs(
  port: number,
  storeDir: string,
  extra: readonly string[] = [],
  command: 'server' | 'leaf' | 'hub' = 'server',
  httpPort = 0,
): string[] {
  return [command, '-a', '127.0.0.1', '-p', String(port), '-m', String(httpPort), '--websocket_port', '0', '--store_dir', storeDir, ...extra];
}

async function canConnect(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts the server and resolves once it accepts TCP connections on `port`.
 * Rejects with its output if it exits first or is not up within `timeoutMs`.
 */
export async function startCanopyServer(
  port: number,
  storeDir: string,
  options: { extraArgs?: readonly string[]; timeoutMs?: number; command?: 'server' | 'leaf' | 'hub'; httpPort?: number } = {},
): Promise<CanopyServer> {
  const run = runCanopy(serverArgs(port, storeDir, options.extraArgs ?? [], options.command, options.httpPort));
  let exit: number | string | undefined;
  void run.exited.then((how) => (exit = how));
  const logs = (): string => run.stdout() + run.stderr();
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (exit !== undefined) throw new Error(`canopy server exited (${exit}) before it listened:\n${logs()}`);
    // Wait for the server's own "listening" line: a stale listener cannot fake it.
    if (run.stdout().includes('listening for client connections') && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`canopy server did not listen on ${port} in time:\n${logs()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const pid = run.child.pid ?? -1;
  return {
    run,
    pid,
    port,
    server: `127.0.0.1:${port}`,
    logs,
    logLines: () =>
      run
        .stdout()
        .split('\n')
        .flatMap((line) => {
          if (!line.startsWith('{')) return [];
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    isAlive: () => exit === undefined && run.child.exitCode === null && run.child.signalCode === null,
    stop: async () => {
      if (exit === undefined) run.child.kill('SIGTERM');
      return await run.exited;
    },
    kill: async () => {
      if (exit === undefined) run.child.kill('SIGKILL');
      return await run.exited;
    },
  };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
