/**
 * A small full disk for write-failure tests: a tmpfs of a given size (needs
 * root; the test is skipped otherwise) and a filler file.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * Mounts a tmpfs of `bytes`; undefined (after t.skip) without root. `cleanUp`
 * runs first in the unmounting hook (hooks run in the order they were added).
 */
export function mountTmpfs(t: TestContext, bytes: number, cleanUp: () => Promise<void>): string | undefined {
  const mountPoint = mkdtempSync(join(tmpdir(), 'canopy-space-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', mountPoint], { stdio: 'pipe' });
  } catch (err) {
    rmSync(mountPoint, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  t.after(async () => {
    await cleanUp();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  return mountPoint;
}

/** Fills the filesystem of `dir` with a file until `leaveBytes` or less are free. */
export function fill(dir: string, name: string, leaveBytes: number): string {
  const file = join(dir, name);
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  try {
    for (;;) {
      const stats = statfsSync(dir);
      const free = stats.bavail * stats.bsize;
      if (free <= leaveBytes) break;
      writeSync(fd, chunk, 0, Math.min(chunk.length, free - leaveBytes));
    }
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

