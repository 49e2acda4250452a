package volume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/inode"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// gptDisk lays several volume images out as the partitions of one disk
// image with a GUID partition table, so that one guest boot sees them all
// (/dev/vda1, /dev/vda2...): a boot costs seconds under emulation, a mount
// a fraction of one.
type gptDisk struct {
	path  string
	parts []gptPart
}

// gptPart is one partition: where its bytes are in the disk image.
type gptPart struct {
	image       string // the volume image copied in
	start, size int64  // bytes, 1 MiB aligned
}

const (
	gptSector  = 512
	gptEntries = 128 // entries of 128 bytes: 32 sectors, the usual array
	gptAlign   = 1 << 20
)

// buildGPTDisk copies images into a new sparse disk image at path, one
// partition each, in order.
func buildGPTDisk(t *testing.T, path string, images []string) *gptDisk {
	t.Helper()
	d := &gptDisk{path: path}
	off := int64(gptAlign)
	for _, img := range images {
		st, err := os.Stat(img)
		if err != nil {
			t.Fatal(err)
		}
		size := (st.Size() + gptAlign - 1) / gptAlign * gptAlign
		d.parts = append(d.parts, gptPart{image: img, start: off, size: size})
		off += size
	}
	total := off + gptAlign // room for the backup table
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(total); err != nil {
		t.Fatal(err)
	}
	if err := writeGPT(f, total/gptSector, d.parts); err != nil {
		t.Fatalf("%s: partition table: %v", path, err)
	}
	for _, p := range d.parts {
		src, err := os.Open(p.image)
		if err != nil {
			t.Fatal(err)
		}
		err = copyData(f, p.start, src, 0, p.size)
		src.Close()
		if err != nil {
			t.Fatalf("copying %s into %s: %v", p.image, path, err)
		}
	}
	return d
}

// extract copies partition i back out into a new image file.
func (d *gptDisk) extract(t *testing.T, i int) string {
	t.Helper()
	p := d.parts[i]
	dst := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.img", i+1))
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	st, err := os.Stat(p.image)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(st.Size()); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := copyData(out, 0, src, p.start, st.Size()); err != nil {
		t.Fatalf("extracting partition %d of %s: %v", i+1, d.path, err)
	}
	return dst
}

// copyData copies n bytes of src at srcOff to dst at dstOff, skipping the
// holes of src (SEEK_DATA/SEEK_HOLE), so that sparse images stay sparse.
func copyData(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) error {
	fd := int(src.Fd())
	buf := make([]byte, 1<<20)
	end := srcOff + n
	for off := srcOff; off < end; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || err == nil && data >= end {
			return nil
		}
		if err != nil {
			return fmt.Errorf("SEEK_DATA at %d: %w", off, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("SEEK_HOLE at %d: %w", data, err)
		}
		hole = min(hole, end)
		for p := data; p < hole; {
			k := int(min(int64(len(buf)), hole-p))
			if _, err := src.ReadAt(buf[:k], p); err != nil {
				return err
			}
			if _, err := dst.WriteAt(buf[:k], dstOff+p-srcOff); err != nil {
				return err
			}
			p += int64(k)
		}
		off = hole
	}
	return nil
}

