/**
 * `npm run firmware:test`: boots the built image (firmware-images/out/canopy-leaf-<v>-arm64.img,
 * from `npm run firmware:build`) under qemu-system-aarch64 -M virt with the image's own kernel,
 * initrd and cmdline.txt (console moved to the virt machine's ttyAMA0), a `canopy hub` on the
 * host (the guest reaches it at 10.0.2.2), and the guest's NATS and monitoring ports forwarded
 * to host loopback ports. Checks, with the official NATS clients from the host:
 *
 *   (a) the leaf comes up and serves NATS and /healthz;
 *   (b) a stream published on the leaf syncs to the hub;
 *   (c) after a hard power-off (SIGKILL of QEMU) and a reboot, every acknowledged message is
 *       on the leaf and on the hub;
 *   (d) a broken canopy.conf is reported (serial console, /leafz) and the leaf keeps serving
 *       with what is valid; the imported token is gone from the boot partition;
 *   (e) an update: the build's release bundle, repacked as another version, put in
 *       canopy-update/ on the boot partition, is installed, switched to, passes its health
 *       check and stays; the leaf serves every message after it.
 *
 * Prints the boot-to-serving time of each boot and the leaf's idle RSS (/varz mem). Works on a
 * copy of the image (grown by 1 GiB so that first boot grows the data partition), never on the
 * build output. Environment: CANOPY_FIRMWARE_IMAGE (another image), CANOPY_QEMU_BOOT_TIMEOUT_MS
 * (default 600000, TCG on a busy 2-core host is slow), KEEP=1 keeps the work directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startCanopyServer, type CanopyServer } from '../test/helpers/canopy-server.ts';
import { eventually } from '../test/helpers/eventually.ts';
import { freePort } from '../test/helpers/processes.ts';

const here = new URL('.', import.meta.url).pathname;
const version = (JSON.parse(readFileSync(join(here, '../package.json'), 'utf8')) as { version: string }).version;
const image = process.env['CANOPY_FIRMWARE_IMAGE'] ?? join(here, `out/canopy-leaf-${version}-arm64.img`);
const BOOT_TIMEOUT_MS = Number(process.env['CANOPY_QEMU_BOOT_TIMEOUT_MS'] ?? 600_000);
const SYNC_TIMEOUT_MS = 180_000;
const LEAF = 'qemu-gw';
const TOKEN = 'qemu-test-token-7f3a';
const GUEST_NATS = 4222;
const GUEST_HTTP = 8222;

const t0 = Date.now();
const say = (line: string): void => console.log(`[firmware:test +${((Date.now() - t0) / 1000).toFixed(0)}s] ${line}`);

type Partition = { start: number; size: number };

function partitions(img: string): Partition[] {
  const out = spawnSync('sfdisk', ['-J', img], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return (JSON.parse(out.stdout) as { partitiontable: { partitions: Partition[] } }).partitiontable.partitions;
}

/** mtools on the image's FAT partition (no mounts: FIRMWARE.md). */
function mtools(tool: string, img: string, offset: number, ...args: string[]): string {
  const out = spawnSync(tool, ['-i', `${img}@@${offset}`, ...args], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  assert.equal(out.status, 0, `${tool} ${args.join(' ')}: ${out.stderr}`);
  return out.stdout;
}

class Guest {
  private child: ChildProcess | undefined;
  private bootStarted = 0;
  readonly bootTimes: number[] = [];
  constructor(
    private readonly work: string,
    private readonly img: string,
    private readonly bootOffset: number,
    readonly natsPort: number,
    readonly httpPort: number,
  ) {}

  get serial(): string {
    return existsSync(join(this.work, 'serial.log')) ? readFileSync(join(this.work, 'serial.log'), 'utf8') : '';
  }

  start(): void {
    const names = mtools('mdir', this.img, this.bootOffset, '-b', '::').split('\n').map((l) => l.replace(/^::\//, '').trim());
    const kernel = names.find((n) => /^vmlinuz-/.test(n));
    const initrd = names.find((n) => /^initrd\.img-/.test(n));
    assert.ok(kernel !== undefined && initrd !== undefined, `no kernel/initrd on the boot partition: ${names.join(' ')}`);
    mtools('mcopy', this.img, this.bootOffset, '-o', `::${kernel}`, join(this.work, 'vmlinuz'));
    mtools('mcopy', this.img, this.bootOffset, '-o', `::${initrd}`, join(this.work, 'initrd'));
    const cmdline = mtools('mtype', this.img, this.bootOffset, '::cmdline.txt').trim().split(/\s+/).filter((w) => !w.startsWith('console='));
    const fd = openSync(join(this.work, 'qemu.log'), 'a');
    this.child = spawn(
      'qemu-system-aarch64',
      [
        '-M', 'virt', '-cpu', 'cortex-a72', '-smp', '2', '-m', '1024',
        '-kernel', join(this.work, 'vmlinuz'), '-initrd', join(this.work, 'initrd'),
        '-append', [...cmdline, 'console=ttyAMA0'].join(' '),
        '-drive', `if=none,file=${this.img},format=raw,id=hd0,cache=writeback`, '-device', 'virtio-blk-pci,drive=hd0',
        '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${this.natsPort}-:${GUEST_NATS},hostfwd=tcp:127.0.0.1:${this.httpPort}-:${GUEST_HTTP}`,
        '-device', 'virtio-net-pci,netdev=n0',
        '-display', 'none', '-monitor', 'none', '-chardev', `file,id=s0,path=${join(this.work, 'serial.log')},append=on`, '-serial', 'chardev:s0',
      ],
      { stdio: ['ignore', fd, fd] },
    );
    this.bootStarted = Date.now();
  }

  /** Waits for /healthz through the forwarded port; records the boot-to-serving time. */
  async waitServing(): Promise<number> {
    const started = this.bootStarted;
    await eventually(
      async () => {
        assert.ok(this.child?.exitCode === null, `QEMU exited: ${readFileSync(join(this.work, 'qemu.log'), 'utf8')}`);
        const response = await fetch(`http://127.0.0.1:${this.httpPort}/healthz`, { signal: AbortSignal.timeout(3000) });
        assert.equal(response.status, 200);
      },
      { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 1000 },
    );
    const ms = Date.now() - started;
    this.bootTimes.push(ms);
    return ms;
  }

  /** A hard power-off: SIGKILL of QEMU, nothing flushed by the guest. */
  async powerOff(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

async function publishAcked(nc: NatsConnection, from: number, count: number): Promise<number[]> {
  const js = jetstream(nc);
  const acked: number[] = [];
  for (let i = from; i < from + count; i++) {
    const ack = await js.publish(`orders.${i % 7}`, `order-${i}`);
    acked.push(ack.seq);
  }
  return acked;
}

/** Every payload of stream `name` on `nc`, by sequence, read with an ordered consumer. */
async function payloads(nc: NatsConnection, name: string): Promise<Map<number, string>> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(name);
  const info = await (await jetstreamManager(nc)).streams.info(name);
  const seen = new Map<number, string>();
  if (info.state.messages === 0) return seen;
  const messages = await consumer.consume();
  for await (const m of messages) {
    seen.set(m.seq, m.string());
    if (m.seq >= info.state.last_seq) break;
  }
  return seen;
}

/** The build's release bundle unpacked, its version changed to `newVersion`, packed again with its .sha256. */
function repackBundle(work: string, newVersion: string): string {
  const built = join(here, `out/canopy-leaf-${version}-arm64-release.tar.gz`);
  assert.ok(existsSync(built), `${built} is missing: run npm run firmware:build first`);
  const dir = mkdtempSync(join(work, 'bundle-'));
  assert.equal(spawnSync('tar', ['-xzf', built, '-C', dir]).status, 0);
  renameSync(join(dir, version), join(dir, newVersion));
  const pkg = join(dir, newVersion, 'package.json');
  writeFileSync(pkg, JSON.stringify({ ...(JSON.parse(readFileSync(pkg, 'utf8')) as object), version: newVersion }));
  const file = join(work, `canopy-leaf-${newVersion}-arm64-release.tar.gz`);
  assert.equal(spawnSync('tar', ['-czf', file, '-C', dir, newVersion]).status, 0);
  writeFileSync(`${file}.sha256`, `${createHash('sha256').update(readFileSync(file)).digest('hex')}  canopy-leaf-${newVersion}-arm64-release.tar.gz\n`);
  return file;
}

/** The host tools this test runs (idempotent: apt only when one is missing). */
function ensureHostPackages(): void {
  const missing = ['qemu-system-arm', 'mtools', 'fdisk'].filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return;
  say(`installing ${missing.join(' ')}`);
  assert.equal(spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' }).status, 0);
  assert.equal(spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status, 0);
}

async function main(): Promise<void> {
  ensureHostPackages();
  assert.ok(existsSync(image), `${image} is missing: run npm run firmware:build first`);
  const work = mkdtempSync(join(tmpdir(), 'canopy-firmware-test-'));
  say(`work dir ${work}`);
  const img = join(work, 'disk.img');
  copyFileSync(image, img);
  truncateSync(img, statSync(img).size + 1024 ** 3); // a bigger "card": first boot grows the data partition
  const [boot, , data] = partitions(img);
  assert.ok(boot !== undefined && data !== undefined, 'the image has no boot/data partitions');
  const bootOffset = boot.start * 512;

  const linkPort = await freePort();
  const hubDir = mkdtempSync(join(work, 'hub-'));
  const hub: CanopyServer = await startCanopyServer(await freePort(), hubDir, {
    command: 'hub',
    extraArgs: ['--leaf_port', String(linkPort), '--leaf_host', '127.0.0.1', '--leaf_tokens', `${LEAF}=${TOKEN}`],
  });
  say(`hub on 127.0.0.1:${hub.port}, leaves at ws://10.0.2.2:${linkPort}`);
  const conf = [
    '# written by firmware:test',
    `leaf_name = ${LEAF}`,
    `hub = ws://10.0.2.2:${linkPort}`,
    `hub_token = ${TOKEN}`,
    'http_host = 0.0.0.0',
    `port = ${GUEST_NATS}`,
    `http_port = ${GUEST_HTTP}`,
    '',
  ].join('\n');
  writeFileSync(join(work, 'canopy.conf'), conf);
  mtools('mcopy', img, bootOffset, '-o', join(work, 'canopy.conf'), '::canopy.conf');

  const guest = new Guest(work, img, bootOffset, await freePort(), await freePort());
  const hubNc = await connect({ servers: hub.server });
  let leafNc: NatsConnection | undefined;
  const results: string[] = [];
  try {
    // (a) first boot
    guest.start();
    say('booting (first boot: setup, SSH host key, data partition growth)');
    let ms = await guest.waitServing();
    say(`(a) /healthz answers after ${(ms / 1000).toFixed(1)} s (boot to serving, first boot)`);
    leafNc = await connect({ servers: `127.0.0.1:${guest.natsPort}`, reconnect: false });
    const jsm = await jetstreamManager(leafNc);
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    results.push(`(a) ok: NATS and /healthz served through forwarded ports; first boot to serving ${(ms / 1000).toFixed(1)} s`);

    // (b) sync to the hub
    const first = await publishAcked(leafNc, 0, 200);
    const hubJsm = await jetstreamManager(hubNc);
    await eventually(async () => assert.equal((await hubJsm.streams.info('ORDERS')).state.messages, first.length), { timeoutMs: SYNC_TIMEOUT_MS, intervalMs: 1000 });
    const onHub = await payloads(hubNc, 'ORDERS');
    assert.deepEqual([...onHub.values()].sort(), first.map((_, i) => `order-${i}`).sort());
    say(`(b) ${first.length} acknowledged messages on the hub`);
    results.push(`(b) ok: ${first.length} messages published on the leaf are on the hub`);
    const varz = (await (await fetch(`http://127.0.0.1:${guest.httpPort}/varz`)).json()) as { mem: number };
    const rssMb = varz.mem / 1024 / 1024;
    say(`idle leaf RSS in the guest: ${rssMb.toFixed(1)} MB (/varz mem)`);
    results.push(`idle leaf RSS (guest, /varz mem): ${rssMb.toFixed(1)} MB`);

    // (c) hard power-off right after acknowledged publishes, then reboot
    const second = await publishAcked(leafNc, 200, 300);
    await leafNc.close().catch(() => undefined);
    leafNc = undefined;
    await guest.powerOff();
    say(`(c) QEMU killed right after ${second.length} more acknowledged messages (last seq ${second.at(-1)})`);
    guest.start();
    ms = await guest.waitServing();
    say(`(c) rebooted; serving after ${(ms / 1000).toFixed(1)} s`);
    leafNc = await connect({ servers: `127.0.0.1:${guest.natsPort}`, reconnect: false });
    const total = first.length + second.length;
    const onLeaf = await payloads(leafNc, 'ORDERS');
    for (let i = 0; i < total; i++) assert.equal(onLeaf.get(i + 1), `order-${i}`, `leaf lost acknowledged message seq ${i + 1}`);
    await eventually(async () => assert.equal((await hubJsm.streams.info('ORDERS')).state.messages, total), { timeoutMs: SYNC_TIMEOUT_MS, intervalMs: 1000 });
    const hubAfter = await payloads(hubNc, 'ORDERS');
    assert.deepEqual([...hubAfter.values()].sort(), Array.from({ length: total }, (_, i) => `order-${i}`).sort());
    results.push(`(c) ok: after a hard power-off and reboot all ${total} acknowledged messages are on the leaf and on the hub; reboot to serving ${(ms / 1000).toFixed(1)} s`);

    // (d) a broken canopy.conf
    await leafNc.close().catch(() => undefined);
    leafNc = undefined;
    await guest.powerOff();
    const scrubbed = mtools('mtype', img, bootOffset, '::canopy.conf');
    assert.ok(!scrubbed.includes(TOKEN), `the token is still on the boot partition:\n${scrubbed}`);
    assert.match(scrubbed, /^hub_token = <imported>$/m);
    say('(d) the imported token is gone from the boot partition; writing a broken canopy.conf');
    const broken = `${scrubbed.replace(/\r?\n$/, '')}\nport = 99999\nthis line is not a setting\nwifi_psk = short\n`;
    writeFileSync(join(work, 'canopy.conf'), broken);
    mtools('mcopy', img, bootOffset, '-o', join(work, 'canopy.conf'), '::canopy.conf');
    guest.start();
    ms = await guest.waitServing();
    leafNc = await connect({ servers: `127.0.0.1:${guest.natsPort}`, reconnect: false });
    const leafz = (await (await fetch(`http://127.0.0.1:${guest.httpPort}/leafz`)).json()) as { config_problems?: string[]; link?: { state?: string } };
    const problems = leafz.config_problems ?? [];
    assert.ok(problems.some((p) => /port must be a port number.*99999.*keeping the value imported before/.test(p)), JSON.stringify(problems));
    assert.ok(problems.some((p) => /line \d+: not "key = value"/.test(p)), JSON.stringify(problems));
    assert.ok(problems.some((p) => /wifi_psk must be 8 to 63/.test(p)), JSON.stringify(problems));
    assert.match(guest.serial, /canopy-setup: canopy\.conf line \d+: port must be a port number/);
    const third = await publishAcked(leafNc, total, 20);
    await eventually(async () => assert.equal((await hubJsm.streams.info('ORDERS')).state.messages, total + third.length), { timeoutMs: SYNC_TIMEOUT_MS, intervalMs: 1000 });
    say(`(d) problems reported: ${problems.length}; the leaf still serves and syncs (token kept from the data partition)`);
    results.push(`(d) ok: a broken canopy.conf is reported on the serial console and /leafz (${problems.length} problems), the leaf keeps serving on port ${GUEST_NATS} and syncing; boot to serving ${(ms / 1000).toFixed(1)} s`);
    assert.match(guest.serial, /data partition .* grown to fill the card/);
    results.push('data partition grown to fill the (1 GiB larger) card on first boot');

    // (e) an update from the boot partition
    await leafNc.close().catch(() => undefined);
    leafNc = undefined;
    await guest.powerOff();
    const updateVersion = `${version}-firmware-test`;
    const bundle = repackBundle(work, updateVersion);
    mtools('mmd', img, bootOffset, '::canopy-update');
    for (const file of [bundle, `${bundle}.sha256`]) mtools('mcopy', img, bootOffset, '-o', file, `::canopy-update/${file.split('/').at(-1)}`);
    guest.start();
    ms = await guest.waitServing();
    await eventually(() => assert.match(guest.serial, new RegExp(`canopy-update: ${updateVersion} is healthy and stays`)), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 2000 });
    await eventually(async () => assert.equal((await fetch(`http://127.0.0.1:${guest.httpPort}/healthz`)).status, 200), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 1000 });
    leafNc = await connect({ servers: `127.0.0.1:${guest.natsPort}`, reconnect: false });
    assert.equal((await (await jetstreamManager(leafNc)).streams.info('ORDERS')).state.messages, total + third.length);
    const left = mtools('mdir', img, bootOffset, '-b', '::canopy-update');
    assert.ok(!left.includes('release.tar.gz'), `the installed bundle is still on the boot partition: ${left}`);
    say(`(e) update to ${updateVersion} installed from the boot partition, healthy, kept`);
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    const idle = (await (await fetch(`http://127.0.0.1:${guest.httpPort}/varz`)).json()) as { mem: number };
    say(`idle leaf RSS after 30 s without traffic: ${(idle.mem / 1024 / 1024).toFixed(1)} MB`);
    results.push(`idle leaf RSS (guest, /varz mem) after 30 s without traffic, on the updated release: ${(idle.mem / 1024 / 1024).toFixed(1)} MB`);
    results.push(`(e) ok: a release bundle on the boot partition was installed side by side, switched to, passed its health check and stays; all ${total + third.length} messages served after it`);
  } catch (err) {
    console.log('--- serial console (tail) ---');
    console.log(guest.serial.split('\n').slice(-80).join('\n'));
    throw err;
  } finally {
    await leafNc?.close().catch(() => undefined);
    await hubNc.close().catch(() => undefined);
    await guest.powerOff();
    await hub.kill();
    if (process.env['KEEP'] !== '1') rmSync(work, { recursive: true, force: true });
  }
  console.log('\nfirmware:test results');
  for (const line of results) console.log(`  ${line}`);
  console.log(`  boot to serving: ${guest.bootTimes.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')} (first boot, after power-off, with a broken config, with an update)`);
  console.log(`  total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('firmware:test FAILED:', err);
    process.exit(1);
  },
);
