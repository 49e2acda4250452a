package volume

import (
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
)

// --fs-features=[no]xattr (tunefs.ocfs2's feature_xattr.c). On: the flag,
// s_xattr_inline_size (256) and, unless indexed-dirs set it already,
// s_uuid_hash, which seeds every stored name's hash. Off: every extended
// attribute of every inode is removed (fs/xattr's Destroy: the in-inode
// area given back to id2, value and bucket clusters and the xattr block
// freed), POSIX ACLs among them (the permission bits keep what the access
// ACLs said); then the flag, the inline size and (unless indexed-dirs
// needs it) the hash seed are cleared.

func (t *tunefsVol) enableXattr() error {
	return t.toggleFlag("xattr", true, func() {
		if t.SB.Features.Incompat&ondisk.IncompatIndexedDirs == 0 {
			t.SB.UUIDHash = ondisk.UUIDHash(t.SB.UUID)
		}
		t.SB.XattrInlineSize = 256
	})
}

func (t *tunefsVol) disableXattr() error {
	if t.already("xattr", false) {
		return nil
	}
	ok, err := t.askFeature("xattr", false)
	if err != nil || !ok {
		return err
	}
	var inodes []uint64
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if d.DynFeatures&(ondisk.DynHasXattr|ondisk.DynInlineXattr) != 0 {
			inodes = append(inodes, d.Blkno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta, data, err := t.allocators()
	if err != nil {
		return err
	}
	env := xattr.Env{C: t.Cache, SB: t.SB, Tx: t.tx, Meta: meta, Data: data, Freed: xattr.DirectFree{Data: data}}
	for i, blk := range inodes {
		d, err := t.inodeForWrite(blk)
		if err != nil {
			return err
		}
		b, err := t.Cache.Get(blk)
		if err != nil {
			return err
		}
		for {
			if err := t.tx.Access(b); err != nil {
				return err
			}
			done, err := xattr.Destroy(env, d, b)
			if err == nil {
				err = d.Encode(b.Data)
			}
			if err != nil {
				return t.Cache.Annotate(err, blk)
			}
			t.tx.Dirty(b, ondisk.DinodeCheckOffset)
			if t.tx.Err != nil {
				return t.tx.Err
			}
			if done {
				break
			}
		}
		t.r.progress("Removing extended attributes", int64(i+1), int64(len(inodes)))
	}
	t.setFeature("xattr", false)
	t.SB.XattrInlineSize = 0
	if t.SB.Features.Incompat&ondisk.IncompatIndexedDirs == 0 {
		t.SB.UUIDHash = 0
	}
	return t.writeSuper()
}