// writeGPT writes a protective MBR and the primary and backup GUID
// partition tables (UEFI spec, chapter 5) for a disk of total sectors.
func writeGPT(f *os.File, total int64, parts []gptPart) error {
	if len(parts) > gptEntries {
		return fmt.Errorf("%d partitions: a table holds %d", len(parts), gptEntries)
	}
	arraySectors := int64(gptEntries * 128 / gptSector)
	mbr := make([]byte, gptSector)
	pe := mbr[446:]
	pe[1], pe[2], pe[3] = 0x00, 0x02, 0x00 // CHS of LBA 1
	pe[4] = 0xEE                           // GPT protective
	pe[5], pe[6], pe[7] = 0xFF, 0xFF, 0xFF
	binary.LittleEndian.PutUint32(pe[8:], 1)
	binary.LittleEndian.PutUint32(pe[12:], uint32(min(total-1, 0xFFFFFFFF)))
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return err
	}

	linuxData := [16]byte{0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4}
	array := make([]byte, gptEntries*128)
	for i, p := range parts {
		e := array[i*128 : (i+1)*128]
		copy(e[0:16], linuxData[:])
		if _, err := rand.Read(e[16:32]); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(e[32:], uint64(p.start/gptSector))
		binary.LittleEndian.PutUint64(e[40:], uint64((p.start+p.size)/gptSector-1))
		for j, c := range utf16.Encode([]rune(fmt.Sprintf("o2go-%d", i+1))) {
			binary.LittleEndian.PutUint16(e[56+2*j:], c)
		}
	}
	var diskGUID [16]byte
	if _, err := rand.Read(diskGUID[:]); err != nil {
		return err
	}
	header := func(my, alt, entries int64) []byte {
		h := make([]byte, gptSector)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(my))
		binary.LittleEndian.PutUint64(h[32:], uint64(alt))
		binary.LittleEndian.PutUint64(h[40:], uint64(2+arraySectors))
		binary.LittleEndian.PutUint64(h[48:], uint64(total-2-arraySectors))
		copy(h[56:72], diskGUID[:])
		binary.LittleEndian.PutUint64(h[72:], uint64(entries))
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(array))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	last := total - 1
	for _, w := range []struct {
		off  int64
		data []byte
	}{
		{gptSector, header(1, last, 2)},
		{2 * gptSector, array},
		{(last - arraySectors) * gptSector, array},
		{last * gptSector, header(last, 1, last-arraySectors)},
	} {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			return err
		}
	}
	return nil
}

// tunefsPartsScript checks every partition listed in $PARTS
// ("N:rw|ro:mount-options|-:flags" words) in turn: mount (ro ones on a
// read-only block device: the kernel's hard read-only mode, the only way
// it mounts a clustered volume without a cluster stack), record the sums
// of every file, then for rw ones write through the kernel and record the
// sums again, and unmount. Failures go to $KERNELVM_SHARE/failed, a
// marker per partition to the kernel log. The flags say what the volume
// supports: x extended attributes, r reflinks; the kernel must refuse
// what it lacks. With u (both features on), big gets xattrs stored in
// clusters (their roots inline and in an xattr block) and kernel/xmany
// enough xattrs for buckets, one in clusters, and OCFS2_IOC_REFLINK
// (ocfs2-reflink, which unlike FICLONE shares xattrs too) copies both.
const tunefsPartsScript = `S=$KERNELVM_SHARE
: >$S/failed
write_tree() (
	set -e
	mkdir -p kernel/sub
	dd if=/dev/urandom of=kernel/data bs=64k count=16 2>/dev/null
	i=0
	while [ $i -lt 40 ]; do echo "kernel $i" >kernel/sub/name-$i; i=$((i+1)); done
	echo appended >>big
	rm dir/entry-with-a-long-name-0007
	case $1 in
	*x*) setfattr -n user.from -v kernel kernel/data ;;
	*) if setfattr -n user.from -v kernel kernel/data 2>/dev/null; then echo "an xattr was set without the xattr feature"; exit 1; fi ;;
	esac
	case $1 in
	*r*) cp --reflink=always big kernel/clone ;;
	*) if cp --reflink=always big kernel/clone 2>/dev/null; then echo "a reflink was made without the refcount feature"; exit 1; fi ;;
	esac
	case $1 in
	*u*) # xattr values in clusters, inline, in an xattr block and in
		# buckets, shared by OCFS2_IOC_REFLINK
		for i in 1 2 3 4 5; do setfattr -n user.shared$i -v "$(printf '%0300d' $i)" big; done
		: >kernel/xmany
		i=0
		while [ $i -lt 150 ]; do setfattr -n user.attribute-number-$i -v "$(printf '%040d' $i)" kernel/xmany; i=$((i+1)); done
		setfattr -n user.big -v "$(printf '%0500d' 9)" kernel/xmany
		"$S/ocfs2-reflink" big kernel/xclone
		"$S/ocfs2-reflink" kernel/xmany kernel/xmany-clone ;;
	esac
	fallocate -l 4M kernel/prealloc
	sync
)
check() {
	n=$1 mode=$2 opts=$3 flags=$4
	dev=/dev/vda$n mnt=/v/$n
	echo "o2go-part $n" >/dev/kmsg
	[ -b $dev ] || { echo "$n: no $dev" >>$S/failed; return; }
	mkdir -p $mnt
	[ "$opts" = - ] && opts=heartbeat=none
	if [ $mode = ro ]; then
		blockdev --setro $dev
		opts=ro,$opts
	fi
	if ! mount -t ocfs2 -o $opts $dev $mnt 2>$S/err.$n; then
		echo "$n: mount -o $opts: $(cat $S/err.$n)" >>$S/failed
		return
	fi
	cd $mnt
	find . -path ./lost+found -prune -o -type f -print0 | xargs -0 sha256sum >$S/before.$n
	if [ $mode = rw ]; then
		# A plain command: set -e is ignored in a function called from ||.
		write_tree $flags >$S/err.$n 2>&1
		[ $? = 0 ] || echo "$n: writing: $(cat $S/err.$n)" >>$S/failed
		find . -path ./lost+found -prune -o -type f -print0 | xargs -0 sha256sum >$S/after.$n
	fi
	cd /
	umount $mnt 2>$S/err.$n || echo "$n: umount: $(cat $S/err.$n)" >>$S/failed
}
for p in $PARTS; do
	IFS=:
	set -- $p
	IFS=' '
	check "$@"
done
`

