package volume

import (
	"encoding/binary"
	"fmt"
	"strings"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/ondisk"
)

// --fs-features=[no]usrquota and [no]grpquota (tunefs.ocfs2's
// feature_quota.c over libocfs2's quota.c).
//
// On, for one type (user or group), in the order tunefs.ocfs2 takes its
// space, so that the two lay the files out alike:
//
//  1. the system files: the global one (aquota.user or aquota.group) and
//     one local file per slot (aquota.user:NNNN), from global_inode_alloc,
//     linked into the system directory; files that exist are kept;
//  2. the global file gets its first two blocks' clusters, then each local
//     file its two blocks (localQuotaFileBlocks, mkfs's content);
//  3. usage is counted over every live inode that is not a system file (the
//     root directory counts): per uid or gid, one inode each and the bytes
//     of its clusters (i_clusters times the cluster size, what the kernel's
//     inode_get_bytes reports for OCFS2, so that the kernel's accounting
//     carries on from it);
//  4. the ids go into the global file's tree in the order libocfs2 writes
//     them (ondisk.QuotaHashOrder), the file growing a cluster at a time, and its
//     blocks are written with their checks;
//  5. the flag goes on last.
//
// Where o2go differs, for crash safety: tunefs.ocfs2 sets the flag before
// the global file's info block and inode are final (they are written when
// it closes the volume), and run again after an interruption it grows the
// global file it finds without truncating it. o2go writes the flag after
// everything else, and truncates quota files it finds to nothing before
// filling them, so an interrupted run leaves quota files the volume does
// not use yet, and a new run rebuilds them.
//
// Off: the quota system files of the type (aquota.user and
// aquota.user:NNNN, or the group ones) are truncated, unlinked from the
// system directory and freed; then the flag.
//
// Feature changes that grow or shrink files (sparse, noinline-data,
// metaecc and indexed-dirs through directory trailers) end, on a quota
// volume, with the usage counted anew into rebuilt quota files that keep
// every id's limits (refreshQuotaUsage, what fsck.ocfs2 -fy does).

func (t *tunefsVol) enableUsrQuota() error  { return t.enableQuota(0) }
func (t *tunefsVol) enableGrpQuota() error  { return t.enableQuota(1) }
func (t *tunefsVol) disableUsrQuota() error { return t.disableQuota("usrquota", "user") }
func (t *tunefsVol) disableGrpQuota() error { return t.disableQuota("grpquota", "group") }

// quotaTypes are the two quota types: feature name, the word tunefs.ocfs2
// uses, and the system files.
var quotaTypes = [2]struct {
	feature, word string
	global, local ondisk.SystemFileKind
}{
	{"usrquota", "user", ondisk.SysUserQuota, ondisk.SysLocalUserQuota},
	{"grpquota", "group", ondisk.SysGroupQuota, ondisk.SysLocalGroupQuota},
}

// globalInodeAlloc opens global_inode_alloc, where system files live.
func (t *tunefsVol) globalInodeAlloc() (*alloc.ChainAllocator, error) {
	blk, err := t.SystemFile(ondisk.SysGlobalInodeAlloc, -1)
	if err != nil {
		return nil, err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return nil, err
	}
	return alloc.OpenSuballocator(t.Cache, t.geo, blk, alloc.GlobalInodeAllocSlot, gb, "global_inode_alloc")
}

func (t *tunefsVol) enableQuota(typ int) error {
	qt := quotaTypes[typ]
	if t.already(qt.feature, true) {
		return nil
	}
	ok, err := t.r.interact("Enable %s quota feature on device %q? ", qt.word, t.Path)
	if err != nil || !ok {
		return err
	}
	t.verbosef("Creating %s quota system files\n", qt.word)
	if err := t.addQuotaSystemFiles(typ); err != nil {
		return err
	}
	if err := t.r.interrupt("quota-files"); err != nil {
		return err
	}

	t.verbosef("Initializing global %s quota file\n", qt.word)
	g, err := t.resetGlobalQuotaFile(typ)
	if err != nil {
		return err
	}
	t.verbosef("Initializing local %s quota files\n", qt.word)
	if err := t.resetLocalQuotaFiles(typ); err != nil {
		return err
	}
	t.verbosef("Computing %s quota usage\n", qt.word)
	usage, seen, err := t.countQuotaUsage(typ)
	if err != nil {
		return err
	}
	t.verbosef("Write %s quotas to file\n", qt.word)
	file, err := newGlobalQuotaFile(typ, t.bs(), ondisk.NewGlobalQuotaInfo(ondisk.QuotaType(typ)))
	if err != nil {
		return err
	}
	for _, id := range ondisk.QuotaHashOrder(seen) {
		if err := file.Insert(quotaRecord(ondisk.GlobalDquot{}, id, *usage[id])); err != nil {
			return t.Cache.Annotate(fmt.Errorf("%s quota file: %w", qt.word, err), g.Blkno)
		}
	}
	if err := t.writeGlobalQuotaFile(g, file); err != nil {
		return err
	}
	if err := t.r.interrupt("quota-before-super"); err != nil {
		return err
	}
	t.setFeature(qt.feature, true)
	return t.writeSuper()
}

