package fsck

import (
	"fmt"

	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// Pass 5 (fsck.ocfs2's pass5.c, with libocfs2's quota.c for the files it
// writes): on a volume with user or group quotas, read the limits the
// global quota file (aquota.user, aquota.group) holds, count what every
// user and group owns (inodes, and the clusters of their data), and with
// write access write the files again from what was found.
//
// Reading the global file checks its header (QMAGIC_INVALID: use the grace
// times it holds?), walks its radix tree of block references from block 1,
// and reads every data block the tree reaches once; a tree block failing
// its META_ECC check is QTREE_BLK_INVALID, and the entries of a data block
// that fails its check or whose header is corrupt are DQBLK_INVALID; an id
// met twice is DUP_DQBLK_VALID or DUP_DQBLK_INVALID. Usage then comes from
// every valid inode that is not a system file (the root directory counts):
// one inode, and i_clusters clusters of space, for its owner and its group.
//
// Writing follows libocfs2 step for step, so that the files come out as
// fsck.ocfs2 -y writes them: the dquots in the order of its hash table,
// each inserted into a fresh tree (a block for each level the id needs, a
// data block from the list of blocks with free entries), then the header
// with the final counts; each node's local quota file (aquota.user:NNNN)
// is formatted empty and clean. fsck.ocfs2 rewrites the files on every
// run; o2go writes them only when what it found differs from what they
// say (limits, usage, grace times, a problem above, a local file not
// clean), so a clean volume stays untouched and exits 0.
//
// The files' structures, the tree writer and libocfs2's write order are
// ondisk's (quota.go, quota_tree.go), shared with mkfs and tunefs; fsck
// takes a data block's first all-zero record for a new id, as libocfs2
// does.

// quotaKind is user or group quota.
type quotaKind struct {
	name          string
	typ           ondisk.QuotaType
	feature       uint32
	global, local ondisk.SystemFileKind
}

var quotaKinds = []quotaKind{
	{"user", ondisk.UserQuota, ondisk.RoCompatUsrQuota, ondisk.SysUserQuota, ondisk.SysLocalUserQuota},
	{"group", ondisk.GroupQuota, ondisk.RoCompatGrpQuota, ondisk.SysGroupQuota, ondisk.SysLocalGroupQuota},
}

// dquot is one id's record: as it will be written and, when the file held
// one, the bytes it held.
type dquot struct {
	rec ondisk.GlobalDquot
	old []byte // nil: none
}

// dquots are a quota type's records by id, and the ids in the order
// libocfs2's quota hash would have been given them (as found: the file's
// records, then the owners the inode scan meets), which decides the order
// they are written in (ondisk.QuotaHashOrder) and so where each lands.
type dquots struct {
	byID  map[uint32]*dquot
	added []uint32
}

func newDquots() *dquots { return &dquots{byID: map[uint32]*dquot{}} }

func (s *dquots) find(id uint32) *dquot { return s.byID[id] }

// findCreate returns id's record, adding an empty one when there is none.
func (s *dquots) findCreate(id uint32) *dquot {
	q := s.byID[id]
	if q == nil {
		q = &dquot{rec: ondisk.GlobalDquot{ID: id}}
		s.byID[id] = q
		s.added = append(s.added, id)
	}
	return q
}

// each calls fn for every record in the order libocfs2 writes them.
func (s *dquots) each(fn func(q *dquot) error) error {
	for _, id := range ondisk.QuotaHashOrder(s.added) {
		if err := fn(s.byID[id]); err != nil {
			return err
		}
	}
	return nil
}

// quotaFile is one global quota file being read.
type quotaFile struct {
	kind   quotaKind
	ino    uint64
	d      *ondisk.Dinode
	blocks uint32 // dqi_blocks as fsck takes it: i_size in blocks
	seen   []bool // blocks of the tree already read
	dquots *dquots
	info   ondisk.GlobalQuotaInfo // its grace times and sync interval are written
	dirty  bool                   // something the file said was not taken as it was
}

// pass5 checks (and rewrites) the quota files.
func (c *checker) pass5() error {
	var kinds []quotaKind
	for _, k := range quotaKinds {
		if c.sb.Features.RoCompat&k.feature != 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	c.printf("Pass 5: Checking quota information\n")
	var files []*quotaFile
	for _, k := range kinds {
		f, err := c.loadQuotaFile(k)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	if err := c.computeQuotaUsage(files); err != nil {
		return c.fail("while computing quota usage: %v", err)
	}
	for _, f := range files {
		stale := 0
		f.dquots.each(func(q *dquot) error {
			q.rec.ResetGraceTimes()
			if img := q.rec.Bytes(); q.old == nil || string(q.old) != string(img[:]) {
				stale++
				c.verbosef("%s quota of id %d: inodes %d space %d, the file says %s\n", f.kind.name, q.rec.ID, q.rec.CurInodes, q.rec.CurSpace, q.describeOld())
			}
			return nil
		})
		locals, err := c.localQuotaFilesClean(f.kind)
		if err != nil {
			return err
		}
		if stale == 0 && !f.dirty && locals {
			continue
		}
		if !c.rw {
			if stale > 0 {
				c.printf("** The %s quota file is out of date for %d ids: o2go fsck -y (or fsck.ocfs2 -y) writes it again. **\n", f.kind.name, stale)
			}
			continue
		}
		// Like fsck.ocfs2, a rewrite is not a problem found: it changes
		// the exit code only through the problems above. (mkfs.ocfs2
		// counts root's inodes without lost+found, so a new volume's
		// files are out of date by one inode.)
		if err := c.writeQuotaFiles(f); err != nil {
			return c.fail("while writing the %s quota files: %v", f.kind.name, err)
		}
		if stale > 0 {
			c.printf("Wrote the %s quota file again: %d ids were out of date.\n", f.kind.name, stale)
		}
	}
	return nil
}

func (q *dquot) describeOld() string {
	old, err := ondisk.DecodeGlobalDquot(q.old)
	if err != nil {
		return "nothing"
	}
	return fmt.Sprintf("inodes %d space %d", old.CurInodes, old.CurSpace)
}

// quotaInode finds and reads a quota system file.
func (c *checker) quotaInode(kind ondisk.SystemFileKind, slot int) (uint64, *ondisk.Dinode, error) {
	blk, err := c.v.SystemFile(kind, slot)
	if err != nil {
		return 0, nil, err
	}
	c.v.Cache.Forget(blk)
	d, err := c.v.Cache.Dinode(blk)
	if err != nil {
		return 0, nil, err
	}
	if d.Extents == nil {
		return 0, nil, fmt.Errorf("quota file inode %d has no extent list", blk)
	}
	return blk, d, nil
}

// readQuotaBlock reads logical block n of a quota file the way
// ocfs2_file_read does: a block past i_size is a short read, a hole reads
// as zeros.
func (c *checker) readQuotaBlock(d *ondisk.Dinode, n uint32) ([]byte, error) {
	if (uint64(n)+1)*uint64(c.bs) > d.Size {
		return nil, fmt.Errorf("quota file inode %d: block %d is past its size %d (short read)", d.Blkno, n, d.Size)
	}
	m, err := extent.Lookup(c.v.Cache, d.Extents, uint32(uint64(n)/c.bpc), fmt.Sprintf("quota file inode %d", d.Blkno))
	if err != nil {
		return nil, err
	}
	if !m.Found || m.Rec.Flags&ondisk.ExtentUnwritten != 0 {
		return make([]byte, c.bs), nil
	}
	return c.readBlock(m.Rec.Blkno + (uint64(n) - uint64(m.Rec.Cpos)*c.bpc))
}

// quotaBlockValid checks a quota block's META_ECC trailer (always true
// without META_ECC).
func (c *checker) quotaBlockValid(b []byte) error {
	if !c.metaECC {
		return nil
	}
	if _, err := ondisk.VerifyBlockCheck(b, ondisk.QuotaCheckOffset(c.bs), "quota block"); err != nil {
		return errBadCRC
	}
	return nil
}

// loadQuotaFile reads a global quota file's limits (load_quota_file).
func (c *checker) loadQuotaFile(k quotaKind) (*quotaFile, error) {
	ino, d, err := c.quotaInode(k.global, -1)
	if err != nil {
		return nil, c.fail("while looking up global %s quota file: %v", k.name, err)
	}
	f := &quotaFile{kind: k, ino: ino, d: d, dquots: newDquots(), info: ondisk.NewGlobalQuotaInfo(k.typ)}
	b, err := c.readQuotaBlock(d, 0)
	if err != nil {
		return nil, c.fail("while reading global %s quota info block: %v", k.name, err)
	}
	info, err := ondisk.DecodeGlobalQuotaInfo(b)
	if err != nil {
		return nil, c.fail("global %s quota info block: %v", k.name, err)
	}
	blocks := min(d.Size/uint64(c.bs), 1<<32-1)
	ref := func(r uint32) bool { return r >= ondisk.QuotaTreeRootBlock && uint64(r) < blocks }
	valid := c.quotaBlockValid(b) == nil && info.Check(k.typ) == nil &&
		uint64(info.Blocks) == d.Size/uint64(c.bs) &&
		(info.FreeBlk == 0 || ref(info.FreeBlk)) && (info.FreeEntry == 0 || ref(info.FreeEntry))
	if valid || c.p.ask(QMagicInvalid, "%s quota info looks corrupt. Use its content:\nBlock grace time: %d sec\nInode grace time: %d sec\nCluster quota sync time: %d ms\n",
		k.name, info.BlockGrace, info.InodeGrace, info.SyncMS) {
		f.info = info
	}
	if !valid {
		f.dirty = true
	}
	f.blocks = uint32(blocks)
	f.seen = make([]bool, f.blocks)
	if !f.treeRef(ondisk.QuotaTreeRootBlock, 0, ondisk.QuotaTreeDepth(c.bs)) {
		return f, nil
	}
	if err := c.loadQuotaTree(f, ondisk.QuotaTreeRootBlock, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// treeRef says whether a reference to block r at depth is worth
// following (o2fsck_check_tree_ref).
func (f *quotaFile) treeRef(r uint32, depth, treeDepth int) bool {
	if r < ondisk.QuotaTreeRootBlock || r >= f.blocks {
		return false
	}
	return !(depth < treeDepth && f.seen[r])
}

// loadQuotaTree reads tree block blk at depth and what it refers to
// (o2fsck_check_tree_blk); its errors stop the pass, as in fsck.ocfs2.
func (c *checker) loadQuotaTree(f *quotaFile, blk uint32, depth int) error {
	treeDepth := ondisk.QuotaTreeDepth(c.bs)
	f.seen[blk] = true
	b, err := c.readQuotaBlock(f.d, blk)
	if err != nil {
		return c.fail("while reading %s quota file block %d: %v", f.kind.name, blk, err)
	}
	err = c.quotaBlockValid(b)
	if err != nil {
		f.dirty = true
		if !c.p.ask(QTreeBlkInvalid, "Corrupted %s quota tree block %d (checksum error: %s). Scan referenced blocks anyway?", f.kind.name, blk, "Bad CRC32") {
			return c.fail("the %s quota tree block %d fails its check", f.kind.name, blk)
		}
	}
	for i := 0; i < ondisk.QuotaRefsPerBlock(c.bs); i++ {
		r := get32(b, 4*i)
		if r == 0 || !f.treeRef(r, depth+1, treeDepth) {
			if r != 0 {
				c.verbosef("ignoring invalid or duplicate %s quota block reference %d\n", f.kind.name, r)
			}
			continue
		}
		switch {
		case depth+1 < treeDepth:
			err = c.loadQuotaTree(f, r, depth+1)
		case !f.seen[r]:
			err = c.loadQuotaData(f, r)
		default:
			continue
		}
		if err != nil {
			return err
		}
	}
	// fsck.ocfs2 returns the check's failure when no reference followed
	// replaced it.
	if err != nil {
		return c.fail("the %s quota tree block %d fails its check", f.kind.name, blk)
	}
	return nil
}

// loadQuotaData reads the records of data block blk (o2fsck_check_data_blk).
func (c *checker) loadQuotaData(f *quotaFile, blk uint32) error {
	f.seen[blk] = true
	b, err := c.readQuotaBlock(f.d, blk)
	if err != nil {
		return c.fail("while reading %s quota file block %d: %v", f.kind.name, blk, err)
	}
	valid := c.quotaBlockValid(b) == nil
	perBlock := ondisk.GlobalDquotsPerBlock(c.bs)
	ref := func(r uint32) bool { return r == 0 || (r >= ondisk.QuotaTreeRootBlock && r < f.blocks) }
	h, err := ondisk.DecodeQuotaDataHeader(b)
	if err != nil || !ref(h.NextFree) || !ref(h.PrevFree) || int(h.Entries) > perBlock {
		c.verbosef("corrupt %s quota leaf block header (block %d)\n", f.kind.name, blk)
		valid = false
	}
	if !valid {
		f.dirty = true
	}
	limits := func(d *ondisk.GlobalDquot) (uint64, uint64, uint64, uint64) {
		return d.ISoftLimit, d.IHardLimit, d.BSoftLimit, d.BHardLimit
	}
	for i := 0; i < perBlock; i++ {
		r := ondisk.GlobalDquotRecord(b, i)
		if ondisk.GlobalDquotUnused(r) {
			continue
		}
		found, err := ondisk.DecodeGlobalDquot(r)
		if err != nil {
			return c.fail("%s quota file block %d: %v", f.kind.name, blk, err)
		}
		id := found.ID
		q := f.dquots.find(id)
		fi, fh, fs, fb := limits(&found)
		switch {
		case q != nil && valid:
			ci, ch, cs, cb := limits(&q.rec)
			f.dirty = true
			if !c.p.ask(DupDqblkValid, "Duplicate %s quota structure for id %d:\nCurrent quota limits: Inode: %d %d Space: %d %d\nFound quota limits: Inode: %d %d Space: %d %d\nUse found limits?",
				f.kind.name, id, ci, ch, cs, cb, fi, fh, fs, fb) {
				continue
			}
		case q != nil:
			ci, ch, cs, cb := limits(&q.rec)
			if !c.p.ask(DupDqblkInvalid, "Found %s quota structure for id %d in a corrupted block and already have values for this id:\nCurrent quota limits: Inode: %d %d Space: %d %d\nFound quota limits: Inode: %d %d Space: %d %d\nUse found limits?",
				f.kind.name, id, ci, ch, cs, cb, fi, fh, fs, fb) {
				continue
			}
		case !valid:
			if !c.p.ask(DqblkInvalid, "Found corrupted %s quota structure for id %d:\nFound quota limits: Inode: %d %d Space: %d %d\nUse found limits?",
				f.kind.name, id, fi, fh, fs, fb) {
				continue
			}
		}
		if q == nil {
			q = f.dquots.findCreate(id)
		}
		q.rec = found
		q.rec.UseCount, q.rec.CurInodes, q.rec.CurSpace = 0, 0, 0
		q.old = append(q.old[:0], r...)
	}
	return nil
}

// computeQuotaUsage counts every valid inode that is not a system file
// (the root directory is one and counts) for its owner and its group
// (ocfs2_compute_quota_usage), in the order of the inode scan.
func (c *checker) computeQuotaUsage(files []*quotaFile) error {
	var usr, grp *dquots
	for _, f := range files {
		if f.kind.typ == ondisk.UserQuota {
			usr = f.dquots
		} else {
			grp = f.dquots
		}
	}
	csize := uint64(1) << c.csBits
	buf := blockdev.AlignedBuffer(scanChunkBytes, 4096)
	allocs := append([]uint64{c.sys.globalInodeAlloc}, c.sys.inodeAllocs...)
	for i, blk := range allocs {
		a, err := c.loadChainAlloc(blk, i-1)
		if err != nil {
			return fmt.Errorf("inode allocator %d: %w", blk, err)
		}
		if a.di.bmTotal() == 0 {
			continue
		}
		for _, gr := range a.groups {
			err := c.forEachGroupBlock(gr, buf, func(_ int, blk uint64, b []byte) error {
				d := dinode(b)
				if !d.valid() || d.fsGen() != c.gen || d.flags()&ondisk.InodeValid == 0 ||
					(d.flags()&ondisk.InodeSystem != 0 && blk != c.sb.RootBlkno) {
					return nil
				}
				space := uint64(d.clusters()) * csize
				for _, h := range []*dquots{usr, grp} {
					if h == nil {
						continue
					}
					id := get32(d, 0x18) // i_uid
					if h == grp {
						id = get32(d, 0x1C) // i_gid
					}
					q := h.findCreate(id)
					q.rec.CurSpace += space
					q.rec.CurInodes++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// localQuotaFilesClean says whether every node's local quota file of the
// kind is a clean, empty one (nothing to carry over to the global file).
func (c *checker) localQuotaFilesClean(k quotaKind) (bool, error) {
	for slot := 0; slot < c.maxSlots; slot++ {
		_, d, err := c.quotaInode(k.local, slot)
		if err != nil {
			return false, c.fail("while looking up the %s quota file of slot %d: %v", k.name, slot, err)
		}
		b, err := c.readQuotaBlock(d, 0)
		if err != nil || c.quotaBlockValid(b) != nil {
			return false, nil
		}
		if info, err := ondisk.DecodeLocalQuotaInfo(b); err != nil || info.Check(k.typ) != nil || info.Flags&ondisk.LocalQuotaClean == 0 {
			return false, nil
		}
	}
	return true, nil
}

// writeQuotaFiles writes the global file of f's kind from its records
// and formats every node's local file (recreate_quota_files).
func (c *checker) writeQuotaFiles(f *quotaFile) error {
	g, err := ondisk.NewGlobalQuotaFile(f.kind.typ, c.bs, f.info, ondisk.QuotaRecordFirstUnused)
	if err != nil {
		return err
	}
	if err := f.dquots.each(func(q *dquot) error { return g.Insert(q.rec) }); err != nil {
		return err
	}
	if err := c.rewriteQuotaFile(f.ino, g.Blocks()); err != nil {
		return err
	}
	for slot := 0; slot < c.maxSlots; slot++ {
		ino, _, err := c.quotaInode(f.kind.local, slot)
		if err != nil {
			return err
		}
		if err := c.rewriteQuotaFile(ino, ondisk.NewLocalQuotaFile(f.kind.typ, c.bs)); err != nil {
			return err
		}
	}
	return nil
}

// rewriteQuotaFile makes a quota file hold exactly blocks, each sealed
// with its check, through the offline write engine.
func (c *checker) rewriteQuotaFile(ino uint64, blocks [][]byte) error {
	e, err := c.repairEnvironment()
	if err != nil {
		return err
	}
	data := make([]byte, 0, len(blocks)*c.bs)
	for _, b := range blocks {
		if c.metaECC {
			ondisk.SetBlockCheck(b, ondisk.QuotaCheckOffset(c.bs))
		}
		data = append(data, b...)
	}
	if _, err := e.fs.Write(ino, data, 0); err != nil {
		return fmt.Errorf("quota file inode %d: %w", ino, err)
	}
	if err := e.fs.Truncate(ino, int64(len(data))); err != nil {
		return fmt.Errorf("quota file inode %d: %w", ino, err)
	}
	if err := e.fs.FlushTruncateLog(); err != nil {
		return fmt.Errorf("quota file inode %d: %w", ino, err)
	}
	c.v.Cache.Forget(ino)
	return nil
}