// tunefsStep is one tunefs operation whose result the kernel mounts.
type tunefsStep struct {
	name string
	o    TunefsOptions
	// opts are the mount options ("" for heartbeat=none); clustered
	// volumes are mounted read-only.
	opts string
	// after runs on the volume once its snapshot is taken (not a tunefs
	// operation: a change the next steps need).
	after func(t *testing.T, img string)
	// stop, when set, interrupts the operation there (stopAt(stop, 1)),
	// as a crash would: the snapshot is the interrupted volume.
	stop string
	// unshare: once the kernel wrote the snapshot (reflinks of files with
	// xattrs among it), o2go tunefs turns refcount off on it.
	unshare bool
	// quota: the kernel's writes must leave the quota files holding what
	// every id uses.
	quota bool
}

// TestTunefsEveryOperationWorksWithKernel closes acceptance 4 of the
// tunefs issue for the operations TestTunefsVolumesWorkWithKernel leaves
// out: a populated local volume goes through a chain of operations (-J
// block64 and block32, xattr, backup-super, extended-slotmap, discontig-bg
// (off also interrupted between its flag and its groups), append-dio and
// refcount off and on (off also with reflinked files to unshare), metaecc
// off, inline-data back on, user and group quotas on, --cloned-volume, -M
// cluster, the cluster stacks o2cb, o2cb with global heartbeat, pcmk,
// --update-cluster-stack, default, and -M local again). After each one a
// snapshot of the volume must pass fsck.ocfs2 -fn; all snapshots then go
// into one guest boot as partitions of one disk, where the kernel must
// mount each (clustered ones read-only, as without a cluster stack it only
// can), read every file as o2go reads it, and, for local ones, write,
// delete, set xattrs, reflink and preallocate where the features allow
// (and refuse xattrs and reflinks where they do not); each volume the
// kernel wrote must pass fsck.ocfs2 -fn again and read back through o2go
// as the kernel wrote it. On quota volumes the quota files the kernel
// left must hold what every id uses (the kernel carried on from o2go's
// count); on two of them o2go tunefs then turns refcount off, unsharing
// what the kernel reflinked, xattr values in clusters among it.
func TestTunefsEveryOperationWorksWithKernel(t *testing.T) {
	kernelvm.Require(t)
	realtools.Require(t)
	fastFsck(t)

	// Larger than 1 GiB, so that backup-super has a backup to drop and
	// restore; refcount off at first, so that turning it on is tried
	// before a reflinked file exists (which then keeps it on).
	img := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "--fs-features=local,norefcount")
	populate(t, img)
	requireClean(t, img, "populate")

	steps := []tunefsStep{
		{name: "-J block64", o: TunefsOptions{JournalBlocks: 1}},
		{name: "-J block32", o: TunefsOptions{JournalBlocks: -1}},
		{name: "noxattr", o: TunefsOptions{Features: "noxattr"}},
		{name: "xattr", o: TunefsOptions{Features: "xattr"}, after: setKernelXattr},
		{name: "nobackup-super", o: TunefsOptions{Features: "nobackup-super"}},
		{name: "backup-super", o: TunefsOptions{Features: "backup-super"}},
		{name: "noextended-slotmap", o: TunefsOptions{Features: "noextended-slotmap"}},
		{name: "extended-slotmap", o: TunefsOptions{Features: "extended-slotmap"}},
		{name: "nodiscontig-bg, interrupted after the flag", o: TunefsOptions{Features: "nodiscontig-bg"}, stop: "discontig-bg-off"},
		{name: "nodiscontig-bg", o: TunefsOptions{Features: "nodiscontig-bg"}},
		{name: "discontig-bg", o: TunefsOptions{Features: "discontig-bg"}},
		{name: "noappend-dio", o: TunefsOptions{Features: "noappend-dio"}},
		{name: "append-dio", o: TunefsOptions{Features: "append-dio"}},
		{name: "refcount", o: TunefsOptions{Features: "refcount"}},
		{name: "norefcount", o: TunefsOptions{Features: "norefcount"}},
		{name: "refcount again", o: TunefsOptions{Features: "refcount"}, after: reflinkAs("clone")},
		{name: "norefcount with shared files", o: TunefsOptions{Features: "norefcount"}},
		{name: "refcount once more", o: TunefsOptions{Features: "refcount"}, after: reflinkAs("clone-again")},
		{name: "metaecc", o: TunefsOptions{Features: "metaecc"}, unshare: true},
		{name: "nometaecc", o: TunefsOptions{Features: "nometaecc"}},
		{name: "noinline-data", o: TunefsOptions{Features: "noinline-data"}},
		{name: "inline-data", o: TunefsOptions{Features: "inline-data"}, after: addInlineFile},
		{name: "usrquota,grpquota", o: TunefsOptions{Features: "usrquota,grpquota"}, unshare: true, quota: true},
		{name: "--cloned-volume", o: TunefsOptions{ClonedVolume: true}},
		{name: "-M cluster", o: TunefsOptions{Features: "nolocal"}},
		{name: "--cluster-stack=o2cb --cluster-name=web", o: TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "o2cb", Name: "web"}}},
		{name: "--cluster-stack=o2cb --global-heartbeat", o: TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "o2cb", Name: "hb", GlobalHeartbeat: true}}},
		{name: "--cluster-stack=pcmk", o: TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{Stack: "pcmk", Name: "pc"}}, opts: "cluster_stack=pcmk"},
		{name: "--update-cluster-stack", o: TunefsOptions{UpdateClusterStack: true, RunningStack: &ClusterStack{Stack: "o2cb", Name: "prod"}}},
		{name: "--cluster-stack=default", o: TunefsOptions{SetClusterStack: true, ClusterStack: ClusterStack{}}},
		{name: "-M local", o: TunefsOptions{Features: "local"}, quota: true},
	}
	type snap struct {
		step  tunefsStep
		img   string
		local bool
		flags string
		want  map[string]string
	}
	var snaps []snap
	for _, st := range steps {
		before := superWith(t, img)
		if st.stop != "" {
			o := st.o
			o.interrupt = stopAt(st.stop, 1)
			if out, err := tunefsO2goErr(img, o); !errors.Is(err, errTunefsStop) {
				t.Fatalf("%s: the interrupted operation returned %v\n%s", st.name, err, out)
			}
		} else {
			tunefsO2go(t, img, st.o)
		}
		requireClean(t, img, st.name)
		requireStepDone(t, img, st, before)
		s := snap{step: st, img: copyImage(t, img), want: fileSums(t, img)}
		f := superWith(t, img).Super.Features
		s.local = f.Incompat&ondisk.IncompatLocalMount != 0
		if f.Incompat&ondisk.IncompatXattr != 0 {
			s.flags += "x"
		}
		if f.Incompat&ondisk.IncompatRefcountTree != 0 {
			s.flags += "r"
		}
		if st.unshare {
			if s.flags != "xr" {
				t.Fatalf("%s: unsharing after the kernel needs xattrs and reflinks, the volume has %q", st.name, s.flags)
			}
			s.flags += "u"
		}
		snaps = append(snaps, s)
		if st.after != nil {
			st.after(t, img)
			requireClean(t, img, st.name+" and the change after it")
		}
	}

	var images, parts []string
	for i, s := range snaps {
		images = append(images, s.img)
		mode, opts := "rw", "-"
		if !s.local {
			mode = "ro"
		}
		if s.step.opts != "" {
			opts = s.step.opts
		}
		parts = append(parts, fmt.Sprintf("%d:%s:%s:%s-", i+1, mode, opts, s.flags))
	}
	disk := buildGPTDisk(t, filepath.Join(t.TempDir(), "disk.img"), images)
	share := t.TempDir()
	buildOCFS2Reflink(t, share)
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{
		Image: disk.path, NoMount: true, Share: share, Timeout: 15 * time.Minute,
		Env: map[string]string{"PARTS": strings.Join(parts, " ")},
	}, tunefsPartsScript)
	if err != nil {
		t.Fatal(err)
	}
	if res.ScriptExit != 0 {
		t.Errorf("script exit %d\n%s%s", res.ScriptExit, res.Stdout, res.Stderr)
	}
	byPart := kernelErrorsByPart(res)
	var withErrors []int
	for part := range byPart {
		withErrors = append(withErrors, part)
	}
	sort.Ints(withErrors)
	for _, part := range withErrors {
		name := "boot"
		if part > 0 {
			name = snaps[part-1].step.name
		}
		t.Errorf("after %s (partition %d): kernel errors:\n%s", name, part, strings.Join(byPart[part], "\n"))
	}
	failed, err := os.ReadFile(filepath.Join(share, "failed"))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(failed)), "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "%d:", &n); err == nil && n >= 1 && n <= len(snaps) {
			bad[n] = true
			t.Errorf("after %s: the kernel failed: %s", snaps[n-1].step.name, l)
		}
	}
	var sharedValues [3]int
	for i, s := range snaps {
		n := i + 1
		if bad[n] {
			continue
		}
		name := s.step.name
		before, err := os.ReadFile(filepath.Join(share, fmt.Sprintf("before.%d", n)))
		if err != nil {
			t.Errorf("after %s: %v", name, err)
			continue
		}
		compareSums(t, "after "+name+": the kernel read", s.want, sha256Lines(t, before))
		if !s.local {
			continue
		}
		back := disk.extract(t, i)
		requireCleanNoFatal(t, back, name+" and the kernel's writes")
		after, err := os.ReadFile(filepath.Join(share, fmt.Sprintf("after.%d", n)))
		if err != nil {
			t.Errorf("after %s: %v", name, err)
			continue
		}
		compareSums(t, "after "+name+": o2go read what the kernel wrote", sha256Lines(t, after), fileSums(t, back))
		if s.step.quota {
			checkQuotaUsage(t, back)
		}
		if s.step.unshare {
			for i, n := range unshareKernelReflinks(t, back, name) {
				sharedValues[i] += n
			}
		}
	}
	for i, where := range []string{"inline", "in an xattr block", "in a bucket"} {
		if sharedValues[i] == 0 {
			t.Errorf("no xattr value %s was shared by the kernel's reflinks: unsharing them went untested", where)
		}
	}
}

