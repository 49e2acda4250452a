package volume

import (
	"crypto/rand"
	"encoding/binary"

	"o2go/internal/ondisk"
)

// --fs-features=[no]indexed-dirs (tunefs.ocfs2's feature_indexed_dirs.c).
// On: new hash seeds (and s_uuid_hash, unless xattr has set it), the flag,
// then every block directory gets trailers and an index; a directory that
// carries an index from before (a volume where the feature was turned off
// with an older tool) has it rebuilt, as it may be stale. The system
// directory is indexed too (mkfs.ocfs2 leaves it unindexed: see Mkfs).
// Off: every index is freed, the flag, the seeds (and s_uuid_hash, unless
// xattr needs it) are cleared. The trailers stay: they read as an unused
// entry.

func (t *tunefsVol) enableIndexedDirs() error {
	if t.already("indexed-dirs", true) {
		return nil
	}
	ok, err := t.askFeature("indexed-dirs", true)
	if err != nil || !ok {
		return err
	}
	if t.SB.Features.Incompat&ondisk.IncompatXattr == 0 {
		t.SB.UUIDHash = ondisk.UUIDHash(t.SB.UUID)
	}
	var seed [12]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	for i := range t.SB.DxSeed {
		t.SB.DxSeed[i] = binary.LittleEndian.Uint32(seed[4*i:])
	}
	var dirs []uint64
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if d.IsDir() && d.Inline == nil {
			dirs = append(dirs, d.Blkno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The superblock (seeds, flag) first: the indexes hash with its seeds.
	t.setFeature("indexed-dirs", true)
	if err := t.setInProgress(false, ondisk.TunefsInProgDirTrailer); err != nil {
		return err
	}
	for i, blk := range dirs {
		d, err := t.inodeForWrite(blk)
		if err != nil {
			return err
		}
		if err := t.dropIndex(d); err != nil {
			return err
		}
		if _, err := t.installTrailers(d); err != nil {
			return err
		}
		if err := t.buildIndex(d); err != nil {
			return err
		}
		t.r.progress("Building indexed trees", int64(i+1), int64(len(dirs)))
	}
	t.clearInProgress(false, ondisk.TunefsInProgDirTrailer)
	return t.writeSuper()
}

func (t *tunefsVol) disableIndexedDirs() error {
	if t.already("indexed-dirs", false) {
		return nil
	}
	ok, err := t.askFeature("indexed-dirs", false)
	if err != nil || !ok {
		return err
	}
	var dirs []uint64
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if d.IsDir() && d.DynFeatures&ondisk.DynIndexedDir != 0 {
			dirs = append(dirs, d.Blkno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.verbosef("We have %d indexed directories to truncate.\n", len(dirs))
	for i, blk := range dirs {
		d, err := t.inodeForWrite(blk)
		if err != nil {
			return err
		}
		if err := t.dropIndex(d); err != nil {
			return err
		}
		t.r.progress("Truncating indexed trees", int64(i+1), int64(len(dirs)))
	}
	t.setFeature("indexed-dirs", false)
	if t.SB.Features.Incompat&ondisk.IncompatXattr == 0 {
		t.SB.UUIDHash = 0
	}
	t.SB.DxSeed = [3]uint32{}
	return t.writeSuper()
}
