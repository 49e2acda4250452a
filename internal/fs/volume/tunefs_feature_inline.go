package volume

import (
	"o2go/internal/ondisk"
)

// --fs-features=noinline-data (tunefs.ocfs2's feature_inline_data.c): every
// file and directory stored inline is moved into a cluster of its own
// (inlineToBlocks), then the flag goes. Turning inline-data on is the
// flag alone: files become inline only as the kernel or o2go write them.
//
// Where o2go differs: tunefs.ocfs2 1.8.7 gives an empty inline file a
// cluster too, and leaves converted directories of an indexed-dirs volume
// without an index (fsck.ocfs2 then reports DX_TREE_MISSING); o2go gives
// empty files no cluster, as the kernel does, and indexes the directories.
// On a quota volume the usage is counted anew afterwards
// (refreshQuotaUsage).

func (t *tunefsVol) disableInlineData() error {
	if t.already("inline-data", false) {
		return nil
	}
	ok, err := t.askFeature("inline-data", false)
	if err != nil || !ok {
		return err
	}
	var inline []uint64
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if (d.IsReg() || d.IsDir()) && d.Inline != nil {
			inline = append(inline, d.Blkno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	u, err := gb.Usage()
	if err != nil {
		return err
	}
	t.verbosef("We have %d clusters free, and need %d clusters to expand all inline data\n", u.Free(), len(inline))
	if uint64(u.Free()) < uint64(len(inline)) {
		return tunefsRefuse("there is not enough space to expand all of the inline data on %s: %d clusters are needed, %d are free", t.Path, len(inline), u.Free())
	}
	for i, blk := range inline {
		d, err := t.inodeForWrite(blk)
		if err != nil {
			return err
		}
		if err := t.inlineToBlocks(d); err != nil {
			return err
		}
		t.r.progress("Expanding inline files", int64(i+1), int64(len(inline)))
	}
	t.setFeature("inline-data", false)
	return t.writeSuper()
}
