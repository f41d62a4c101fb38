/**
 * Updates without reflashing (firmware-images/device/update.ts): real bundles made with tar and
 * sha256, unpacked side by side, switched, kept or rolled back. The "leaf" is the release's own
 * canopy.mjs run as a real process by the health check: a release whose script fails is unhealthy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { devicePaths, type DevicePaths } from '../../firmware-images/device/paths.ts';
import { activeRelease, applyUpdate, bootUpdate, installBundle, readUpdateState, switchRelease, UPDATE_BUNDLE_BYTES_MAX, UpdateError, type UpdateDeps } from '../../firmware-images/device/update.ts';

type World = { root: string; paths: DevicePaths; deps: UpdateDeps; restarts: string[]; lines: string[] };

function world(t: { after(fn: () => void): void }): World {
  const root = mkdtempSync(join(tmpdir(), 'canopy-update-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const paths = devicePaths(root);
  mkdirSync(paths.canopyData, { recursive: true });
  // The factory release on the (read-only) root.
  mkdirSync(join(root, 'opt/canopy/releases/0.1.0'), { recursive: true });
  writeFileSync(join(root, 'opt/canopy/releases/0.1.0/canopy.mjs'), "console.log('healthy')\n");
  const restarts: string[] = [];
  const lines: string[] = [];
  const running = (): string => activeRelease(paths) ?? join(root, 'opt/canopy/releases/0.1.0');
  const deps: UpdateDeps = {
    async restartLeaf() {
      restarts.push(basename(running()));
    },
    async healthCheck() {
      const run = spawnSync(process.execPath, [join(running(), 'canopy.mjs')], { encoding: 'utf8' });
      return run.status === 0 && run.stdout.trim() === 'healthy' ? { ok: true } : { ok: false, reason: `exit ${run.status}: ${run.stderr.match(/Error: .*/)?.[0] ?? run.stderr.trim()}` };
    },
    print: (line) => lines.push(line),
  };
  return { root, paths, deps, restarts, lines };
}

/** canopy-leaf-<v>-arm64-release.tar.gz (one <v>/ directory) and its .sha256, as build.sh makes them. */
function bundle(w: World, version: string, script: string, where = join(w.root, 'incoming')): string {
  const src = mkdtempSync(join(w.root, 'src-'));
  mkdirSync(join(src, version));
  writeFileSync(join(src, version, 'canopy.mjs'), script);
  writeFileSync(join(src, version, 'package.json'), JSON.stringify({ name: 'canopy-leaf', version, type: 'module' }));
  mkdirSync(where, { recursive: true });
  const file = join(where, `canopy-leaf-${version}-arm64-release.tar.gz`);
  assert.equal(spawnSync('tar', ['-czf', file, '-C', src, version]).status, 0);
  writeFileSync(`${file}.sha256`, `${createHash('sha256').update(readFileSync(file)).digest('hex')}  ${basename(file)}\n`);
  return file;
}

const HEALTHY = "console.log('healthy')\n";
const BROKEN = "throw new Error('cannot open the store')\n";

test('a healthy release is installed side by side, switched to, and kept; the one before stays for a rollback', async (t) => {
  const w = world(t);
  const first = await applyUpdate(bundle(w, '0.2.0', HEALTHY), w.paths, w.deps);
  assert.deepEqual(first, { outcome: 'committed', version: '0.2.0' });
  assert.equal(activeRelease(w.paths), join(w.paths.releases, '0.2.0'));
  assert.equal(readUpdateState(w.paths)?.state, 'committed');
  assert.deepEqual(w.restarts, ['0.2.0']);

  await applyUpdate(bundle(w, '0.3.0', HEALTHY), w.paths, w.deps);
  await applyUpdate(bundle(w, '0.4.0', HEALTHY), w.paths, w.deps);
  assert.equal(activeRelease(w.paths), join(w.paths.releases, '0.4.0'));
  assert.deepEqual(readdirSync(w.paths.releases).sort(), ['0.3.0', '0.4.0'], 'the active release and the one before it');
});

test('a release that fails its health check is rolled back to the previous one (or the factory release), and says why', async (t) => {
  const w = world(t);
  const broken = await applyUpdate(bundle(w, '0.2.0', BROKEN), w.paths, w.deps);
  assert.equal(broken.outcome, 'rolled-back');
  assert.match(broken.reason!, /cannot open the store/);
  assert.equal(activeRelease(w.paths), undefined, 'back on the factory release');
  assert.deepEqual(w.restarts, ['0.2.0', '0.1.0'], 'restarted on the new release, then on the factory one');
  assert.equal(readUpdateState(w.paths)?.state, 'rolled-back');

  await applyUpdate(bundle(w, '0.3.0', HEALTHY), w.paths, w.deps);
  const again = await applyUpdate(bundle(w, '0.4.0', BROKEN), w.paths, w.deps);
  assert.equal(again.outcome, 'rolled-back');
  assert.equal(activeRelease(w.paths), join(w.paths.releases, '0.3.0'));
  assert.ok(w.lines.some((l) => /0\.4\.0 failed its health check .*rolled back to 0\.3\.0/.test(l)), w.lines.join('\n'));
});

test('a bundle that does not match its checksum, has none, or is not a release is refused and nothing is switched', async (t) => {
  const w = world(t);
  await applyUpdate(bundle(w, '0.2.0', HEALTHY), w.paths, w.deps);
  const refused = async (file: string, why: RegExp): Promise<void> => {
    await assert.rejects(applyUpdate(file, w.paths, w.deps), (err: unknown) => err instanceof UpdateError && why.test(err.message));
    assert.equal(activeRelease(w.paths), join(w.paths.releases, '0.2.0'));
  };
  const tampered = bundle(w, '0.3.0', HEALTHY);
  writeFileSync(tampered, Buffer.concat([readFileSync(tampered), Buffer.from([0])]));
  await refused(tampered, /does not match its checksum/);
  const unsigned = bundle(w, '0.3.1', HEALTHY);
  rmSync(`${unsigned}.sha256`);
  await refused(unsigned, /\.sha256 is missing/);
  const garbage = join(w.root, 'incoming', 'canopy-leaf-9-arm64-release.tar.gz');
  writeFileSync(garbage, 'not a tarball');
  writeFileSync(`${garbage}.sha256`, createHash('sha256').update('not a tarball').digest('hex'));
  await refused(garbage, /not a readable tar\.gz/);
  await refused(bundle(w, '0.2.0', HEALTHY), /already the active one/);
  await refused(join(w.root, 'nothing.tar.gz'), /does not exist/);
  assert.ok(UPDATE_BUNDLE_BYTES_MAX >= 64 * 1024 * 1024);
  assert.ok(!readdirSync(w.paths.releases).some((n) => n.startsWith('.incoming')), 'no unpacking leftovers');
});

test('a power cut while the new release is on trial: the next boot finishes the check (keep or roll back)', async (t) => {
  const w = world(t);
  const file = bundle(w, '0.2.0', BROKEN);
  const { dir } = await installBundle(file, w.paths);
  // What applyUpdate does up to the restart, then the power goes.
  writeFileSync(w.paths.updateState, JSON.stringify({ state: 'trying', version: '0.2.0', since: new Date().toISOString() }));
  switchRelease(w.paths, dir);
  assert.equal(await bootUpdate(w.paths, w.deps), undefined, 'no bundle on the boot partition');
  assert.equal(activeRelease(w.paths), undefined, 'rolled back at boot');
  assert.equal(readUpdateState(w.paths)?.state, 'rolled-back');
});

test('at boot, the newest bundle on the boot partition is installed and deleted; a failed one is renamed, not retried', async (t) => {
  const w = world(t);
  bundle(w, '0.2.0', HEALTHY, w.paths.bootUpdates);
  bundle(w, '0.3.0', HEALTHY, w.paths.bootUpdates);
  const result = await bootUpdate(w.paths, w.deps);
  assert.equal(result?.version, '0.3.0');
  assert.deepEqual(readdirSync(w.paths.bootUpdates), [], 'installed bundles are removed from the card');

  bundle(w, '0.4.0', BROKEN, w.paths.bootUpdates);
  assert.equal((await bootUpdate(w.paths, w.deps))?.outcome, 'rolled-back');
  assert.deepEqual(readdirSync(w.paths.bootUpdates).sort(), ['canopy-leaf-0.4.0-arm64-release.tar.gz.failed', 'canopy-leaf-0.4.0-arm64-release.tar.gz.sha256']);
  assert.equal(await bootUpdate(w.paths, w.deps), undefined, 'not retried');
  assert.equal(activeRelease(w.paths), join(w.paths.releases, '0.3.0'));
});
