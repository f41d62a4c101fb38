/** Child processes and free ports for tests that run the real CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports this process handed out recently: the kernel may give a just-closed port again, and two listeners of one test must not get the same one. */
const handedOut = new Set<number>();
const HANDED_OUT_MAX = 4096;
/**
 * Ports handed out by any test process, as marker files: `npm test` runs two test files at
 * once, and a port a test holds for a process it kills and restarts (a hub, a Raft node)
 * is free for a moment, when the other file's freePort could be given it (EADDRINUSE at the
 * restart). A marker younger than this keeps the port from every other test process.
 */
const RESERVATION_DIR = join(tmpdir(), 'canopy-test-ports');
const RESERVATION_MS = 15 * 60_000;

/** Claims `port` across test processes; false if another one handed it out recently. */
function reserveAcrossProcesses(port: number): boolean {
  mkdirSync(RESERVATION_DIR, { recursive: true });
  const file = join(RESERVATION_DIR, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVATION_MS) return false;
      const now = new Date();
      utimesSync(file, now, now);
      return true;
    } catch {
      return false;
    }
  }
}

/** A loopback port that was free a moment ago and was not handed out recently by this or another test process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    if (handedOut.has(port) || !reserveAcrossProcesses(port)) continue;
    if (handedOut.size >= HANDED_OUT_MAX) handedOut.clear();
    handedOut.add(port);
    return port;
  }
}

export type CliRun = {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
};

/** Runs `canopy <args>` (scripts/canopy.ts through tsx) as a child process. */
export function runCanopy(args: readonly string[], options: { input?: string; nodeArgs?: readonly string[] } = {}): CliRun {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', 'scripts/canopy.ts', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  if (options.input !== undefined) child.stdin.end(options.input);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** How long a CLI run may take before exitCodeOf gives up (startup goes through tsx). */
export const CLI_EXIT_TIMEOUT_MS = 30_000;

/** runCanopy, killed when the test ends whatever happened. */
export function runCanopyUntilTestEnds(t: { after(fn: () => void): void }, args: readonly string[], options: { input?: string } = {}): CliRun {
  const run = runCanopy(args, options);
  t.after(() => run.child.kill('SIGKILL'));
  return run;
}

/** The run's exit code, or a message with its stderr when it does not exit in time. */
export async function exitCodeOf(run: CliRun, timeoutMs = CLI_EXIT_TIMEOUT_MS): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no exit within ${timeoutMs} ms; stderr: ${run.stderr()}`), timeoutMs);
  });
  const code = await Promise.race([run.exited, timeout]);
  clearTimeout(timer);
  return code;
}
