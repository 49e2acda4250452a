package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// What mkfs checks before it overwrites a device (mkfs.ocfs2's check.c and
// libocfs2's ismounted.c, plus what o2go adds):
//
//   - The device is not mounted here: /proc/mounts names it (by path, by
//     device number for block devices, by file identity for images, which
//     covers o2go's FUSE mounts: their fsname is the device path), it is not
//     the root device, and a block device can be opened exclusively.
//   - No loop device is attached to an image file. An OCFS2 image cannot be
//     mounted on a machine without a cluster stack, but a loop device over
//     it is how one would be: while one exists, the image counts as in use.
//   - No live node heartbeats on an existing OCFS2 volume: mkfs.ocfs2 asks
//     the DLM for the volume's superblock lock; o2go watches the heartbeat
//     area instead (see DefaultHeartbeatWait).
//
// -F overrides each of them, as it does for mkfs.ocfs2.

// O2CB's heartbeat timing, which the live-node check relies on.
const (
	// HeartbeatIntervalMS is how often an o2hb node rewrites its sector
	// (O2HB_REGION_TIMEOUT_MS).
	HeartbeatIntervalMS = 2000
	// DefaultHeartbeatWait is how long mkfs watches an existing volume's
	// heartbeat area: two heartbeat intervals and a second of slack, so a
	// node that beats on O2CB's schedule changes its sector at least once
	// even if one write is late. A sector whose sequence or generation
	// changes in that window is a live node. (O2CB itself declares a node
	// dead only after 31 silent intervals, 62 s; a node stalled longer than
	// this window but not yet that long is not seen, which is why the check
	// is a guard, not a lock.)
	DefaultHeartbeatWait = 2*HeartbeatIntervalMS*time.Millisecond + time.Second
	heartbeatPoll        = 250 * time.Millisecond
)

// deviceIdentity is how the device is recognised in mount tables.
type deviceIdentity struct {
	path     string // absolute, symlinks resolved
	block    bool
	rdev     uint64 // block devices
	dev, ino uint64 // files
}

func identify(path string) (*deviceIdentity, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	id := &deviceIdentity{path: abs}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		id.block, id.rdev = true, st.Rdev
	case unix.S_IFREG:
		id.dev, id.ino = st.Dev, st.Ino
	default:
		return nil, fmt.Errorf("%s is neither a block device nor a regular file", path)
	}
	return id, nil
}

func (id *deviceIdentity) matches(path string) bool {
	if path == id.path {
		return true
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return false
	}
	if id.block {
		return st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == id.rdev
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Dev == id.dev && st.Ino == id.ino
}

// DeviceInUse says why the device at path must not be formatted now, or
// "" when nothing here uses it. mounts is the mount table to read
// ("/proc/mounts" normally) and sysBlock the sysfs block directory
// ("/sys/block"), parameters so that tests can use their own.
func DeviceInUse(path, mounts, sysBlock string) (string, error) {
	id, err := identify(path)
	if err != nil {
		return "", err
	}
	if table, err := ReadMountTable(mounts); err == nil {
		for _, m := range table {
			if id.matches(m.Source) {
				return fmt.Sprintf("it is mounted on %s (%s)", m.Mountpoint, m.FSType), nil
			}
		}
	}
	if id.block {
		var st unix.Stat_t
		if unix.Stat("/", &st) == nil && st.Dev == id.rdev {
			return "it is the root file system's device", nil
		}
		fd, err := unix.Open(id.path, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			return "it is in use by the system (mounted, or held by device-mapper, md or another exclusive user)", nil
		}
		if err == nil {
			unix.Close(fd)
		}
		return "", nil
	}
	loops, _ := filepath.Glob(filepath.Join(sysBlock, "loop*", "loop", "backing_file"))
	sort.Strings(loops)
	for _, bf := range loops {
		data, err := os.ReadFile(bf)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(data)), " (deleted)")
		if id.matches(backing) {
			loop := filepath.Base(filepath.Dir(filepath.Dir(bf)))
			return fmt.Sprintf("loop device /dev/%s is attached to it (detach it with losetup -d /dev/%s)", loop, loop), nil
		}
	}
	return "", nil
}

// heartbeatSample reads the heartbeat area of a volume: one sector per
// node, as o2hb lays it out (node N at sector N from the start of the
// heartbeat system file's extent, sectors of the device's logical size).
func heartbeatSample(v *Volume) ([][]byte, error) {
	blkno, err := v.SystemFile(ondisk.SysHeartbeat, 0)
	if err != nil {
		return nil, err
	}
	d, err := v.Cache.Dinode(blkno)
	if err != nil {
		return nil, err
	}
	if d.Extents == nil || len(d.Extents.Recs) == 0 || d.Extents.TreeDepth != 0 {
		return nil, fmt.Errorf("%s: heartbeat file %d has no single extent", v.Path, blkno)
	}
	sector := v.Dev.SectorSize()
	if sector <= 0 {
		sector = 512
	}
	bs := v.SB.BlockSize()
	rec := d.Extents.Recs[0]
	avail := int(uint64(rec.Clusters) * uint64(v.SB.ClusterSize()) / uint64(sector))
	n := min(ondisk.HeartbeatMaxNodes, avail)
	buf := make([]byte, n*sector)
	if _, err := v.Dev.ReadAt(buf, int64(rec.Blkno)*int64(bs)); err != nil {
		return nil, fmt.Errorf("%s: reading the heartbeat area: %w", v.Path, err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*sector : (i+1)*sector]
	}
	return out, nil
}

// LiveHeartbeatNodes watches the heartbeat area of an open volume for up
// to wait and returns the node numbers whose sector changed (sequence or
// generation), in ascending order. It returns as soon as one changes.
func LiveHeartbeatNodes(v *Volume, wait time.Duration) ([]int, error) {
	first, err := heartbeatSample(v)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		time.Sleep(min(heartbeatPoll, time.Until(deadline)))
		cur, err := heartbeatSample(v)
		if err != nil {
			return nil, err
		}
		var live []int
		for i := range first {
			a, b := first[i], cur[i]
			if !bytes.Equal(a[:8], b[:8]) || !bytes.Equal(a[0x10:0x18], b[0x10:0x18]) {
				if binary.LittleEndian.Uint64(b) != 0 {
					live = append(live, i)
				}
			}
		}
		if len(live) > 0 || !time.Now().Before(deadline) {
			return live, nil
		}
	}
}

// existingVolume opens the device read-only to see whether it holds an
// OCFS2 volume. It returns nil when it holds none; an unsupported-features
// error when it holds one o2go cannot read.
func existingVolume(dev blockdev.Device) (*Volume, error) {
	v, err := OpenDevice(dev, OpenOptions{ReadOnly: true})
	if err == nil {
		return v, nil
	}
	var nf *NotOCFS2Error
	if errors.As(err, &nf) {
		return nil, nil
	}
	return nil, err
}