// resetGlobalQuotaFile truncates the global quota file of typ to nothing
// and gives it the clusters of its first blocks
// (ocfs2_init_global_quota_file), returning the caller's copy of its
// inode.
func (t *tunefsVol) resetGlobalQuotaFile(typ int) (*ondisk.Dinode, error) {
	g0, err := t.systemInode(quotaTypes[typ].global, -1)
	if err != nil {
		return nil, err
	}
	g := g0.Clone()
	if err := t.resizeFile(g, 0); err != nil {
		return nil, err
	}
	g.Size = 0
	if err := t.growQuotaFile(g, ondisk.QuotaInitBlocks); err != nil {
		return nil, err
	}
	return g, t.writeInode(g)
}

// resetLocalQuotaFiles truncates every slot's local quota file of typ and
// formats it anew (ocfs2_init_local_quota_files).
func (t *tunefsVol) resetLocalQuotaFiles(typ int) error {
	kind := quotaTypes[typ].local
	info := ondisk.SystemFiles[kind]
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		d0, err := t.systemInode(kind, slot)
		if err != nil {
			return err
		}
		d := d0.Clone()
		if err := t.resizeFile(d, 0); err != nil {
			return err
		}
		if err := t.initLocalQuotaFile(d, info); err != nil {
			return fmt.Errorf("%s: %w", mustName(kind, slot), err)
		}
	}
	return nil
}

// writeGlobalQuotaFile grows global quota file g (the caller's copy) to
// file's blocks, writes them with their checks, then the inode, and syncs.
func (t *tunefsVol) writeGlobalQuotaFile(g *ondisk.Dinode, file *ondisk.GlobalQuotaFile) error {
	blocks := file.Blocks()
	if err := t.growQuotaFile(g, len(blocks)); err != nil {
		return err
	}
	g.Size = uint64(len(blocks) * t.bs())
	g.Mtime = t.now()
	for i, b := range blocks {
		if err := t.writeFileBlock(g, uint64(i), b, ondisk.QuotaCheckOffset(t.bs())); err != nil {
			return err
		}
	}
	if err := t.writeInode(g); err != nil {
		return err
	}
	return t.Dev.Sync()
}

// addQuotaSystemFiles makes the global and the local quota files of typ
// that do not exist, empty, and links them into the system directory
// (create_system_file).
func (t *tunefsVol) addQuotaSystemFiles(typ int) error {
	qt := quotaTypes[typ]
	env, err := t.dirEnv()
	if err != nil {
		return err
	}
	gia, err := t.globalInodeAlloc()
	if err != nil {
		return err
	}
	for slot := -1; slot < int(t.SB.MaxSlots); slot++ {
		kind := qt.local
		if slot < 0 {
			kind = qt.global
		}
		info := ondisk.SystemFiles[kind]
		// Without the feature bit, addSystemFile leaves the new file
		// empty: enableQuota gives it clusters in tunefs.ocfs2's order.
		info.RoCompat = 0
		name, err := ondisk.SystemFileName(kind, max(slot, 0))
		if err != nil {
			return err
		}
		if err := t.addSystemFile(env, gia, info, name); err != nil {
			return fmt.Errorf("system file %s: %w", name, err)
		}
	}
	return nil
}

