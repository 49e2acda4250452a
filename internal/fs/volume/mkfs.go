package volume

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// Mkfs formats a device or image file as OCFS2, the way mkfs.ocfs2 1.8.7
// does: the same defaults (block and cluster size from the volume size,
// feature levels, slots, journal and extent allocator sizes), the same
// layout (a volume made with the same options and the same random values
// is the same block for block, apart from the deviations below), the same
// refusals of geometries the format cannot hold, and the same messages on
// the way.
//
// The files: mkfs_plan.go decides (options, features, geometry),
// mkfs_alloc.go models the allocators, mkfs_build.go, mkfs_dir.go and
// mkfs_quota.go build the image in memory, mkfs_write.go writes it and
// mkfs_safety.go decides whether the device may be overwritten.
//
// Deviations from mkfs.ocfs2 1.8.7, each because mkfs.ocfs2's result fails
// its own fsck.ocfs2 -fn or because o2go does the job differently:
//
//   - On a volume with indexed-dirs, the system directory is indexed when it
//     is not inline (small blocks, many slots, or noinline-data).
//     mkfs.ocfs2 leaves it unindexed and fsck.ocfs2 reports DX_TREE_MISSING.
//     The index is built last, so everything else sits where mkfs.ocfs2 puts
//     it; like the index fsck.ocfs2 -y would add, it takes one block of
//     extent_alloc:0000 (which gains a group if it has none) and, past the
//     root's capacity, leaf clusters from the global bitmap.
//   - The global quota files' header counts every block in use. mkfs.ocfs2,
//     when it indexes directories on a quota volume (noinline-data),
//     rereads a stale header and writes it back (fsck: QMAGIC_INVALID).
//   - Trailers of indexed directory blocks record their real free space
//     after lost+found is added (mkfs.ocfs2 leaves the value from before).
//   - Bytes mkfs.ocfs2 fills from uninitialised buffers (the cluster name
//     past its NUL, the slack of lost+found's first entries without inline
//     data, the global quota header block past its fields) are zeros.
//   - Nothing is written until the whole layout has been computed (-n
//     computes it too): a volume
//     too small for its journals, allocators or quota files is refused with
//     a message instead of failing half-way. The superblock is written
//     last, so an interrupted mkfs leaves no valid primary superblock.
//   - Journals and other zeroed areas are zeroed with fallocate(ZERO_RANGE)
//     on image files and BLKZEROOUT on block devices (plain writes when
//     those are not supported), which reads back the same.
//   - Journals that would need an extent tree (more extents than the
//     inode holds: only with a -J size= far beyond the default on 512-byte
//     or 1 KiB blocks) are refused.
//   - The in-use checks are o2go's (mkfs_safety.go): live heartbeats
//     instead of a DLM lock, loop devices over an image count as in use,
//     and an OCFS2 volume is only overwritten without -F after a "y" on a
//     terminal (mkfs.ocfs2 reads the answer from any stdin).
func Mkfs(path string, o MkfsOptions) (*MkfsResult, error) {
	out, errOut := o.Out, o.ErrOut
	if out == nil || o.Quiet {
		out = io.Discard
	}
	if errOut == nil {
		errOut = io.Discard
	}
	ro, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("could not open device %s: %w", path, err)
	}
	p, err := planMkfs(&o, ro.Size(), ro.SectorSize())
	if err != nil {
		ro.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if o.DryRun {
		fmt.Fprintln(out, "Dry run")
	} else if err := checkDevice(path, ro, p, &o, out, errOut); err != nil {
		ro.Close()
		return nil, err
	}
	ro.Close()
	if o.UUID != "" {
		fmt.Fprint(out, "\nWARNING!!! OCFS2 uses the UUID to uniquely identify a file system.\n"+
			"Having two OCFS2 file systems with the same UUID could, in the least,\n"+
			"cause erratic behavior, and if unlucky, cause file system damage.\n"+
			"Please choose the UUID with care.\n\n")
	}
	p.summary(out)
	if err := p.check32(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r, err := newMkfsRandom(o.UUID)
	if err != nil {
		return nil, err
	}
	b := newMkfsBuilder(p, r)
	im, err := b.build()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res := b.result()
	if o.DryRun {
		return res, nil
	}
	fmt.Fprintln(out, "Creating bitmaps: done")
	fmt.Fprintln(out, "Initializing superblock: done")

	dev, err := blockdev.Open(path, blockdev.OpenOptions{})
	if err != nil {
		return nil, fmt.Errorf("could not open device %s for writing: %w", path, err)
	}
	defer dev.Close()
	if err := writeMkfsImage(dev, p, b, im, &o, out, errOut); err != nil {
		return nil, fmt.Errorf("%w (%v)", err, errWrite)
	}
	if o.Verbose {
		fmt.Fprintf(out, "Free space: %d clusters (%d bytes)\n", res.FreeClusters, res.FreeClusters*uint64(res.ClusterSize))
		if res.SystemDirIndexed {
			fmt.Fprintln(out, "Note: the system directory was indexed (mkfs.ocfs2 would leave it unindexed, which its fsck reports as DX_TREE_MISSING)")
		}
	}
	fmt.Fprintf(out, "o2go mkfs successful\n\n")
	return res, nil
}

// MkfsResult describes the volume made (or, with -n, the one that would
// be made).
type MkfsResult struct {
	BlockSize, ClusterSize int
	Blocks                 uint64
	Clusters               uint32
	Slots                  int
	JournalBytes           uint64
	UUID                   [ondisk.UUIDLen]byte
	Features               FeatureSet // as the superblock holds them
	FreeClusters           uint64     // global bitmap
	BackupSuperBlocks      int
	SystemDirIndexed       bool // the system directory got an index mkfs.ocfs2 would not give it
}

func (b *mkfsBuilder) result() *MkfsResult {
	p := b.p
	return &MkfsResult{
		BlockSize: p.blockSize, ClusterSize: p.clusterSize,
		Blocks: p.blocks, Clusters: p.clusters, Slots: p.slots,
		JournalBytes:      p.journalBytes,
		UUID:              b.uuid,
		Features:          b.super.Super.Features,
		FreeClusters:      b.gb.freeClusters(),
		BackupSuperBlocks: b.backupCount,
		SystemDirIndexed:  b.sysdir.dx != nil,
	}
}

func newMkfsRandom(uuid string) (mkfsRandom, error) {
	var r mkfsRandom
	var buf [4 + ondisk.UUIDLen + 12]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return r, fmt.Errorf("reading random bytes: %w", err)
	}
	r.gen = binary.LittleEndian.Uint32(buf[0:])
	copy(r.uuid[:], buf[4:])
	r.uuid[6] = r.uuid[6]&0x0F | 0x40 // version 4, as uuid_generate
	r.uuid[8] = r.uuid[8]&0x3F | 0x80
	for i := range r.seeds {
		r.seeds[i] = binary.LittleEndian.Uint32(buf[4+ondisk.UUIDLen+4*i:])
	}
	if uuid != "" {
		u, err := ParseUUID(uuid)
		if err != nil {
			return r, err
		}
		r.uuid = u
	}
	r.now = uint64(time.Now().Unix())
	return r, nil
}

