#!/usr/bin/env bash
# demo.sh: what o2go does, shown as an operator would run it, on this machine.
# `make demo` runs it (as root) after building bin/o2go.
#
# Three cluster nodes on one machine (agents on 127.0.0.1-3) share one image
# file as their shared disk: format it clustered, describe the cluster with
# o2cb's commands, start the nodes, mount the volume on all three at once,
# show that they see each other's writes and append to one file together,
# look into the lock manager, kill -9 a node that has fsynced data and watch
# a survivor replay its journal, bring the node back, unmount, and let the
# real ocfs2-tools judge the volume o2go wrote.
#
# Every step that breaks stops the demo (set -e, checks that say what they
# expected); every wait is bounded; on any exit the agents are killed and
# every mount is lazily unmounted. O2GO_DEMO_KEEP=1 keeps the work directory
# (image, logs) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
O2GO=${O2GO:-$PWD/bin/o2go}
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (FUSE mounts with allow_other, umount)" >&2; exit 1; }
[ -x "$O2GO" ] || { echo "demo.sh: no o2go binary at $O2GO (make build)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/o2go-demo.XXXXXX)
img=$work/volume.img
declare -A agent_pid=()
watchdog_pid=
holder=
writers=()
started=$SECONDS

# The transcript says `o2go`, whatever O2GO points to.
mkdir "$work/bin"
ln -s "$(readlink -f "$O2GO")" "$work/bin/o2go"
export PATH=$work/bin:$PATH
cd "$work"

# detach_mounts aborts the FUSE connection of every mount below $work (a
# request stuck in one fails at once) and detaches it. It reads the mount
# table: a mount whose server died fails stat(2), mountpoint(1) misses it.
detach_mounts() {
	awk -v w="$work/" 'index($5, w) == 1 { split($3, d, ":"); print d[2], $5 }' /proc/self/mountinfo |
		while read -r conn m; do
			echo 1 >"/sys/fs/fuse/connections/$conn/abort" 2>/dev/null || true
			umount -l "$m" 2>/dev/null || true
		done
}
# running PID: the process exists and has not exited (a zombie has).
running() { [ -e "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -z "$watchdog_pid" ] || kill "$watchdog_pid" 2>/dev/null || true
	[ -z "$holder" ] || kill "$holder" 2>/dev/null || true
	if [ "$rc" != 0 ]; then
		# What the live nodes' lock managers hold: where a hang is found.
		for i in "${!agent_pid[@]}"; do
			running "${agent_pid[$i]}" || continue
			echo "--- node$i: o2go dlm locks" >&2
			timeout -k 1 5 o2go dlm locks --socket "$work/node$i.sock" 2>&1 >&2 || true
		done
	fi
	[ ${#writers[@]} = 0 ] || kill "${writers[@]}" 2>/dev/null || true
	detach_mounts
	{
		for i in "${!agent_pid[@]}"; do
			kill -9 "${agent_pid[$i]}" || true
		done
		for i in "${!agent_pid[@]}"; do
			for _ in $(seq 50); do ! running "${agent_pid[$i]}" && break; sleep 0.1; done
			running "${agent_pid[$i]}" || wait "${agent_pid[$i]}" || true
		done
	} 2>/dev/null
	if [ "$rc" != 0 ]; then
		printf '\n\033[1;31m== The demo FAILED (exit %s) after %ss\033[0m\n' "$rc" $((SECONDS - started)) >&2
		for l in "$work"/node*.log; do
			[ -f "$l" ] || continue
			echo "--- last lines of $(basename "$l"):" >&2
			tail -n 15 "$l" >&2
		done
	fi
	if [ "${O2GO_DEMO_KEEP:-}" = 1 ]; then
		echo "kept: $work" >&2
	else
		# Every mount is detached above: nothing below $work is a file system.
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The backstop against a hang the per-step timeouts miss (a read stuck in a
# FUSE request): after DEMO_TIMEOUT seconds kill the agents and abort the
# demo's FUSE connections, which fails whatever waits on them, then stop
# the demo (the cleanup above runs).
DEMO_TIMEOUT=${DEMO_TIMEOUT:-300}
watchdog() {
	set +e
	sleep "$DEMO_TIMEOUT" &
	local s=$! p
	trap 'kill $s 2>/dev/null; exit 0' TERM
	wait "$s"
	echo "demo.sh: still running after ${DEMO_TIMEOUT}s: killing the agents, aborting the mounts" >&2
	# The agents started since this process forked: their pid files, each
	# checked to be a process working in $work (not a recycled pid).
	for f in "$work"/node*.pid; do
		p=$(cat "$f" 2>/dev/null)
		[ -n "$p" ] && [ "$(readlink "/proc/$p/cwd")" = "$work" ] && kill -9 "$p" 2>/dev/null
	done
	detach_mounts
	kill -TERM $$
}
watchdog &
watchdog_pid=$!

step() { printf '\n\033[1m== %s\033[0m  [%ss]\n' "$*" $((SECONDS - started)); }
note() { printf '   %s\n' "$*"; }
ok() { printf '\033[32m   ok:\033[0m %s\n' "$*"; }
fail() {
	printf '\033[1;31m   FAILED: %s\033[0m\n' "$*" >&2
	exit 1
}
# run prints a command and runs it, killed if it takes over RUN_TIMEOUT
# seconds (a hung mount or agent must not hang the demo).
RUN_TIMEOUT=60
run() {
	show "$@"
	timeout -k 5 "$RUN_TIMEOUT" "$@"
}
# show prints a command line, quoting the arguments that need it.
show() {
	local line= a
	for a; do
		case $a in
		'' | *[[:space:]\'\"\$\*\?\|\&\;\<\>\(\)]*) a="\"${a//\"/\\\"}\"" ;;
		esac
		line+=" $a"
	done
	printf '$%s\n' "$line"
}
# runsh prints a shell command line as it is and runs it the same way.
runsh() {
	printf '$ %s\n' "$1"
	timeout -k 5 "$RUN_TIMEOUT" bash -c "$1"
}
# wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds, or fail.
# COMMAND bounds its own calls (see o2q).
wait_for() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not after ${limit}s"
		sleep 0.2
	done
}
now_ms() { date +%s%3N; }

cfg=(--config cluster.conf --sysconfig o2cb)
sock() { echo "node$1.sock"; }
# o2q: a query to an agent, bounded (a hung agent fails the wait, not the demo).
o2q() { timeout -k 2 10 o2go "$@"; }
# view_is N "1 2 3": node N's agent has committed the membership 1 2 3.
view_is() {
	local st
	st=$(o2q cluster "${cfg[@]}" status --socket "$(sock "$1")") && [[ $st == *"members [$2]"* ]]
}
# mount_slot N: the mount slot node N's agent holds ("-" for none).
mount_slot() {
	local st
	st=$(o2q cluster "${cfg[@]}" status --socket "$(sock "$1")") &&
		awk -v n="node$1*" '$1 == n { print $(NF-1) }' <<<"$st"
}
unmounted() { [ "$(mount_slot "$1")" = - ]; }
start_agent() {
	local i=$1
	printf '$ o2go agent %s --node node%s --socket %s --heartbeat volume.img >>node%s.log 2>&1 &\n' "${cfg[*]}" "$i" "$(sock "$i")" "$i"
	o2go agent "${cfg[@]}" --node "node$i" --socket "$(sock "$i")" --heartbeat "$img" >>"node$i.log" 2>&1 &
	agent_pid[$i]=$!
	echo "$!" >"node$i.pid"
}
# Reads of the mounts go through rd: bounded like every other wait.
rd() { timeout -k 5 60 cat "$@"; }
sha() { rd "$1" | sha256sum | cut -c1-64; }

# A port no one listens on, on any of the three addresses.
port=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 30000))
	if [ -z "$(ss -Hltn "( sport = :$p )")" ]; then port=$p && break; fi
done
[ -n "$port" ] || fail "no free TCP port"

step "Format a 1 GiB image as a clustered OCFS2 volume (o2go mkfs: mkfs.ocfs2's flags and layout)"
truncate -s 1G "$img"
run o2go mkfs -q -F -L demo-volume -b 4096 -C 4096 -N 4 --cluster-stack=o2cb --cluster-name=demo volume.img
run o2go mounted -d volume.img
run o2go info --fs-features volume.img

step "Describe the cluster with o2cb's commands (cluster.conf) and its timeouts (o2cb sysconfig)"
run o2go cluster --config cluster.conf add-cluster demo
for i in 1 2 3; do
	run o2go cluster --config cluster.conf add-node demo "node$i" --ip "127.0.0.$i" --port "$port" --number "$i"
done
run o2go cluster --config cluster.conf list-nodes demo
head -c 32 /dev/urandom | base64 >secret
chmod 600 secret
cat >o2cb <<EOF
O2CB_BOOTCLUSTER=demo
O2CB_HEARTBEAT_THRESHOLD=7
O2CB_IDLE_TIMEOUT_MS=5000
O2CB_KEEPALIVE_DELAY_MS=1000
O2CB_RECONNECT_DELAY_MS=2000
O2GO_HEARTBEAT_INTERVAL_MS=500
O2GO_FENCE_METHOD=exit
O2GO_CLUSTER_SECRET_FILE=$work/secret
EOF
note "o2cb: the sysconfig file; secret: 32 random bytes (base64, mode 600) that authenticate the nodes' messages"
run o2go cluster "${cfg[@]}" settings

step "Start the three nodes' cluster stacks (disk heartbeat on the volume, messaging, quorum, DLM)"
note "Each agent is one node; on real machines each runs on its own host with the default socket."
for i in 1 2 3; do start_agent "$i"; done
t0=$(now_ms)
for i in 1 2 3; do wait_for 30 "node $i seeing the cluster [1 2 3]" view_is "$i" "1 2 3"; done
ok "all three nodes agree on the membership [1 2 3] after $(($(now_ms) - t0)) ms"
run o2go cluster "${cfg[@]}" status --socket node1.sock

step "Mount the volume on all three nodes at once (each through its own node's agent)"
for i in 1 2 3; do
	mkdir "mnt$i"
	run o2go mount --socket "$(sock "$i")" volume.img "mnt$i"
done
show mount -t fuse.o2go
mount -t fuse.o2go | grep -F "$work/" # only the demo's mounts
run o2go debug -R slotmap volume.img
note "who uses the volume, as an operator finds out on any machine that sees the disk:"
note "o2go from the heartbeat area (sampled twice), mounted.ocfs2 from the slot map"
run o2go mounted -f --sample 1s --config cluster.conf volume.img
run mounted.ocfs2 -f volume.img

step "What one node writes, the others read at once (a read gets the last write, whichever node made it)"
runsh 'echo "written on node1 at $(date +%T.%N)" > mnt1/greeting'
run cat mnt2/greeting mnt3/greeting
[ "$(rd mnt2/greeting)" = "$(rd mnt1/greeting)" ] && [ "$(rd mnt3/greeting)" = "$(rd mnt1/greeting)" ] ||
	fail "node2 or node3 reads another greeting than node1 wrote"
run dd if=/dev/urandom of=mnt2/random.bin bs=1M count=32 status=none
run mkdir mnt3/reports
run mv mnt1/random.bin mnt1/reports/random.bin
want=$(sha mnt2/reports/random.bin)
for i in 1 2 3; do
	got=$(sha "mnt$i/reports/random.bin")
	note "sha256 of reports/random.bin on node$i: $got"
	[ "$got" = "$want" ] || fail "node$i reads another random.bin"
done
! timeout 10 test -e mnt2/random.bin || fail "node2 still sees random.bin where node1 renamed it away"
ok "written on node2, moved by node1 into the directory node3 made, the same bytes on all three"
run cp mnt1/greeting mnt1/scratch
run rm mnt3/scratch
! timeout 10 test -e mnt1/scratch || fail "node1 still sees scratch, which node3 removed"
ok "node3 removed a file node1 made: its inode went back to node1's slot allocator"

step "Three nodes append to one log file at the same time (O_APPEND across the cluster)"
per=300
note "each node appends $per lines, one open/append/close per line, all three at once"
t0=$(now_ms)
for i in 1 2 3; do
	timeout -k 5 120 bash -c 'for j in $(seq -w 1 '"$per"'); do echo "node'"$i"' line $j" >> mnt'"$i"'/shared.log; done' &
	writers+=($!)
done
for p in "${writers[@]}"; do wait "$p" || fail "an appending node failed or hung (exit $?)"; done
writers=()
note "$((3 * per)) appends from three nodes in $(($(now_ms) - t0)) ms"
run wc -l mnt1/shared.log mnt2/shared.log mnt3/shared.log
rd mnt1/shared.log >shared.node1
lines=$(wc -l <shared.node1)
distinct=$(sort -u shared.node1 | wc -l)
[ "$lines" = $((3 * per)) ] || fail "node1 reads $lines lines, $((3 * per)) were appended"
[ "$distinct" = "$lines" ] || fail "$distinct distinct lines of $lines: some were doubled"
for i in 1 2 3; do
	n=$(grep -c "^node$i line" shared.node1)
	[ "$n" = "$per" ] || fail "node$i's lines: $n, want $per"
	grep "^node$i line" shared.node1 | sort -c || fail "node$i's lines are out of order"
done
[ "$(sha mnt1/shared.log)" = "$(sha mnt2/shared.log)" ] && [ "$(sha mnt1/shared.log)" = "$(sha mnt3/shared.log)" ] ||
	fail "the nodes read different logs"
note "how the nodes took turns (first 12 lines):"
head -n 12 shared.node1 | sed 's/^/     /'
ok "$lines lines, all distinct, each node's in its own order, the same file on every node"

step "The lock manager (o2dlm's debugging views): the volume's lock domain and its locks"
sleep 600 <mnt2/shared.log & # node2 keeps the log open: its OPEN lock shows below
holder=$!
wait_for 10 "node2 opening shared.log" bash -c "[ \"\$(readlink /proc/$holder/fd/0)\" = $work/mnt2/shared.log ]"
run o2go dlm state --socket node1.sock
note "(Deadlocks: PR->EX conversions the master refused because another node, also holding PR,"
note " waits for EX: the refused node gives way and asks again. The volume lock serializes changes.)"
run o2go dlm locks --socket node2.sock
ino=$(timeout 10 stat -c %i mnt2/shared.log)
locks=$(o2q dlm locks --socket node2.sock)
domain=$(awk '$1 == "Domain:" { print $2; exit }' <<<"$locks")
openlock= owner=
for l in $(awk '$1 == "Lockres:" && $2 ~ /^O/ { print $2 }' <<<"$locks"); do
	if [ "$(o2go debug -d "$l" | awk '$1 == "Block:" { print $2 }')" = "$ino" ]; then openlock=$l; fi
done
[ -n "$openlock" ] || fail "node2 shows no OPEN lock on shared.log (inode $ino) while it has it open"
owner=$(awk -v l="$openlock" '$1 == "Lockres:" && $2 == l { print $4 }' <<<"$locks")
note "shared.log is inode $ino; its OPEN lock, decoded:"
run o2go debug -d "$openlock"
note "the lock's master, node$owner, shows who holds it (node2, PR, while it has the file open):"
run o2go dlm locks --socket "$(sock "$owner")" "$domain" "$openlock"
super=$(awk '$1 == "Lockres:" && $2 ~ /^S/ { print $2, $4; exit }' <<<"$locks")
[ -n "$super" ] || fail "node2 shows no volume (superblock) lock"
note "the volume lock, at its master node${super#* }: the nodes that read since the last change hold it PR"
run o2go dlm locks --socket "$(sock "${super#* }")" "$domain" "${super% *}"
kill "$holder" && wait "$holder" 2>/dev/null || true

step "kill -9 node3 right after it fsynced data (a node crash with the volume mounted)"
run dd if=/dev/urandom of=mnt3/durable.bin bs=1M count=16 conv=fsync status=none
runsh 'echo "node3: fsynced just before kill -9" >> mnt3/shared.log && sync mnt3/shared.log'
durable=$(sha mnt3/durable.bin)
note "sha256 of durable.bin on node3: $durable"
t0=$(now_ms)
note "node3's agent (the node's cluster stack and its mount) is process ${agent_pid[3]}"
show kill -9 "${agent_pid[3]}"
{ kill -9 "${agent_pid[3]}" && wait "${agent_pid[3]}"; } 2>/dev/null || true
unset 'agent_pid[3]'
run umount -l mnt3
note "node3's journal holds what it committed; its slot and locks are taken as held until a survivor recovers them"
for i in 1 2; do wait_for 30 "node $i declaring node3 dead" view_is "$i" "1 2"; done
ok "the survivors evicted node3 $(($(now_ms) - t0)) ms after the kill (dead time: 3 s)"
run o2go cluster "${cfg[@]}" status --socket node2.sock
wait_for 60 "a survivor recovering node3's slot" grep -q "recovered a dead node's slot" node1.log node2.log
run grep -h "recovered a dead node's slot" node1.log node2.log
for i in 1 2; do
	got=$(sha "mnt$i/durable.bin")
	note "sha256 of durable.bin on node$i: $got"
	[ "$got" = "$durable" ] || fail "node$i reads another durable.bin than node3 fsynced"
done
run tail -n 1 mnt1/shared.log
[ "$(rd mnt1/shared.log | tail -n 1)" = "node3: fsynced just before kill -9" ] || fail "node3's last fsynced line is lost"
runsh 'echo "node1: after node3 died" >> mnt1/shared.log'
runsh 'echo "node2: after node3 died" >> mnt2/shared.log'
ok "what node3 fsynced is there, and the survivors go on writing"

step "Bring node3 back: it rejoins the cluster and mounts again"
start_agent 3
t0=$(now_ms)
for i in 1 2 3; do wait_for 30 "node $i seeing node3 back [1 2 3]" view_is "$i" "1 2 3"; done
ok "membership [1 2 3] again after $(($(now_ms) - t0)) ms"
run o2go mount --socket node3.sock volume.img mnt3
run tail -n 3 mnt3/shared.log
n=$(rd mnt3/shared.log | wc -l)
[ "$n" = $((3 * per + 3)) ] || fail "node3 reads $n lines, want $((3 * per + 3))"
[ "$(sha mnt3/durable.bin)" = "$durable" ] || fail "node3 reads another durable.bin after its return"
ok "node3 reads all $((3 * per + 3)) lines and its own fsynced file"
run o2go cluster "${cfg[@]}" status --socket node3.sock

step "Unmount everywhere and stop the nodes"
log_sha=$(sha mnt1/shared.log)
for i in 1 2 3; do
	run o2go umount "mnt$i"
	wait_for 30 "node $i giving its mount slot back" unmounted "$i"
done
run o2go debug -R slotmap volume.img
for i in 1 2 3; do kill -TERM "${agent_pid[$i]}"; done
for i in 1 2 3; do
	wait_for 30 "node $i's agent stopping" bash -c "! kill -0 ${agent_pid[$i]}"
	rc=0 && wait "${agent_pid[$i]}" || rc=$?
	[ "$rc" = 0 ] || fail "node $i's agent exited $rc on SIGTERM"
	unset "agent_pid[$i]"
done
ok "three clean unmounts, three agents stopped (heartbeat stopped cleanly)"

step "The real ocfs2-tools accept what three o2go nodes wrote"
RUN_TIMEOUT=300
# As root fsck.ocfs2 mlocks an I/O cache of a fifth of free memory, which
# takes seconds; without CAP_IPC_LOCK and with a 1 MiB memlock limit it
# falls back to a small cache. Its verdict does not depend on the cache.
note "(fsck.ocfs2 runs without CAP_IPC_LOCK, 1 MiB memlock: a small cache, the same verdict, seconds sooner)"
show fsck.ocfs2 -fn volume.img
rc=0 && fsck_out=$(timeout -k 5 "$RUN_TIMEOUT" setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock \
	prlimit --memlock=1048576 fsck.ocfs2 -fn volume.img 2>&1) || rc=$?
echo "$fsck_out"
[ "$rc" = 0 ] || fail "fsck.ocfs2 -fn exited $rc"
! grep -qE '^\[[A-Z0-9_]+\]' <<<"$fsck_out" || fail "fsck.ocfs2 reported problems"
run debugfs.ocfs2 -R "ls -l /" volume.img
debugfs.ocfs2 -R "dump /durable.bin $work/durable.bin" volume.img
debugfs.ocfs2 -R "dump /shared.log $work/shared.log" volume.img
debugfs.ocfs2 -R "dump /reports/random.bin $work/random.bin" volume.img
row() { printf '%-46s %-24s %-24s %s\n' "$@"; }
row "sha256 of" "through o2go (FUSE)" "through debugfs.ocfs2" ""
for f in "durable.bin:$durable:fsynced on node3, then kill -9" "shared.log:$log_sha:three nodes appending" \
	"random.bin:$want:node2 wrote, node1 moved"; do
	IFS=: read -r name sum what <<<"$f"
	got=$(sha "$name")
	row "$name ($what)" "${sum:0:20}..." "${got:0:20}..." "$([ "$got" = "$sum" ] && echo identical || echo DIFFERENT)"
done
[ "$(sha durable.bin)" = "$durable" ] && [ "$(sha shared.log)" = "$log_sha" ] && [ "$(sha random.bin)" = "$want" ] ||
	fail "debugfs.ocfs2 reads other bytes than o2go wrote"

step "Done in $((SECONDS - started))s: three nodes shared one OCFS2 volume, survived a kill -9, and fsck.ocfs2 finds it clean"
