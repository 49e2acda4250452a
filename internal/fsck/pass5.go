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
// Quota file layout (every block ends in an 8-byte trailer, the META_ECC
// check at blocksize-8):
//
//	header  0x00 le32 dqh_magic  0x00 global 0x0cf52470 user, +1 group;
//	             0x04 le32 dqh_version 0       local 0x0cf524c0 user, +1 group
//	global  0x08 le32 dqi_bgrace, 0x0C dqi_igrace, 0x10 dqi_syncms,
//	        0x14 dqi_blocks, 0x18 dqi_free_blk, 0x1C dqi_free_entry
//	local   0x08 le32 dqi_flags (1: clean), 0x0C dqi_chunks, 0x10 dqi_blocks
//	tree    (blocksize-8)/4 le32 block references per block, depth levels
//	data    0x00 le32 next_free, 0x04 prev_free, 0x08 le16 entries, then
//	        88-byte dquots from 0x10: le32 id, use_count; le64 ihardlimit,
//	        isoftlimit, curinodes, bhardlimit, bsoftlimit, curspace, btime,
//	        itime, pad, pad

const (
	quotaTrailer     = 8 // OCFS2_QBLK_RESERVED_SPACE
	quotaTreeOff     = 1 // QT_TREEOFF: the tree's root block
	quotaInfoOff     = 8
	quotaDataHdr     = 16
	dqSize           = 88
	quotaInitBlks    = 2
	quotaDefGrace    = 604800
	quotaDefSyncMS   = 10000
	quotaLocalClean  = 1       // OLQF_CLEAN
	quotaHashSize    = 8192    // libocfs2's DEFAULT_QUOTA_HASH_SIZE
	quotaHashMaxSize = 1 << 21 // MAX_QUOTA_HASH_SIZE
)

// The 88-byte global dquot, field offsets.
const (
	dqID        = 0x00
	dqUseCount  = 0x04
	dqIHard     = 0x08
	dqISoft     = 0x10
	dqCurInodes = 0x18
	dqBHard     = 0x20
	dqBSoft     = 0x28
	dqCurSpace  = 0x30
	dqBTime     = 0x38
	dqITime     = 0x40
	dqPad1      = 0x48
	dqPad2      = 0x50
)

// quotaKind is user or group quota.
type quotaKind struct {
	name          string
	feature       uint32
	global, local ondisk.SystemFileKind
	globalMagic   uint32
	localMagic    uint32
}

var quotaKinds = []quotaKind{
	{"user", ondisk.RoCompatUsrQuota, ondisk.SysUserQuota, ondisk.SysLocalUserQuota, 0x0cf52470, 0x0cf524c0},
	{"group", ondisk.RoCompatGrpQuota, ondisk.SysGroupQuota, ondisk.SysLocalGroupQuota, 0x0cf52471, 0x0cf524c1},
}

// dquot is one id's record: its on-disk image as found (or as created for
// an id the file did not have) and, once counted, its usage.
type dquot struct {
	rec  [dqSize]byte // the record to write
	old  []byte       // the record the file held (nil: none)
	next *dquot       // hash chain
}

func (q *dquot) id() uint32            { return get32(q.rec[:], dqID) }
func (q *dquot) get(off int) uint64    { return get64(q.rec[:], off) }
func (q *dquot) set(off int, v uint64) { put64(q.rec[:], off, v) }

// quotaHash is libocfs2's ocfs2_quota_hash: its iteration order decides
// the order the records are written in, and so where each one lands.
type quotaHash struct {
	heads []*dquot
	used  int
}

func newQuotaHash() *quotaHash { return &quotaHash{heads: make([]*dquot, quotaHashSize)} }

func (h *quotaHash) slot(id uint32) int { return int((uint64(id) * 5) & uint64(len(h.heads)-1)) }

func (h *quotaHash) find(id uint32) *dquot {
	for q := h.heads[h.slot(id)]; q != nil; q = q.next {
		if q.id() == id {
			return q
		}
	}
	return nil
}

func (h *quotaHash) push(q *dquot) {
	s := h.slot(q.id())
	q.next = h.heads[s]
	h.heads[s] = q
}