// growQuotaFile gives quota file d (the caller's copy, written by the
// caller) room for blocks blocks: at first the clusters of
// ondisk.QuotaInitBlocks at once, then one cluster at a time, zeroed, as
// ocfs2_get_free_dqblk grows the file while its tree takes blocks.
func (t *tunefsVol) growQuotaFile(d *ondisk.Dinode, blocks int) error {
	have := d.Clusters
	for uint64(d.Clusters)*t.bpc() < uint64(blocks) {
		step := uint32(1)
		if d.Clusters == 0 {
			step = uint32((uint64(blocks) + t.bpc() - 1) / t.bpc())
		}
		if err := t.resizeFile(d, d.Clusters+step); err != nil {
			return err
		}
	}
	if d.Clusters == have {
		return nil
	}
	d.Size = max(d.Size, uint64(blocks*t.bs()))
	recs, err := t.fileExtents(d)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.End() <= uint64(have) {
			continue
		}
		skip := uint64(0)
		if r.Cpos < have {
			skip = uint64(have - r.Cpos)
		}
		if err := t.zeroClusters(r.Blkno/t.bpc()+skip, uint64(r.Clusters)-skip, ""); err != nil {
			return err
		}
	}
	return nil
}

// countQuotaUsage counts the usage of every id of quota type typ (0 user,
// 1 group) over every live inode that is not a system file (the root
// directory counts), as ocfs2_compute_quota_usage does, and lists the ids
// in the order the inode scan first met them.
func (t *tunefsVol) countQuotaUsage(typ int) (map[uint32]*quotaUsage, []uint32, error) {
	byID := map[uint32]*quotaUsage{}
	var seen []uint32
	cs := uint64(t.cs())
	err := t.forEachInode("Computing quota usage", func(d *ondisk.Dinode) error {
		if d.Flags&ondisk.InodeSystem != 0 && d.Blkno != t.SB.RootBlkno {
			return nil
		}
		id := d.UID
		if typ == 1 {
			id = d.GID
		}
		u := byID[id]
		if u == nil {
			u = &quotaUsage{}
			byID[id] = u
			seen = append(seen, id)
		}
		u.inodes++
		u.space += uint64(d.Clusters) * cs
		return nil
	})
	return byID, seen, err
}

// refreshQuotaUsage recounts the usage of every quota type the volume
// has, after feature changes that change how many clusters files hold,
// and rebuilds its files as fsck.ocfs2 -fy does (pass 5,
// recreate_quota_files): the global file's info and each id's limits and
// grace times kept, its usage counted anew, the ids the file held first
// (in the order its tree gives them) then the new ones; the global file
// truncated and written again, then every local file formatted anew.
//
// tunefs.ocfs2 instead updates the records of the files it changed in
// place, for noinline-data and nosparse only: its metaecc, indexed-dirs
// and sparse leave the usage of the directories and files they grow or
// shrink stale.
func (t *tunefsVol) refreshQuotaUsage() error {
	if err := t.r.interrupt("quota-refresh"); err != nil {
		return err
	}
	for typ, qt := range quotaTypes {
		if on, _ := t.feature(qt.feature); !on {
			continue
		}
		t.verbosef("Updating %s quota usage\n", qt.word)
		g0, err := t.systemInode(qt.global, -1)
		if err != nil {
			return err
		}
		info, old, err := t.readGlobalQuota(typ, g0)
		if err != nil {
			return err
		}
		usage, seen, err := t.countQuotaUsage(typ)
		if err != nil {
			return err
		}
		var ids []uint32
		base := map[uint32]ondisk.GlobalDquot{}
		for _, r := range old {
			base[r.ID] = r
			ids = append(ids, r.ID)
		}
		for _, id := range seen {
			if _, ok := base[id]; !ok {
				ids = append(ids, id)
			}
		}
		file, err := newGlobalQuotaFile(typ, t.bs(), info)
		if err != nil {
			return err
		}
		for _, id := range ondisk.QuotaHashOrder(ids) {
			var u quotaUsage
			if c := usage[id]; c != nil {
				u = *c
			}
			if err := file.Insert(quotaRecord(base[id], id, u)); err != nil {
				return t.Cache.Annotate(fmt.Errorf("%s quota file: %w", qt.word, err), g0.Blkno)
			}
		}
		g, err := t.resetGlobalQuotaFile(typ)
		if err != nil {
			return err
		}
		if err := t.writeGlobalQuotaFile(g, file); err != nil {
			return err
		}
		if err := t.resetLocalQuotaFiles(typ); err != nil {
			return err
		}
	}
	return nil
}