// ocfs2ReflinkSource is a guest tool: OCFS2_IOC_REFLINK (ocfs2_ioctl.h:
// _IOW('o', 4, struct reflink_arguments {u64 old_path, new_path,
// preserve})) of SRC to DST. The kernel then shares the xattr values
// stored in clusters too, which FICLONE does not. preserve is 0: with it,
// the kernel (6.1) gives the copy the source's owner but leaves its quota
// charge on the caller, so the quota files no longer match the inodes.
const ocfs2ReflinkSource = `package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ocfs2-reflink SRC DST")
		os.Exit(2)
	}
	src, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	oldPath, _ := syscall.BytePtrFromString(os.Args[1])
	newPath, _ := syscall.BytePtrFromString(os.Args[2])
	args := [3]uint64{uint64(uintptr(unsafe.Pointer(oldPath))), uint64(uintptr(unsafe.Pointer(newPath))), 0}
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, src.Fd(), 0x40186f04, uintptr(unsafe.Pointer(&args)))
	runtime.KeepAlive(oldPath)
	runtime.KeepAlive(newPath)
	if errno != 0 {
		fmt.Fprintln(os.Stderr, "OCFS2_IOC_REFLINK:", errno)
		os.Exit(1)
	}
}
`

// buildOCFS2Reflink compiles ocfs2ReflinkSource as a static binary
// dir/ocfs2-reflink, for the kernel VM to run.
func buildOCFS2Reflink(t *testing.T, dir string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte(ocfs2ReflinkSource), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "ocfs2-reflink"), src)
	cmd.Dir = filepath.Dir(src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ocfs2-reflink: %v\n%s", err, out)
	}
}

