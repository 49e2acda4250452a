package volume

import (
	"errors"
	"fmt"
	"sync"

	"o2go/internal/blockdev"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// ReadOnly opens the device read-only. A volume with ro-compat features
	// o2go does not know can only be opened this way.
	ReadOnly bool
	// Backup selects backup superblock N (1..6, at 1G, 4G, 16G, 64G, 256G,
	// 1T) instead of the primary, like fsck.ocfs2 -r N and debugfs -s N.
	Backup int
	// Direct chooses O_DIRECT use (default: when the file system allows).
	Direct blockdev.DirectMode
	// CacheBlocks bounds the metadata cache (0: the default).
	CacheBlocks int
	// Lenient skips the checks of the root and system directory inodes, so
	// that a debugger can open a volume whose root is damaged and look at
	// the damage (debugfs.ocfs2 does the same).
	Lenient bool
}

// Volume is an open OCFS2 volume.
type Volume struct {
	Path     string
	Dev      blockdev.Device
	Super    *ondisk.Dinode     // the superblock's dinode (block 2, or the backup read)
	SB       *ondisk.SuperBlock // Super.Super
	Cache    *metacache.Cache
	FS       *inode.FS
	ReadOnly bool
	// SuperBlkno is where the superblock in use was read (2, or a backup).
	SuperBlkno uint64
	// Notes are facts an operator should know, found while opening
	// (read-only because of unknown ro-compat features, dirty journals...).
	Notes []string

	sysMu    sync.Mutex
	sysFiles map[string]uint64
}

// NotOCFS2Error says a device holds no OCFS2 volume, and what it found.
type NotOCFS2Error struct {
	Path   string
	Reason string
}

func (e *NotOCFS2Error) Error() string { return e.Path + ": not an OCFS2 volume: " + e.Reason }

// UnsupportedFeaturesError is the manual's "couldn't mount because of
// unsupported optional features (200)", with the hex bits.
type UnsupportedFeaturesError struct {
	Path     string
	Incompat uint32 // unsupported incompat bits: no access at all
	RoCompat uint32 // unsupported ro-compat bits: read-only access only
}

func (e *UnsupportedFeaturesError) Error() string {
	if e.Incompat != 0 {
		return fmt.Sprintf("%s: couldn't mount because of unsupported optional features (%x)", e.Path, e.Incompat)
	}
	return fmt.Sprintf("%s: couldn't mount RDWR because of unsupported optional features (%x)", e.Path, e.RoCompat)
}

// Open opens the volume at path (a block device or an image file).
func Open(path string, opts OpenOptions) (*Volume, error) {
	dev, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: opts.ReadOnly, Direct: opts.Direct})
	if err != nil {
		return nil, err
	}
	v, err := OpenDevice(dev, opts)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return v, nil
}

// OpenDevice opens the volume on an already open device (tests, the
// simulator); Close closes the device.
func OpenDevice(dev blockdev.Device, opts OpenOptions) (*Volume, error) {
	v := &Volume{Path: dev.Name(), Dev: dev, ReadOnly: opts.ReadOnly, sysFiles: map[string]uint64{}}
	super, blkno, bs, err := probeSuperBlock(dev, opts.Backup)
	if err != nil {
		return nil, err
	}
	v.Super, v.SB, v.SuperBlkno = super, super.Super, blkno
	if err := v.checkFeatures(); err != nil {
		return nil, err
	}
	want := uint64(super.Clusters) * uint64(v.SB.ClusterSize())
	if uint64(dev.Size()) < want {
		return nil, fmt.Errorf("%s: the device is %d bytes but the superblock describes a volume of %d bytes (%d clusters of %d): truncated image or wrong device",
			v.Path, dev.Size(), want, super.Clusters, v.SB.ClusterSize())
	}
	v.Cache = metacache.New(dev, bs, metacache.Options{
		MetaECC:      v.SB.Features.Incompat&ondisk.IncompatMetaECC != 0,
		FSGeneration: super.FSGeneration,
		LimitBlocks:  opts.CacheBlocks,
	})
	v.FS = &inode.FS{C: v.Cache, SB: v.SB}
	if opts.Lenient {
		return v, nil
	}
	if _, err := v.FS.Dir(v.SB.SystemDirBlkno); err != nil {
		return nil, fmt.Errorf("%s: system directory: %w", v.Path, err)
	}
	if _, err := v.FS.Dir(v.SB.RootBlkno); err != nil {
		return nil, fmt.Errorf("%s: root directory: %w", v.Path, err)
	}
	return v, nil
}