// checkDevice decides whether the device may be overwritten and adopts
// the cluster stack of an OCFS2 volume it replaces when none was given
// (mkfs.ocfs2's ocfs2_check_volume and ocfs2_fill_cluster_information).
func checkDevice(path string, dev blockdev.Device, p *mkfsPlan, o *MkfsOptions, out, errOut io.Writer) error {
	reason, err := DeviceInUse(path, "/proc/mounts", "/sys/block")
	if err != nil {
		return err
	}
	if reason != "" {
		if !o.Force {
			return refuse("%s is in use: %s; will not make an OCFS2 volume here (use -F to override)", path, reason)
		}
		fmt.Fprintf(errOut, "%s is in use: %s; formatting anyway (-F)\n", path, reason)
	}

	v, err := existingVolume(dev)
	if err != nil {
		if !o.Force {
			return refuse("%s holds an OCFS2 volume o2go cannot read (%v), so it cannot tell whether the volume is in use in the cluster; to skip this check, use -F", path, err)
		}
		fmt.Fprintln(errOut, "WARNING: Cluster check disabled.")
		return nil
	}
	if !p.local {
		if v != nil && p.stack == "" && o.ClusterStack == "" && v.SB.HasClusterInfo() {
			ci := v.SB.ClusterInfo
			clusterinfo := p.features.Incompat&ondisk.IncompatClusterInfo != 0
			if !(ci.StackName() == "o2cb" && ci.StackFlags == 0 && !clusterinfo) {
				p.stack, p.clusterName, p.stackFlags = ci.StackName(), ci.ClusterName(), ci.StackFlags
			}
		}
		if p.stack == "" && p.features.Incompat&(ondisk.IncompatClusterInfo|ondisk.IncompatUserspaceStack) != 0 {
			return refuse("the clusterinfo or userspace stack features cannot be enabled without the cluster stack details: give --cluster-stack and --cluster-name")
		}
		if p.stack != "" {
			fmt.Fprintf(out, "Cluster stack: %s\nCluster name: %s\nStack Flags: 0x%x\nNOTE: Feature extended slot map may be enabled\n", p.stack, p.clusterName, p.stackFlags)
		} else {
			fmt.Fprintln(out, "Cluster stack: classic o2cb")
		}
	}
	if v == nil {
		return nil
	}
	fmt.Fprintln(out, "Overwriting existing ocfs2 partition.")
	if !o.NoPrompt && o.Confirm == nil && !o.Force {
		return refuse("%s holds an OCFS2 volume and there is no terminal to confirm overwriting it: use -F (or -x) to overwrite it", path)
	}
	if v.SB.Features.Incompat&ondisk.IncompatLocalMount == 0 {
		if o.Force {
			fmt.Fprintln(errOut, "WARNING: Cluster check disabled.")
		} else {
			wait := o.HeartbeatWait
			if wait <= 0 {
				wait = DefaultHeartbeatWait
			}
			live, err := LiveHeartbeatNodes(v, wait)
			if err != nil {
				return refuse("%s: cannot read the heartbeat area of the existing volume (%v), so it cannot tell whether it is in use; to skip this check, use -F", path, err)
			}
			if len(live) > 0 {
				var ns []string
				for _, n := range live {
					ns = append(ns, fmt.Sprint(n))
				}
				return refuse("%s appears to be in use in the cluster: node(s) %s heartbeat on it; stop them first, or use -F to format anyway", path, strings.Join(ns, ", "))
			}
		}
	}
	if o.NoPrompt {
		return nil
	}
	if o.Confirm != nil && !o.Confirm("Proceed (y/N): ") {
		return refuse("Aborting operation.")
	}
	return nil
}