// requireStepDone fails the test when a step left the volume as it was
// (the kernel would then check the same volume twice): features named by
// the step on or off, journals 64-bit or not, the stamp, a new UUID and
// label for a cloned volume.
func requireStepDone(t *testing.T, img string, st tunefsStep, before *ondisk.Dinode) {
	t.Helper()
	after := superWith(t, img)
	sb := after.Super
	o := st.o
	switch {
	case o.Features != "":
		on, off, err := parseFeatureChanges(o.Features)
		if err != nil {
			t.Fatal(err)
		}
		if !overlapsAll(sb.Features, on) || overlaps(sb.Features, off) {
			t.Fatalf("after %s the superblock has features %s", st.name, featureNames(sb.Features))
		}
	case o.JournalBlocks != 0:
		if got, want := journals64(t, img), o.JournalBlocks > 0; got != want {
			t.Fatalf("after %s: journals 64-bit = %v", st.name, got)
		}
	case o.SetClusterStack, o.UpdateClusterStack:
		want := o.ClusterStack
		if o.UpdateClusterStack {
			want = *o.RunningStack
		}
		tv := &tunefsVol{Volume: &Volume{SB: sb}}
		if got := tv.diskClusterStack(); got != want {
			t.Fatalf("after %s the volume is stamped %s", st.name, got)
		}
	case o.ClonedVolume:
		if sb.UUID == before.Super.UUID || sb.Label() != before.Super.Label()+"-cloned" {
			t.Fatalf("after %s: UUID %s label %q (were %s %q)", st.name, sb.UUIDString(), sb.Label(), before.Super.UUIDString(), before.Super.Label())
		}
	default:
		t.Fatalf("%s: no check for what this step does", st.name)
	}
}