// probeSuperBlock finds the superblock the way the kernel and libocfs2 do:
// block 2 (or the chosen backup) read at each block size 512..4096 until one
// validates.
func probeSuperBlock(dev blockdev.Device, backup int) (*ondisk.Dinode, uint64, int, error) {
	name := dev.Name()
	if backup < 0 || backup > 6 {
		return nil, 0, 0, fmt.Errorf("%s: backup superblock number %d out of range 1..6", name, backup)
	}
	var firstErr error
	buf := make([]byte, 4096)
	for bs := 512; bs <= 4096; bs *= 2 {
		off := int64(ondisk.SuperBlockBlkno) * int64(bs)
		if backup > 0 {
			off = int64(ondisk.BackupSuperBlockStart) << (2 * (backup - 1))
		}
		if off+int64(bs) > dev.Size() {
			if backup > 0 {
				return nil, 0, 0, fmt.Errorf("%s: backup superblock %d would be at byte %d, beyond the device's %d bytes", name, backup, off, dev.Size())
			}
			if firstErr == nil {
				firstErr = &NotOCFS2Error{Path: name, Reason: fmt.Sprintf("the device is only %d bytes, too small to hold a superblock", dev.Size())}
			}
			continue
		}
		b := buf[:bs]
		if _, err := dev.ReadAt(b, off); err != nil {
			return nil, 0, 0, fmt.Errorf("%s: reading the superblock at byte %d: %w", name, off, err)
		}
		if string(b[:6]) != "OCFSV2" {
			continue
		}
		blkno := uint64(off) / uint64(bs)
		d, err := ondisk.DecodeDinode(b)
		if err == nil {
			err = ondisk.ValidateSuperBlock(d, bs)
		}
		if err == nil && d.Super.Features.Incompat&ondisk.IncompatMetaECC != 0 {
			_, err = ondisk.VerifyBlockCheck(b, ondisk.DinodeCheckOffset, "superblock")
			if err == nil {
				d, err = ondisk.DecodeDinode(b) // a corrected bit may have changed a field
			}
		}
		if err == nil && d.Blkno != blkno {
			err = &ondisk.CorruptError{Struct: "superblock", Field: "i_blkno", Msg: fmt.Sprintf("is %d, want %d", d.Blkno, blkno)}
		}
		if err != nil {
			if firstErr == nil || errors.As(firstErr, new(*NotOCFS2Error)) {
				firstErr = ondisk.OnDevice(ondisk.AtBlock(err, blkno), name)
			}
			continue
		}
		return d, blkno, bs, nil
	}
	if firstErr != nil {
		return nil, 0, 0, firstErr
	}
	reason := "no OCFS2 superblock signature at block 2 for any block size 512..4096"
	if backup > 0 {
		reason = fmt.Sprintf("no OCFS2 superblock signature at backup %d", backup)
	}
	sector := make([]byte, 512)
	if _, err := dev.ReadAt(sector, 0); err == nil && ondisk.IsOCFS1(sector) {
		reason = "this is an OCFS (version 1) volume, which o2go does not read"
	}
	return nil, 0, 0, &NotOCFS2Error{Path: name, Reason: reason}
}

// IntactBackup looks for a backup superblock that validates when the
// primary does not: the first of backups 1..6 on the device at path, and
// the block it is at. Tools name it in their error so that an operator
// whose superblock was overwritten knows what to try (each tool with its
// own option: debug -s N, fsck -r N). ok is false when the primary
// superblock is valid (whatever else failed), when no backup validates,
// and on volumes too small to have backups (under 1 GiB).
func IntactBackup(path string) (n int, blkno uint64, ok bool) {
	dev, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, false
	}
	defer dev.Close()
	if _, _, _, err := probeSuperBlock(dev, 0); err == nil {
		return 0, 0, false
	}
	for n := 1; n <= ondisk.MaxBackupSuperBlocks; n++ {
		if ondisk.BackupSuperBlockStart<<(2*(n-1)) >= dev.Size() {
			break
		}
		if _, blkno, _, err := probeSuperBlock(dev, n); err == nil {
			return n, blkno, true
		}
	}
	return 0, 0, false
}

// checkFeatures applies ocfs2(7)'s FEATURE FLAGS rules.
func (v *Volume) checkFeatures() error {
	f := v.SB.Features
	switch {
	case f.Incompat&ondisk.IncompatHeartbeatDev != 0:
		return fmt.Errorf("%s: this is a heartbeat-only device (mkfs -H): it holds no file system", v.Path)
	case f.Incompat&ondisk.IncompatResizeInProg != 0:
		return fmt.Errorf("%s: an online resize was interrupted (aborted-resize); run fsck to finish it", v.Path)
	case f.Incompat&ondisk.IncompatTunefsInProg != 0:
		return fmt.Errorf("%s: a tunefs operation was interrupted (aborted-tunefs, flag 0x%x); run tunefs again to finish it", v.Path, v.SB.TunefsFlag)
	}
	if bad := f.UnsupportedIncompat(); bad != 0 {
		return &UnsupportedFeaturesError{Path: v.Path, Incompat: bad}
	}
	if bad := f.UnsupportedRoCompat(); bad != 0 {
		if !v.ReadOnly {
			return &UnsupportedFeaturesError{Path: v.Path, RoCompat: bad}
		}
		v.Notes = append(v.Notes, fmt.Sprintf("unsupported ro-compat features (%x): read-only access only", bad))
	}
	return nil
}

// Close closes the device.
func (v *Volume) Close() error { return v.Dev.Close() }

// SystemFile returns the inode number of a system file ("global_bitmap",
// or a per-slot file for slot >= 0).
func (v *Volume) SystemFile(kind ondisk.SystemFileKind, slot int) (uint64, error) {
	name, err := ondisk.SystemFileName(kind, slot)
	if err != nil {
		return 0, err
	}
	return v.SystemFileByName(name)
}

// SystemFileByName looks a name up in the system directory, remembering it.
func (v *Volume) SystemFileByName(name string) (uint64, error) {
	v.sysMu.Lock()
	blk, ok := v.sysFiles[name]
	v.sysMu.Unlock()
	if ok {
		return blk, nil
	}
	blk, err := v.FS.Lookup(v.SB.SystemDirBlkno, name)
	if err != nil {
		return 0, fmt.Errorf("%s: system file %s: %w", v.Path, name, err)
	}
	v.sysMu.Lock()
	v.sysFiles[name] = blk
	v.sysMu.Unlock()
	return blk, nil
}