// readGlobalQuota reads global quota file d of type typ: its info, and
// every record its tree reaches in the order fsck.ocfs2 meets them (depth
// first, each block's references in order; a block or an id met again is
// skipped). Damage (a bad magic, block count, reference or check) is a
// corruption error: fsck.ocfs2 repairs it.
func (t *tunefsVol) readGlobalQuota(typ int, d *ondisk.Dinode) (ondisk.GlobalQuotaInfo, []ondisk.GlobalDquot, error) {
	le := binary.LittleEndian
	bs := t.bs()
	name := quotaTypes[typ].word + " quota file"
	n := d.Size / uint64(bs)
	if n < ondisk.QuotaInitBlocks || n > 1<<32-1 || n > uint64(d.Clusters)*t.bpc() {
		return ondisk.GlobalQuotaInfo{}, nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: name, Field: "i_size", Msg: fmt.Sprintf("%d bytes for %d clusters: run fsck.ocfs2", d.Size, d.Clusters)}, d.Blkno)
	}
	blocks := make([][]byte, n)
	read := func(i uint32) ([]byte, error) {
		if blocks[i] != nil {
			return blocks[i], nil
		}
		blk, err := t.fileBlock(d, uint64(i))
		if err != nil {
			return nil, err
		}
		b, err := t.readBlock(blk)
		if err != nil {
			return nil, err
		}
		if t.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 {
			if _, err := ondisk.VerifyBlockCheck(b, ondisk.QuotaCheckOffset(bs), name); err != nil {
				return nil, t.Cache.Annotate(err, blk)
			}
		}
		blocks[i] = b
		return b, nil
	}
	corrupt := func(field, format string, args ...any) error {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: name, Field: field, Msg: fmt.Sprintf(format, args...) + ": run fsck.ocfs2"}, d.Blkno)
	}
	hdr, err := read(0)
	if err != nil {
		return ondisk.GlobalQuotaInfo{}, nil, err
	}
	info, err := ondisk.DecodeGlobalQuotaInfo(hdr)
	if err != nil {
		return ondisk.GlobalQuotaInfo{}, nil, t.Cache.Annotate(err, d.Blkno)
	}
	if want := ondisk.QuotaType(typ).GlobalMagic(); info.Magic != want {
		return ondisk.GlobalQuotaInfo{}, nil, corrupt("dqh_magic", "is %#x, want %#x", info.Magic, want)
	}
	if uint64(info.Blocks) != n {
		return ondisk.GlobalQuotaInfo{}, nil, corrupt("dqi_blocks", "is %d, the file has %d blocks", info.Blocks, n)
	}
	var out []ondisk.GlobalDquot
	seenBlock := map[uint32]bool{}
	seenID := map[uint32]bool{}
	depth := ondisk.QuotaTreeDepth(bs)
	var walk func(blk uint32, level int) error
	walk = func(blk uint32, level int) error {
		if blk < ondisk.QuotaTreeRootBlock || uint64(blk) >= n {
			return corrupt("tree", "a reference to block %d of %d", blk, n)
		}
		if seenBlock[blk] {
			return nil
		}
		seenBlock[blk] = true
		b, err := read(blk)
		if err != nil {
			return err
		}
		if level == depth {
			for i := 0; i < ondisk.GlobalDquotsPerBlock(bs); i++ {
				r := ondisk.GlobalDquotRecord(b, i)
				if ondisk.GlobalDquotUnused(r) {
					continue
				}
				q, err := ondisk.DecodeGlobalDquot(r)
				if err != nil {
					return t.Cache.Annotate(err, d.Blkno)
				}
				if seenID[q.ID] {
					continue
				}
				seenID[q.ID] = true
				out = append(out, q)
			}
			return nil
		}
		for i := 0; i < ondisk.QuotaRefsPerBlock(bs); i++ {
			if ref := le.Uint32(b[4*i:]); ref != 0 {
				if err := walk(ref, level+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(ondisk.QuotaTreeRootBlock, 0); err != nil {
		return ondisk.GlobalQuotaInfo{}, nil, err
	}
	return info, out, nil
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
	gia, err := t.globalInodeAlloc()
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