// journals64 reports whether every journal of img has the JBD2 64-bit
// feature (and fails the test when they disagree).
func journals64(t *testing.T, img string) bool {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	var seen []bool
	for slot := 0; slot < int(tv.SB.MaxSlots); slot++ {
		_, jsb := journalSuper(t, tv, slot)
		seen = append(seen, jsb.FeatureIncompat&ondisk.JBD2FeatureIncompat64Bit != 0)
	}
	for _, b := range seen[1:] {
		if b != seen[0] {
			t.Fatalf("%s: journals disagree on 64-bit: %v", img, seen)
		}
	}
	return seen[0]
}

// requireCleanNoFatal is requireClean that lets the other volumes be
// checked too.
func requireCleanNoFatal(t *testing.T, img, after string) {
	t.Helper()
	if r := realtools.Fsck(t, img, "-fn"); !r.Clean() {
		t.Errorf("after %s: fsck.ocfs2 -fn: exit %d, problems:\n%s\nfull output:\n%s", after, r.ExitCode, strings.Join(r.Problems, "\n"), r.Output)
	}
}

// kernelErrorsByPart sorts the kernel errors of a run by the partition
// being checked when they were logged ("o2go-part N" markers).
func kernelErrorsByPart(r *kernelvm.Result) map[int][]string {
	errs := map[string]bool{}
	for _, l := range r.KernelErrors {
		errs[l] = true
	}
	out := map[int][]string{}
	part := 0
	sc := bufio.NewScanner(strings.NewReader(r.Dmesg))
	for sc.Scan() {
		l := sc.Text()
		if i := strings.Index(l, "o2go-part "); i >= 0 {
			fmt.Sscanf(l[i:], "o2go-part %d", &part)
			continue
		}
		if errs[l] {
			out[part] = append(out[part], l)
		}
	}
	return out
}

