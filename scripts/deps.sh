#!/usr/bin/env bash
# deps.sh: install what o2go's demo and tests need on Debian 12, only what
# is missing. Safe to run again and again; `make demo` and `make test` call it.
#
#   ocfs2-tools + kmod   the real mkfs/fsck/debugfs/tunefs (the oracle); without
#                        kmod's modprobe they fork-loop and misbehave
#   fuse3                fusermount3 and /etc/fuse.conf for the FUSE mount
#   qemu-system-x86, busybox-static, linux-image-amd64
#                        the real kernel OCFS2 driver in a VM (second oracle)
#   iproute2             network namespaces for cluster tests
#   stress-ng, fio       file-system stressors and benchmarks
#   attr                 setfattr/getfattr, copied into the kernel VM
#   gcc, libc6-dev       cgo, which the race detector (go test -race) needs
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have_cmd mkfs.ocfs2 || need+=(ocfs2-tools)
have_cmd modprobe || need+=(kmod)
have_cmd fusermount3 || need+=(fuse3)
have_cmd qemu-system-x86_64 || need+=(qemu-system-x86)
have_pkg busybox-static || need+=(busybox-static)
ls /lib/modules/*/kernel/fs/ocfs2/ocfs2.ko* >/dev/null 2>&1 && ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
have_cmd ip || need+=(iproute2)
have_cmd stress-ng || need+=(stress-ng)
have_cmd fio || need+=(fio)
have_cmd setfattr || need+=(attr)
have_cmd losetup || need+=(mount)
have_cmd gcc || need+=(gcc)
have_pkg libc6-dev || need+=(libc6-dev)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${need[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
	if have_cmd sudo; then sudo="sudo -n"; else
		echo "deps: need root (or sudo) to install: ${need[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