// writeMkfsImage writes the image with the progress lines of mkfs.ocfs2.
func writeMkfsImage(dev blockdev.Device, p *mkfsPlan, b *mkfsBuilder, im *mkfsImage, o *MkfsOptions, out, errOut io.Writer) error {
	w := newMkfsWriter(dev, p.blockSize)
	w.warn = errOut
	if !o.NoDiscard {
		w.discard(p.bytes)
	}
	// Both ends of the volume first: the old superblock goes.
	ends := []blockRange{
		{0, clearChunk / uint64(p.blockSize)},
		{(p.bytes - clearChunk) / uint64(p.blockSize), clearChunk / uint64(p.blockSize)},
	}
	if err := w.zeroBlocks(ends); err != nil {
		return err
	}
	if err := w.zeroBlocks(im.zero); err != nil {
		return err
	}
	for _, r := range im.journal {
		w.total += int64(r.count) * int64(p.blockSize)
	}
	w.done, w.progress = 0, o.Progress
	if err := w.zeroBlocks(im.journal); err != nil {
		return err
	}
	w.progress = nil
	if err := w.writeBlocks(im); err != nil {
		return err
	}
	if err := w.writePlainGroups(im); err != nil {
		return err
	}
	if err := w.sync(); err != nil {
		return err
	}
	fmt.Fprintln(out, "Writing system files: done")
	fmt.Fprintln(out, "Formatting Journals: done")
	fmt.Fprintln(out, "Growing extent allocator: done")
	fmt.Fprintln(out, "Formatting slot map: done")
	fmt.Fprintln(out, "Formatting quota files: done")
	if p.dxDirs && (!p.inlineData || b.sysdir.dx != nil) {
		fmt.Fprintln(out, "Indexing system directories: done")
	}
	fmt.Fprintln(out, "Writing lost+found: done")

	for i, blk := range im.backups {
		if err := w.writeAt(blk, im.backup[i]); err != nil {
			return err
		}
	}
	head := append(append([]byte(nil), im.head...), im.super...)
	if err := w.writeAt(0, head); err != nil {
		return err
	}
	if err := w.sync(); err != nil {
		return err
	}
	fmt.Fprintln(out, "Writing superblock: done")
	if p.backupSuper {
		fmt.Fprintf(out, "Writing backup superblock: %d block(s)\n", len(im.backups))
	}
	return nil
}

// IsMkfsRefusal reports whether err is mkfs refusing the options or the
// device (as opposed to an I/O error).
func IsMkfsRefusal(err error) bool {
	var me *MkfsError
	return errors.As(err, &me)
}