// setKernelXattr gives the volume an xattr again once xattr is back on,
// so that the later steps carry one.
func setKernelXattr(t *testing.T, img string) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	big, err := m.FS.Lookup(m.SB.RootBlkno, "big")
	if err == nil {
		err = m.FS.SetXattr(inode.Ref{Ino: big}, "user.color", []byte("blue"), 0)
	}
	if err != nil {
		m.Unmount()
		t.Fatalf("setxattr: %v", err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// reflinkAs returns a step that shares big's clusters with a new file
// called name, once refcount is on.
func reflinkAs(name string) func(t *testing.T, img string) {
	return func(t *testing.T, img string) { addReflink(t, img, name) }
}

func addReflink(t *testing.T, img, name string) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Unmount(); err != nil {
			t.Fatal(err)
		}
	}()
	big, err := m.FS.Lookup(m.SB.RootBlkno, "big")
	if err != nil {
		t.Fatal(err)
	}
	clone, err := m.FS.Create(inode.Ref{Ino: m.SB.RootBlkno}, name, inode.NewNode{Mode: unix.S_IFREG | 0o644}, inode.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FS.CloneRange(big, 0, clone, 0, 0); err != nil {
		t.Fatalf("clone: %v", err)
	}
}

// addInlineFile writes a small file once inline-data is back on: it must
// be stored inline, which the kernel must then read.
func addInlineFile(t *testing.T, img string) {
	t.Helper()
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	ino, err := m.FS.Create(inode.Ref{Ino: m.SB.RootBlkno}, "inline-again", inode.NewNode{Mode: unix.S_IFREG | 0o644}, inode.Caller{})
	if err == nil {
		_, err = m.FS.Write(ino, bytes.Repeat([]byte("inline "), 20), 0)
	}
	if err != nil {
		m.Unmount()
		t.Fatal(err)
	}
	d, err := m.FS.Inode(ino)
	if err != nil {
		m.Unmount()
		t.Fatal(err)
	}
	if d.DynFeatures&ondisk.DynInlineData == 0 {
		t.Error("a small file written after inline-data was turned back on is not inline")
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// suballocBitmapSizes counts the suballocator groups of img by bg_size
// (global_inode_alloc, inode_alloc and extent_alloc of each slot).
func suballocBitmapSizes(t *testing.T, img string) map[int]int {
	t.Helper()
	tv := openTunefsVol(t, img)
	defer tv.Close()
	v := tv.Volume
	sizes := map[int]int{}
	add := func(blk uint64) {
		_, groups, err := tv.allocatorGroups(blk)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			sizes[len(g.Bitmap)]++
		}
	}
	gia, err := v.SystemFile(ondisk.SysGlobalInodeAlloc, -1)
	if err != nil {
		t.Fatal(err)
	}
	add(gia)
	for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
		for slot := 0; slot < int(v.SB.MaxSlots); slot++ {
			blk, err := v.SystemFile(k, slot)
			if err != nil {
				t.Fatal(err)
			}
			add(blk)
		}
	}
	return sizes
}

// TestTunefsDiscontigBGShrinksSuballocBitmaps pins the fix the kernel test
// above found: turning discontig-bg on must give every suballocator group
// the 256-byte bitmap mkfs.ocfs2 gives them on a discontig-bg volume, or
// the kernel (with "ocfs2: reject oversized group bitmap descriptors")
// turns the volume read-only at the first allocation. tunefs.ocfs2 1.8.7
// sets the flag only and leaves that defect. Populated volumes of three
// block sizes, made without the feature by mkfs.ocfs2: after o2go tunefs
// the sizes must be mkfs.ocfs2's for the same geometry with the feature
// (256 bytes, but a whole block for global_inode_alloc's group),
// the volume must pass fsck.ocfs2 -fn and keep its tree; turning the
// feature off again must restore whole-block bitmaps.
func TestTunefsDiscontigBGShrinksSuballocBitmaps(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	for _, bs := range []string{"512", "2048", "4096"} {
		t.Run(bs, func(t *testing.T) {
			t.Parallel()
			args := []string{"-b", bs, "-C", "4096", "-N", "3"}
			var img string
			if bs == "512" {
				// mkfs.ocfs2 leaves the system directory of a 512-byte
				// volume unindexed (DX_TREE_MISSING); o2go mkfs does not.
				img = mkfsO2go(t, 400<<20, MkfsOptions{BlockSize: 512, ClusterSize: 4096, Slots: 3, Features: "local,nodiscontig-bg"})
			} else {
				img = realtools.MkfsImage(t, 400<<20, append(args, "--fs-features=local,nodiscontig-bg")...)
			}
			populate(t, img)
			want := readTree(t, img)
			before := suballocBitmapSizes(t, img)
			tunefsO2go(t, img, TunefsOptions{Features: "discontig-bg"})
			requireClean(t, img, "discontig-bg")
			ref := realtools.MkfsImage(t, 400<<20, append(args, "--fs-features=local")...)
			got, mkfs := suballocBitmapSizes(t, img), suballocBitmapSizes(t, ref)
			if !maps.Equal(got, mkfs) || got[ondisk.MaxSuballocBitmapBytes] == 0 {
				t.Errorf("suballocator bitmap sizes (bytes: groups): before %v, after discontig-bg %v, mkfs.ocfs2's %v", before, got, mkfs)
			}
			if d := diffTrees(want, readTree(t, img)); d != "" {
				t.Errorf("the tree changed:\n%s", d)
			}
			tunefsO2go(t, img, TunefsOptions{Features: "nodiscontig-bg"})
			requireClean(t, img, "nodiscontig-bg")
			full, _ := strconv.Atoi(bs)
			full -= ondisk.GroupDescBitmapOffset
			if got := suballocBitmapSizes(t, img); len(got) != 1 || got[full] == 0 {
				t.Errorf("after nodiscontig-bg: suballocator bitmap sizes %v, want all %d", got, full)
			}
		})
	}
}
