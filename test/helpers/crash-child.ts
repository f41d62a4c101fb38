/**
 * Crash tests with a real child process killed by SIGKILL at a random moment
 * (test/core/store/lmdb-crash.test.ts, test/hub/raft-host/lmdb-log-crash.test.ts).
 * The child prints one line when it is ready, then one line per acknowledged
 * write; the parent kills it and checks the acknowledged writes on disk.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildSync } from 'esbuild';

/**
 * The child bundled to plain JS once (esbuild), so each round starts in a
 * fraction of the time `--import tsx` takes; `node_modules` is linked beside
 * the bundle so that `lmdb` (external: a native addon) resolves.
 */
export function bundleChild(options: { readonly dir: string; readonly source: string }): string {
  const bundleDir = join(options.dir, 'child');
  mkdirSync(bundleDir);
  symlinkSync(join(import.meta.dirname, '..', '..', 'node_modules'), join(bundleDir, 'node_modules'), 'dir');
  const outfile = join(bundleDir, basename(options.source).replace(/\.ts$/, '.mjs'));
  buildSync({ entryPoints: [options.source], bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['lmdb'], outfile, logLevel: 'warning' });
  return outfile;
}

/**
 * Runs `script` with `args` until `runMs` after its first line (its "ready"),
 * then SIGKILLs it; returns its complete output lines (the last line may be
 * cut by the kill and is dropped when it has no newline).
 */
export async function runChildAndKill(options: { readonly script: string; readonly args: readonly string[]; readonly runMs: number }): Promise<string[]> {
  const child = spawn(process.execPath, [options.script, ...options.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (errors += text));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (output.includes('\n')) resolve();
    };
    child.stdout.on('data', check);
    void exited.then((how) => reject(new Error(`child ended before it was ready (${how}): ${errors}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, options.runMs));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL', `the child was killed, not ended: ${errors}`);
  return output.slice(0, output.lastIndexOf('\n')).split('\n');
}
