package volume

import (
	"testing"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestForgetWritesHomeWhatWasPinnedSinceTheWriteBack: a cluster lock going
// down writes the journal home, then forgets the blocks the lock covers.
// A recovery may change one of them in between (it frees into the global
// bitmap under the volume lock alone): the forget writes home once more
// and drops it, where it used to fail the downconvert (and the operation
// waiting for it) with "still pinned by the journal".
func TestForgetWritesHomeWhatWasPinnedSinceTheWriteBack(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2")
	m, err := Mount(img, DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if m != nil {
			m.Crash()
		}
	}()
	gb := m.FS.W.GlobalBitmap
	if err := m.WriteBack(); err != nil { // the downconvert's first step
		t.Fatal(err)
	}
	var stamp uint64
	if err := m.FS.Change(nil, 1, func(tx metacache.Tx) error { // the recovery's change
		if _, err := m.Cache.Dinode(gb); err != nil {
			return err
		}
		b, err := m.Cache.Get(gb)
		if err != nil {
			return err
		}
		if err := tx.Access(b); err != nil {
			return err
		}
		d, err := ondisk.DecodeDinode(b.Data)
		if err != nil {
			return err
		}
		d.Ctime.Sec++
		stamp = uint64(d.Ctime.Sec)
		if err := d.Encode(b.Data); err != nil {
			return err
		}
		tx.Dirty(b, ondisk.DinodeCheckOffset)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.ForgetInode(gb); err != nil {
		t.Fatalf("forgetting the global bitmap after a change since the write-back: %v", err)
	}
	// The change is home: the device itself has it.
	raw := make([]byte, m.SB.BlockSize())
	if _, err := m.Dev.ReadAt(raw, int64(gb)*int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	d, err := ondisk.DecodeDinode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(d.Ctime.Sec) != stamp {
		t.Fatalf("the global bitmap's home block has ctime %d, want the change's %d", d.Ctime.Sec, stamp)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	m = nil
	realtools.RequireFsckClean(t, img)
}
