package volume

import (
	"fmt"
	"strings"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/ondisk"
)

// --fs-features=[no]usrquota and [no]grpquota (tunefs.ocfs2's
// feature_quota.c). Off: the quota system files of the type (aquota.user
// and aquota.user:NNNN, or the group ones) are truncated, unlinked from the
// system directory and freed; then the flag. This is what makes a quota
// volume mountable read-write by o2go, which keeps no quota files.
//
// On is refused: turning quotas on needs the usage of every user and group
// counted from every inode into new quota files (a radix tree of dquot
// records per id); mkfs's builder only knows the one dquot of a new
// volume's root. Format the volume with the quota features, or turn them
// on with tunefs.ocfs2.

func (t *tunefsVol) enableUsrQuota() error  { return t.enableQuota("usrquota") }
func (t *tunefsVol) enableGrpQuota() error  { return t.enableQuota("grpquota") }
func (t *tunefsVol) disableUsrQuota() error { return t.disableQuota("usrquota", "user") }
func (t *tunefsVol) disableGrpQuota() error { return t.disableQuota("grpquota", "group") }

func (t *tunefsVol) enableQuota(name string) error {
	if t.already(name, true) {
		return nil
	}
	return tunefsRefuse("o2go tunefs cannot turn %s on: that needs every user's and group's usage counted into new quota files, which o2go does not build yet; use tunefs.ocfs2, or format with --fs-features=%s", name, name)
}

func (t *tunefsVol) disableQuota(name, typ string) error {
	if t.already(name, false) {
		return nil
	}
	ok, err := t.r.interact("Disable %s quota feature on device %q? ", typ, t.Path)
	if err != nil || !ok {
		return err
	}
	env, err := t.dirEnv()
	if err != nil {
		return err
	}
	sysdir0, err := t.Cache.Dinode(t.SB.SystemDirBlkno)
	if err != nil {
		return err
	}
	prefix := "aquota." + typ
	var names []string
	err = dir.Dir{C: t.Cache, SB: t.SB, Inode: sysdir0}.ForEach(func(e ondisk.DirEntry) error {
		rest, ok := strings.CutPrefix(e.Name, prefix)
		if ok && (rest == "" || len(rest) == 5 && rest[0] == ':' && strings.Trim(rest[1:], "0123456789") == "") {
			names = append(names, e.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	giaBlk, err := t.SystemFile(ondisk.SysGlobalInodeAlloc, -1)
	if err != nil {
		return err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	gia, err := alloc.OpenSuballocator(t.Cache, t.geo, giaBlk, alloc.GlobalInodeAllocSlot, gb, "global_inode_alloc")
	if err != nil {
		return err
	}
	for _, n := range names {
		t.verbosef("Deleting quota file %s\n", n)
		sysdir, err := t.inodeForWrite(t.SB.SystemDirBlkno)
		if err != nil {
			return err
		}
		e, err := dir.Remove(env, sysdir, n)
		if werr := t.writeInode(sysdir); err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("unlinking %s: %w", n, err)
		}
		if err := t.deleteSystemInode(gia, e.Inode); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	t.setFeature(name, false)
	return t.writeSuper()
}

// deleteSystemInode frees a system file's clusters, marks its inode
// unused and gives its bit back to global_inode_alloc
// (ocfs2_truncate + ocfs2_delete_inode).
func (t *tunefsVol) deleteSystemInode(gia *alloc.ChainAllocator, blk uint64) error {
	d, err := t.inodeForWrite(blk)
	if err != nil {
		return err
	}
	if d.SuballocSlot != ondisk.SuballocSlotGlobal {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_suballoc_slot", Msg: fmt.Sprintf("a system file from slot %d's inode_alloc", d.SuballocSlot)}, blk)
	}
	if d.Extents != nil {
		if err := t.freeTree(d.Extents); err != nil {
			return err
		}
		d.Extents.Recs = nil
		d.Extents.TreeDepth = 0
	}
	d.Clusters, d.Size, d.LastEBBlk = 0, 0, 0
	d.Flags &^= ondisk.InodeValid
	d.Links = 0
	d.Dtime = uint64(t.now().Sec)
	if err := t.writeInode(d); err != nil {
		return err
	}
	return gia.FreeObject(t.tx, alloc.Object{Blkno: blk, Slot: d.SuballocSlot, Bit: d.SuballocBit, GroupBlkno: d.SuballocLoc})
}
