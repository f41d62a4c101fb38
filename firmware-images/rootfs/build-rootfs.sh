#!/bin/bash
# Builds the Debian arm64 root filesystem of the image as a tarball, cached under
# firmware-images/cache/ and keyed by the package list and this script: a warm build reuses it and
# only redoes the canopy layer (build.sh). Runs as root with binfmt qemu-user (FIRMWARE.md).
# Usage: build-rootfs.sh <output tarball>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
cache="$here/../cache"
mkdir -p "$cache/apt-archives"
packages="$(grep -v '^#' "$here/packages.txt" | grep -v '^$' | paste -sd, -)"

# The short initramfs module list and zstd (FIRMWARE.md: mkinitramfs 17 min -> 1 min under
# qemu-user), written before the kernel package is unpacked; /etc/fstab before the initramfs is
# generated, and FSTYPE=ext4 because the fsck hook cannot probe the root device in a chroot:
# then e2fsck is in the initramfs.
essential_hook='set -e
mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/default"
printf "MODULES=list\nCOMPRESS=zstd\nFSTYPE=ext4\n" > "$1/etc/initramfs-tools/conf.d/canopy.conf"
printf "ext4\nsdhci-iproc\nbcm2835\nreset-raspberrypi\nxhci-pci\nusb-storage\nuas\nvirtio_mmio\nvirtio_pci\nvirtio_blk\nmmc_block\nsdhci_iproc\nbcm2835-mmc\nbcm2835-sdhost\n" > "$1/etc/initramfs-tools/modules"
cat "'"$here"'/fstab" > "$1/etc/fstab"
printf "ROOTPART=LABEL=canopy-root\nCONSOLES=\"ttyS1,115200 tty0\"\n" > "$1/etc/default/raspi-firmware"
printf "ro fsck.repair=yes\n" > "$1/etc/default/raspi-extra-cmdline"
'

# After the packages: fill /boot/firmware with the raspi-firmware kernel hook (it wants a
# mount point there; a bind mount of the directory on itself is one, no vfat needed).
customize_hook='set -e
kver=$(ls "$1/lib/modules" | sort -V | tail -1)
mount --bind "$1/boot/firmware" "$1/boot/firmware"
chroot "$1" /etc/kernel/postinst.d/z50-raspi-firmware "$kver" "/boot/vmlinuz-$kver" || { umount "$1/boot/firmware"; exit 1; }
umount "$1/boot/firmware"
ls "$1/boot/firmware" | head -50
rm -f "$1/etc/ssh/ssh_host_"*
: > "$1/etc/machine-id"
rm -f "$1/var/lib/dbus/machine-id"
rm -rf "$1/var/lib/apt/lists/"* "$1/usr/share/doc/"* "$1/usr/share/man/"* "$1/usr/share/locale/"*
'

mkdir -p "$(dirname "$out")"
mmdebstrap --mode=root --arch=arm64 --variant=apt \
  --components=main,non-free-firmware \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='force-confdef' --dpkgopt='force-confold' \
  --skip=cleanup/apt/cache \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
  --setup-hook='sync-in "'"$cache"'/apt-archives" /var/cache/apt/archives' \
  --essential-hook="$essential_hook" \
  --customize-hook="$customize_hook" \
  --customize-hook='sync-out /var/cache/apt/archives "'"$cache"'/apt-archives"' \
  --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
  bookworm "$out.tmp.tar" http://deb.debian.org/debian
mv "$out.tmp.tar" "$out"