// findCreate returns id's record, adding an empty one at the head of its
// chain when there is none (growing the table as libocfs2 does).
func (h *quotaHash) findCreate(id uint32) *dquot {
	if q := h.find(id); q != nil {
		return q
	}
	if h.used > len(h.heads) && len(h.heads)*2 < quotaHashMaxSize {
		old := h.heads
		h.heads = make([]*dquot, 2*len(old))
		for _, q := range old {
			for q != nil {
				next := q.next
				h.push(q)
				q = next
			}
		}
	}
	q := &dquot{}
	put32(q.rec[:], dqID, id)
	h.push(q)
	h.used++
	return q
}

func (h *quotaHash) each(fn func(q *dquot) error) error {
	for _, q := range h.heads {
		for ; q != nil; q = q.next {
			if err := fn(q); err != nil {
				return err
			}
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
	hash   *quotaHash
	info   [3]uint32 // bgrace, igrace, syncms to write
	dirty  bool      // something the file said was not taken as it was
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
		f.hash.each(func(q *dquot) error {
			q.resetGraceTimes()
			if q.old == nil || string(q.old) != string(q.rec[:]) {
				stale++
				c.verbosef("%s quota of id %d: inodes %d space %d, the file says %s\n", f.kind.name, q.id(), q.get(dqCurInodes), q.get(dqCurSpace), q.describeOld())
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

// resetGraceTimes drops grace times that no longer run: under the soft
// limit, or with none (write_release_quota_hash).
func (q *dquot) resetGraceTimes() {
	if q.get(dqISoft) == 0 || q.get(dqCurInodes) < q.get(dqISoft) {
		q.set(dqITime, 0)
	}
	if q.get(dqBSoft) == 0 || q.get(dqCurSpace) < q.get(dqBSoft) {
		q.set(dqBTime, 0)
	}
}

func (q *dquot) describeOld() string {
	if q.old == nil {
		return "nothing"
	}
	return fmt.Sprintf("inodes %d space %d", get64(q.old, dqCurInodes), get64(q.old, dqCurSpace))
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
	if _, err := ondisk.VerifyBlockCheck(b, c.bs-quotaTrailer, "quota block"); err != nil {
		return errBadCRC
	}
	return nil
}

// quotaTreeDepth is ocfs2_qtree_depth.
func quotaTreeDepth(bs int) int {
	epb := uint64(bs-quotaTrailer) >> 2
	entries := epb
	i := 1
	for entries < 1<<32 {
		entries *= epb
		i++
	}
	return i
}

// quotaDqPerBlock is ocfs2_global_dqstr_in_blk.
func quotaDqPerBlock(bs int) int { return (bs - quotaTrailer - quotaDataHdr) / dqSize }

// loadQuotaFile reads a global quota file's limits (load_quota_file).
func (c *checker) loadQuotaFile(k quotaKind) (*quotaFile, error) {
	ino, d, err := c.quotaInode(k.global, -1)
	if err != nil {
		return nil, c.fail("while looking up global %s quota file: %v", k.name, err)
	}
	f := &quotaFile{kind: k, ino: ino, d: d, hash: newQuotaHash()}
	f.info = [3]uint32{quotaDefGrace, quotaDefGrace, quotaDefSyncMS}
	b, err := c.readQuotaBlock(d, 0)
	if err != nil {
		return nil, c.fail("while reading global %s quota info block: %v", k.name, err)
	}
	blocks := min(d.Size/uint64(c.bs), 1<<32-1)
	info := b[quotaInfoOff:]
	ref := func(r uint32) bool { return r >= quotaTreeOff && uint64(r) < blocks }
	valid := c.quotaBlockValid(b) == nil && get32(b, 0) == k.globalMagic && get32(b, 4) == 0 &&
		uint64(get32(info, 12)) == d.Size/uint64(c.bs) &&
		(get32(info, 16) == 0 || ref(get32(info, 16))) && (get32(info, 20) == 0 || ref(get32(info, 20)))
	if valid || c.p.ask(QMagicInvalid, "%s quota info looks corrupt. Use its content:\nBlock grace time: %d sec\nInode grace time: %d sec\nCluster quota sync time: %d ms\n",
		k.name, get32(info, 0), get32(info, 4), get32(info, 8)) {
		f.info = [3]uint32{get32(info, 0), get32(info, 4), get32(info, 8)}
	}
	if !valid {
		f.dirty = true
	}
	f.blocks = uint32(blocks)
	f.seen = make([]bool, f.blocks)
	if !f.treeRef(quotaTreeOff, 0, quotaTreeDepth(c.bs)) {
		return f, nil
	}
	if err := c.loadQuotaTree(f, quotaTreeOff, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// treeRef says whether a reference to block r at depth is worth
// following (o2fsck_check_tree_ref).
func (f *quotaFile) treeRef(r uint32, depth, treeDepth int) bool {
	if r < quotaTreeOff || r >= f.blocks {
		return false
	}
	return !(depth < treeDepth && f.seen[r])
}

// loadQuotaTree reads tree block blk at depth and what it refers to
// (o2fsck_check_tree_blk); its errors stop the pass, as in fsck.ocfs2.
func (c *checker) loadQuotaTree(f *quotaFile, blk uint32, depth int) error {
	treeDepth := quotaTreeDepth(c.bs)
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
	epb := (c.bs - quotaTrailer) >> 2
	for i := 0; i < epb; i++ {
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
	perBlock := quotaDqPerBlock(c.bs)
	ref := func(r uint32) bool { return r == 0 || (r >= quotaTreeOff && r < f.blocks) }
	if !ref(get32(b, 0)) || !ref(get32(b, 4)) || int(get16(b, 8)) > perBlock {
		c.verbosef("corrupt %s quota leaf block header (block %d)\n", f.kind.name, blk)
		valid = false
	}
	if !valid {
		f.dirty = true
	}
	limits := func(r []byte) (uint64, uint64, uint64, uint64) {
		return get64(r, dqISoft), get64(r, dqIHard), get64(r, dqBSoft), get64(r, dqBHard)
	}
	var zero [dqSize]byte
	for i := 0; i < perBlock; i++ {
		r := b[quotaDataHdr+i*dqSize : quotaDataHdr+(i+1)*dqSize]
		if string(r) == string(zero[:]) {
			continue
		}
		id := get32(r, dqID)
		q := f.hash.find(id)
		fi, fh, fs, fb := limits(r)
		switch {
		case q != nil && valid:
			ci, ch, cs, cb := limits(q.rec[:])
			f.dirty = true
			if !c.p.ask(DupDqblkValid, "Duplicate %s quota structure for id %d:\nCurrent quota limits: Inode: %d %d Space: %d %d\nFound quota limits: Inode: %d %d Space: %d %d\nUse found limits?",
				f.kind.name, id, ci, ch, cs, cb, fi, fh, fs, fb) {
				continue
			}
		case q != nil:
			ci, ch, cs, cb := limits(q.rec[:])
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
			q = f.hash.findCreate(id)
		}
		copy(q.rec[:], r)
		q.old = append(q.old[:0], r...)
		q.set(dqPad1, 0)
		q.set(dqPad2, 0)
		put32(q.rec[:], dqUseCount, 0)
		q.set(dqCurInodes, 0)
		q.set(dqCurSpace, 0)
	}
	return nil
}

// computeQuotaUsage counts every valid inode that is not a system file
// (the root directory is one and counts) for its owner and its group
// (ocfs2_compute_quota_usage), in the order of the inode scan.
func (c *checker) computeQuotaUsage(files []*quotaFile) error {
	var usr, grp *quotaHash
	for _, f := range files {
		if f.kind.global == ondisk.SysUserQuota {
			usr = f.hash
		} else {
			grp = f.hash
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
				for _, h := range []*quotaHash{usr, grp} {
					if h == nil {
						continue
					}
					id := get32(d, 0x18) // i_uid
					if h == grp {
						id = get32(d, 0x1C) // i_gid
					}
					q := h.findCreate(id)
					q.set(dqCurSpace, q.get(dqCurSpace)+space)
					q.set(dqCurInodes, q.get(dqCurInodes)+1)
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
		if err != nil || c.quotaBlockValid(b) != nil || get32(b, 0) != k.localMagic || get32(b, 4) != 0 ||
			get32(b, quotaInfoOff)&quotaLocalClean == 0 {
			return false, nil
		}
	}
	return true, nil
}

// quotaTree builds a global quota file in memory the way libocfs2's
// ocfs2_init_global_quota_file and ocfs2_write_dquot do.
type quotaTree struct {
	bs, depth, epb, perBlock int
	blocks                   [][]byte
	freeEntry                uint32
}

func newQuotaTree(bs int) *quotaTree {
	t := &quotaTree{bs: bs, depth: quotaTreeDepth(bs), epb: (bs - quotaTrailer) >> 2, perBlock: quotaDqPerBlock(bs)}
	t.blocks = [][]byte{make([]byte, bs), make([]byte, bs)}
	return t
}

func (t *quotaTree) newBlock() uint32 {
	t.blocks = append(t.blocks, make([]byte, t.bs))
	return uint32(len(t.blocks) - 1)
}

// index is ocfs2_qtree_index: the reference slot of id at depth.
func (t *quotaTree) index(id uint32, depth int) int {
	for d := t.depth - depth - 1; d > 0; d-- {
		id /= uint32(t.epb)
	}
	return int(id % uint32(t.epb))
}

// insert places id in the tree and returns where its record goes.
func (t *quotaTree) insert(id uint32) ([]byte, error) {
	root := uint32(quotaTreeOff)
	return t.insertAt(id, &root, 0)
}

func (t *quotaTree) insertAt(id uint32, blk *uint32, depth int) ([]byte, error) {
	if *blk == 0 {
		*blk = t.newBlock()
	}
	b := t.blocks[*blk]
	slot := 4 * t.index(id, depth)
	next := get32(b, slot)
	var rec []byte
	var err error
	if depth == t.depth-1 {
		if next != 0 {
			return nil, fmt.Errorf("id %d is in the quota tree twice", id)
		}
		rec, next, err = t.freeRecord()
	} else {
		was := next
		rec, err = t.insertAt(id, &next, depth+1)
		if was != 0 {
			return rec, err
		}
	}
	if err != nil {
		return nil, err
	}
	put32(b, slot, next)
	return rec, nil
}

// freeRecord finds a free record in the first data block with one,
// taking a new data block when none has (ocfs2_find_free_dqentry).
func (t *quotaTree) freeRecord() ([]byte, uint32, error) {
	blk := t.freeEntry
	if blk == 0 {
		blk = t.newBlock()
		t.freeEntry = blk
	}
	b := t.blocks[blk]
	entries := int(get16(b, 8))
	if entries+1 >= t.perBlock {
		// Full after this one: off the list of blocks with free entries.
		next, prev := get32(b, 0), get32(b, 4)
		if next != 0 {
			put32(t.blocks[next], 4, prev)
		}
		if prev != 0 {
			put32(t.blocks[prev], 0, next)
		} else {
			t.freeEntry = next
		}
		put32(b, 0, 0)
		put32(b, 4, 0)
	}
	put16(b, 8, uint16(entries+1))
	var zero [dqSize]byte
	for i := 0; i < t.perBlock; i++ {
		r := b[quotaDataHdr+i*dqSize : quotaDataHdr+(i+1)*dqSize]
		if string(r) == string(zero[:]) {
			return r, blk, nil
		}
	}
	return nil, 0, fmt.Errorf("quota data block %d has no free record", blk)
}

// writeQuotaFiles writes the global file of f's kind from its records
// and formats every node's local file (recreate_quota_files).
func (c *checker) writeQuotaFiles(f *quotaFile) error {
	t := newQuotaTree(c.bs)
	err := f.hash.each(func(q *dquot) error {
		rec, err := t.insert(q.id())
		if err != nil {
			return err
		}
		copy(rec, q.rec[:])
		return nil
	})
	if err != nil {
		return err
	}
	h := t.blocks[0]
	put32(h, 0, f.kind.globalMagic)
	put32(h, 4, 0)
	info := h[quotaInfoOff:]
	put32(info, 0, f.info[0])
	put32(info, 4, f.info[1])
	put32(info, 8, f.info[2])
	put32(info, 12, uint32(len(t.blocks)))
	put32(info, 16, 0)
	put32(info, 20, t.freeEntry)
	if err := c.rewriteQuotaFile(f.ino, t.blocks); err != nil {
		return err
	}
	for slot := 0; slot < c.maxSlots; slot++ {
		ino, _, err := c.quotaInode(f.kind.local, slot)
		if err != nil {
			return err
		}
		blocks := [][]byte{make([]byte, c.bs), make([]byte, c.bs)}
		put32(blocks[0], 0, f.kind.localMagic)
		put32(blocks[0], quotaInfoOff, quotaLocalClean)
		put32(blocks[0], quotaInfoOff+4, 1)             // dqi_chunks
		put32(blocks[0], quotaInfoOff+8, quotaInitBlks) // dqi_blocks
		if err := c.rewriteQuotaFile(ino, blocks); err != nil {
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
			ondisk.SetBlockCheck(b, c.bs-quotaTrailer)
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
