#!/usr/bin/env bash
# demo.sh: what o2go does, on this machine, with an image file.
# `make demo` runs it after building bin/o2go. It grows with the project:
# today it formats a volume, inspects it like an operator would, mounts it
# read-write through FUSE, uses it, and proves the real OCFS2 tools accept
# every byte o2go wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
O2GO=${O2GO:-$PWD/bin/o2go}
work=$(mktemp -d /var/tmp/o2go-demo.XXXXXX)
mnt=$work/mnt
img=$work/volume.img
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && "$O2GO" umount "$mnt" || true
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Format a 2 GiB image as OCFS2 (o2go mkfs, mkfs.ocfs2's flags and defaults)"
truncate -s 2G "$img"
run "$O2GO" mkfs -F -L demo-volume -N 4 --fs-features=local "$img"

step "Find it the way operators find shared disks (mounted.ocfs2)"
run "$O2GO" mounted "$img"

step "What is on it (debugfs.ocfs2's commands: stats, the system directory, the slot map)"
run "$O2GO" debug -R "stats" "$img" | head -25
run "$O2GO" debug -R "ls -l //" "$img"
run "$O2GO" info --fs-features "$img"

step "Mount it read-write through FUSE and use it like any local file system"
mkdir -p "$mnt"
run "$O2GO" mount -o commit=5 "$img" "$mnt"
run mkdir -p "$mnt/projects/o2go"
echo "hello from o2go" > "$mnt/projects/o2go/README"
run dd if=/dev/urandom of="$mnt/projects/o2go/data.bin" bs=1M count=64 status=none
run ln -s o2go/README "$mnt/projects/readme-link"
run setfattr -n user.owner -v demo "$mnt/projects/o2go/README"
run fallocate -l 16M "$mnt/projects/prealloc"
for i in $(seq 1 2000); do : > "$mnt/projects/o2go/file-$i"; done
run ls -l "$mnt/projects"
run df -h "$mnt"
sum=$(sha256sum < "$mnt/projects/o2go/data.bin")
run "$O2GO" umount "$mnt"

step "The real ocfs2-tools accept what o2go wrote"
run fsck.ocfs2 -fn "$img"
run debugfs.ocfs2 -R "ls -l /projects/o2go" "$img" | head -5
debugfs.ocfs2 -R "dump /projects/o2go/data.bin $work/data.bin" "$img"
echo "sha256 through o2go:          $sum"
echo "sha256 through debugfs.ocfs2: $(sha256sum < "$work/data.bin")"
step "Done: a volume o2go formatted and wrote, clean for fsck.ocfs2 and byte-identical for debugfs.ocfs2"
