package dir

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// How far an insert into an indexed directory looks for a block with room
// before it grows the directory. The kernel walks the whole free-space
// list, which costs a block read per listed block: a directory whose
// blocks all keep small holes (names of mixed lengths) makes every insert
// walk all of them, and a directory of a million names has tens of
// thousands. o2go looks at the first freeListWalk blocks of the list (a
// trailer each, db_free_rec_len telling which deserve a look at their
// entries), then at freeSpaceProbes blocks picked by the name's hash, so
// that space freed deep in the list is found again; otherwise it adds a
// block. Directories of up to freeListWalk blocks with room are searched
// exactly as the kernel searches them. The list itself is kept exactly as
// the kernel keeps it: every block with a hole of at least 16 bytes, and
// no other. (Variables so that tests can compare with the kernel's
// unbounded walk.)
var (
	freeListWalk    = 128
	freeSpaceProbes = 16
)

// rootRef is the dx root read (or made) for change: r is a private copy.
type rootRef struct {
	blkno uint64
	buf   *metacache.Buffer // nil for a root not written yet
	r     *ondisk.DXRoot
}

// leafRef is a dx leaf read (or formatted) for change: l is a private copy.
type leafRef struct {
	buf *metacache.Buffer
	l   *ondisk.DXLeaf
}

// peekTrailer returns the checked trailer of directory block blkno of an
// indexed directory without walking its entries.
func (e *editor) peekTrailer(blkno uint64) (*ondisk.DirTrailer, error) {
	_, t, err := e.C.DirBlock(blkno, e.d.Blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	if t == nil {
		return nil, e.corrupt(blkno, "dir block trailer", "db_signature", "block of an indexed directory has no DIRTRL1 trailer")
	}
	return t, nil
}

func (e *editor) indexOwner() string { return e.owner() + " index" }

// dxEntry is name's index entry, hashed as ocfs2-tools and x86 kernels
// before 6.2 hash it (signed char).
func (e *editor) dxEntry(name string, blk uint64) ondisk.DXEntry {
	major, minor := ondisk.DXHashString(name, e.SB.DxSeed, ondisk.SignedChar)
	return ondisk.DXEntry{MajorHash: major, MinorHash: minor, DirentBlk: blk}
}

func (e *editor) newRoot(mb extent.MetaBlock, inline bool) *rootRef {
	r := &ondisk.DXRoot{SuballocSlot: mb.Slot, SuballocBit: mb.Bit, SuballocLoc: mb.GroupBlkno,
		FSGeneration: e.C.FSGeneration(), Blkno: mb.Blkno, DirBlkno: e.d.Blkno}
	if inline {
		r.Flags = ondisk.DXRootFlagInline
		r.Entries.Count = uint16(ondisk.DXRootEntryCapacity(e.bs))
	} else {
		r.List.Count = uint16(ondisk.DXRootExtentCapacity(e.bs))
	}
	return &rootRef{blkno: mb.Blkno, r: r}
}

// readRoot reads the directory's dx root, checked, as a private copy.
func (e *editor) readRoot() (*rootRef, error) {
	blk := e.d.DxRoot
	if blk == 0 {
		return nil, e.corrupt(e.d.Blkno, "dinode", "i_dx_root", "is 0 in a directory flagged INDEXED_DIR")
	}
	if _, err := e.C.DXRoot(blk, e.d.Blkno); err != nil {
		return nil, fmt.Errorf("%s: %w", e.indexOwner(), err)
	}
	buf, err := e.C.Get(blk)
	if err != nil {
		return nil, err
	}
	r, err := ondisk.DecodeDXRoot(buf.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.indexOwner(), e.C.Annotate(err, blk))
	}
	if !r.Inline() {
		if err := r.List.CheckOrder("dx root"); err != nil {
			return nil, fmt.Errorf("%s: %w", e.indexOwner(), e.C.Annotate(err, blk))
		}
	}
	return &rootRef{blkno: blk, buf: buf, r: r}, nil
}

func (e *editor) writeRoot(ref *rootRef) error {
	if ref.buf == nil {
		buf, err := e.Tx.New(ref.blkno)
		if err != nil {
			return err
		}
		ref.buf = buf
	} else if err := e.Tx.Access(ref.buf); err != nil {
		return err
	}
	ref.r.Encode(ref.buf.Data)
	e.Tx.Dirty(ref.buf, ondisk.DXRootCheckOffset)
	return nil
}

func (e *editor) readLeaf(blk uint64) (*leafRef, error) {
	if _, err := e.C.DXLeaf(blk); err != nil {
		return nil, fmt.Errorf("%s: %w", e.indexOwner(), err)
	}
	buf, err := e.C.Get(blk)
	if err != nil {
		return nil, err
	}
	l, err := ondisk.DecodeDXLeaf(buf.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.indexOwner(), e.C.Annotate(err, blk))
	}
	return &leafRef{buf: buf, l: l}, nil
}

func (e *editor) writeLeaf(ref *leafRef) error {
	if err := e.Tx.Access(ref.buf); err != nil {
		return err
	}
	ref.l.Encode(ref.buf.Data)
	e.Tx.Dirty(ref.buf, ondisk.DXLeafCheckOffset)
	return nil
}

// formatLeaves makes the blocks of the index cluster starting at block
// start empty dx leaves (not yet written).
func (e *editor) formatLeaves(start uint64) ([]*leafRef, error) {
	out := make([]*leafRef, e.bpc)
	for i := range out {
		buf, err := e.Tx.New(start + uint64(i))
		if err != nil {
			return nil, err
		}
		out[i] = &leafRef{buf: buf, l: &ondisk.DXLeaf{Blkno: start + uint64(i), FSGeneration: e.C.FSGeneration(),
			List: ondisk.DXEntryList{Count: uint16(ondisk.DXLeafCapacity(e.bs))}}}
	}
	return out, nil
}

// insertIndexCluster maps hash cpos to the index cluster at physical
// cluster start in root's extent tree (dr_clusters and dr_last_eb_blk
// follow).
func (e *editor) insertIndexCluster(root *rootRef, cpos, start uint32) error {
	t := &extent.Tree{C: e.C, Tx: e.Tx, Alloc: e.meta(), Root: &root.r.List, BlocksPerCluster: uint64(e.bpc),
		Owner: e.indexOwner(), LastEB: root.r.LastEBBlk}
	saved := root.r.List
	saved.Recs = slices.Clone(saved.Recs)
	if err := t.Insert(ondisk.ExtentRec{Cpos: cpos, Clusters: 1, Blkno: e.clusterBlock(start)}); err != nil {
		root.r.List = saved
		return err
	}
	root.r.LastEBBlk = t.LastEB
	root.r.Clusters++
	return nil
}

// leafPos is where a hash lives in an index tree.
type leafPos struct {
	blk          uint64 // the dx leaf
	clusterStart uint64 // first block of its cluster
	cpos         uint32 // the hash the cluster starts at (ocfs2_dx_dir_lookup's cpos)
}

// findLeaf finds the leaf for (major, minor) the way ocfs2_dx_dir_lookup
// does: the record with the greatest e_cpos <= major, the cluster
// major - e_cpos within it (its last when major lies beyond), and the block
// minor & (blocks per cluster - 1) within that.
func (e *editor) findLeaf(root *rootRef, major, minor uint32) (leafPos, error) {
	leaf, err := extent.FindLeaf(e.C, &root.r.List, major, e.indexOwner())
	if err != nil {
		return leafPos{}, err
	}
	idx := -1
	for i, r := range leaf.List.Recs {
		if r.Clusters > 0 && r.Cpos <= major {
			idx = i
		}
	}
	if idx < 0 {
		return leafPos{}, e.corrupt(root.blkno, "dx root", "dr_list", "no index record covers hash 0x%08x", major)
	}
	rec := leaf.List.Recs[idx]
	c := major - rec.Cpos
	if c >= rec.Clusters {
		c = rec.Clusters - 1
	}
	start := rec.Blkno + uint64(c)*uint64(e.bpc)
	if start+uint64(e.bpc) > e.C.Blocks() {
		return leafPos{}, e.corrupt(root.blkno, "dx root", "dr_list", "index cluster at block %d lies beyond the device", start)
	}
	return leafPos{blk: start + uint64(minor&uint32(e.bpc-1)), clusterStart: start, cpos: rec.Cpos + c}, nil
}

// locateIndexed finds name through the index, trying the unsigned-char
// hash too for names with bytes >= 0x80 (what newer kernels write).
func (e *editor) locateIndexed(name string) (location, bool, error) {
	loc, found, err := e.dir().locateIndexed(name, ondisk.SignedChar)
	if err != nil || found || !hasHighBytes(name) {
		return loc, found, err
	}
	return e.dir().locateIndexed(name, ondisk.UnsignedChar)
}

// addIndexed is ocfs2_prepare_dx_dir_for_insert followed by
// __ocfs2_add_entry: make room in the index (expanding an inline root,
// rebalancing a full leaf), find a block with room through the free-space
// list (or grow the directory), then add the entry, its index entry and
// fix the block's place in the list.
//
// Every block the change depends on is read and checked before the first
// write, so that damage found on the way fails the operation with nothing
// changed.
func (e *editor) addIndexed(name string, ino uint64, ft uint8) error {
	if _, found, err := e.locateIndexed(name); err != nil {
		return err
	} else if found {
		return fmt.Errorf("%s: adding %q: %w", e.owner(), name, syscall.EEXIST)
	}
	root, err := e.readRoot()
	if err != nil {
		return err
	}
	if root.r.NumEntries >= MaxIndexedEntries {
		return fmt.Errorf("%s: %d names already: %w", e.owner(), root.r.NumEntries, syscall.ENOSPC)
	}
	x := e.dxEntry(name, 0)

	// Plan.
	var leaf *leafRef
	var pos leafPos
	var cluster []*leafRef // the full leaf's cluster, when it must split
	if !root.r.Inline() {
		if pos, err = e.findLeaf(root, x.MajorHash, x.MinorHash); err != nil {
			return err
		}
		if leaf, err = e.readLeaf(pos.blk); err != nil {
			return err
		}
		if leaf.l.List.Full() {
			if cluster, err = e.readCluster(pos, leaf); err != nil {
				return err
			}
		}
	}
	b, prev, listed, err := e.findSpace(root, name, x)
	if err != nil {
		return err
	}
	if b == nil {
		if err := e.checkExtend(); err != nil {
			return err
		}
	}

	// Change.
	switch {
	case root.r.Inline() && root.r.Entries.Full():
		if err := e.expandRoot(root); err != nil {
			return err
		}
		if leaf, err = e.leafFor(root, x); err != nil {
			return err
		}
	case cluster != nil:
		if err := e.rebalance(root, cluster, pos, x.MajorHash); err != nil {
			return err
		}
		if leaf, err = e.leafFor(root, x); err != nil {
			return err
		}
		if leaf.l.List.Full() {
			return fmt.Errorf("%s: dx leaf %d is still full after a rebalance: %w", e.indexOwner(), leaf.l.Blkno, syscall.ENOSPC)
		}
	}
	if b == nil {
		if b, err = e.extend(root); err != nil {
			return err
		}
		prev, listed = nil, true
	}
	if err := e.Tx.Access(b.buf); err != nil {
		return err
	}
	if err := e.insertInto(b, name, ino, ft); err != nil {
		return err
	}
	x.DirentBlk = b.blkno
	if leaf != nil {
		leaf.l.List.Entries = append(leaf.l.List.Entries, x)
		if err := e.writeLeaf(leaf); err != nil {
			return err
		}
	} else {
		root.r.Entries.Entries = append(root.r.Entries.Entries, x)
	}
	root.r.NumEntries++
	if b.trailer.FreeRecLen == 0 && listed {
		if err := e.unlink(root, prev, b); err != nil {
			return err
		}
	}
	e.writeBlock(b)
	return e.writeRoot(root)
}

// leafFor reads the leaf that must take x.
func (e *editor) leafFor(root *rootRef, x ondisk.DXEntry) (*leafRef, error) {
	pos, err := e.findLeaf(root, x.MajorHash, x.MinorHash)
	if err != nil {
		return nil, err
	}
	return e.readLeaf(pos.blk)
}

// readCluster reads every leaf of the index cluster holding the full leaf
// at pos (which is given, already read).
func (e *editor) readCluster(pos leafPos, full *leafRef) ([]*leafRef, error) {
	out := make([]*leafRef, e.bpc)
	for i := range out {
		blk := pos.clusterStart + uint64(i)
		if blk == pos.blk {
			out[i] = full
			continue
		}
		l, err := e.readLeaf(blk)
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// checkExtend reads the blocks growing the directory will go through
// (the rightmost path of its extent tree), so that extend finds no damage
// after other blocks were changed.
func (e *editor) checkExtend() error {
	n := e.dir().NumBlocks()
	if n == 0 {
		return e.corrupt(e.d.Blkno, "dinode", "i_size", "block directory has no blocks")
	}
	_, err := e.dir().BlockAt(n - 1)
	return err
}

// findSpace looks, without changing anything, for a block that can take
// name: the first blocks of the free-space list, then blocks picked by the
// name's hash. db_free_rec_len picks the candidates, as in the kernel; the
// entries themselves then confirm the room (mkfs.ocfs2 leaves some
// trailers stale). prev is the list block
// before b (nil: the root), listed whether b was found on the list. A nil
// b means the directory must grow.
func (e *editor) findSpace(root *rootRef, name string, x ondisk.DXEntry) (b, prev *dirBlock, listed bool, err error) {
	need := ondisk.RecLen(len(name))
	next := root.r.FreeBlk
	var prevBlk uint64
	for steps := 0; next != 0 && steps < freeListWalk; steps++ {
		t, err := e.peekTrailer(next)
		if err != nil {
			return nil, nil, false, err
		}
		if int(t.FreeRecLen) >= need {
			cur, err := e.readBlock(next)
			if err != nil {
				return nil, nil, false, err
			}
			if int(largestFree(cur.area)) >= need {
				if prevBlk != 0 {
					if prev, err = e.readBlock(prevBlk); err != nil {
						return nil, nil, false, err
					}
				}
				return cur, prev, true, nil
			}
		}
		prevBlk, next = next, t.FreeNext
	}
	n := e.dir().NumBlocks()
	for i := 0; i < freeSpaceProbes && n > 0; i++ {
		phys, err := e.dir().BlockAt(probeIndex(x, i) % n)
		if err != nil {
			return nil, nil, false, err
		}
		// Only blocks the list holds (db_free_rec_len != 0), and only if
		// they keep a hole after the insert: taking one off the list would
		// need its predecessor, which only a walk finds.
		t, err := e.peekTrailer(phys)
		if err != nil {
			return nil, nil, false, err
		}
		if t.FreeRecLen == 0 || int(t.FreeRecLen) < need {
			continue
		}
		cur, err := e.readBlock(phys)
		if err != nil {
			return nil, nil, false, err
		}
		if int(largestFree(cur.area)) < need {
			continue
		}
		tmp := slices.Clone(cur.area)
		if _, err := ondisk.InsertDirEntry(tmp, 1, 0, name); err != nil || largestFree(tmp) == 0 {
			continue
		}
		return cur, nil, false, nil
	}
	return nil, nil, false, nil
}

// probeIndex spreads the probes of one name over the directory.
func probeIndex(x ondisk.DXEntry, i int) uint64 {
	z := uint64(x.MajorHash)<<32 | uint64(x.MinorHash)
	z += uint64(i+1) * 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// unlink takes b off the free-space list (ocfs2_remove_block_from_free_list):
// its predecessor (prev, or the root when prev is nil) skips it, and its own
// link is cleared. b's trailer copy is changed; the caller writes b.
func (e *editor) unlink(root *rootRef, prev, b *dirBlock) error {
	if prev == nil {
		root.r.FreeBlk = b.trailer.FreeNext
		if err := e.writeRoot(root); err != nil {
			return err
		}
	} else {
		if err := e.Tx.Access(prev.buf); err != nil {
			return err
		}
		prev.trailer.FreeNext = b.trailer.FreeNext
		e.writeBlock(prev)
	}
	b.trailer.FreeNext = 0
	return nil
}

// expandRoot moves a full inline root's entries into a new cluster of
// leaves, each to the leaf its minor hash picks (ocfs2_expand_inline_dx_root).
func (e *editor) expandRoot(root *rootRef) error {
	entries := root.r.Entries.Entries
	per := make([]int, e.bpc)
	for _, x := range entries {
		per[int(x.MinorHash)&(e.bpc-1)]++
	}
	for i, k := range per {
		if k > ondisk.DXLeafCapacity(e.bs) {
			return fmt.Errorf("%s: %d entries hash to leaf %d of capacity %d: %w", e.indexOwner(), k, i, ondisk.DXLeafCapacity(e.bs), syscall.ENOSPC)
		}
	}
	cl := &claims{e: e}
	start, _, err := cl.cluster(0, 1, 1)
	if err != nil {
		return err
	}
	leaves, err := e.formatLeaves(e.clusterBlock(start))
	if err != nil {
		return cl.undo(err)
	}
	for _, x := range entries {
		l := leaves[int(x.MinorHash)&(e.bpc-1)]
		l.l.List.Entries = append(l.l.List.Entries, x)
	}
	root.r.Flags &^= ondisk.DXRootFlagInline
	root.r.Entries = ondisk.DXEntryList{}
	root.r.List = ondisk.ExtentList{Count: uint16(ondisk.DXRootExtentCapacity(e.bs))}
	if err := e.insertIndexCluster(root, 0, start); err != nil {
		return cl.undo(err)
	}
	for _, l := range leaves {
		if err := e.writeLeaf(l); err != nil {
			return err
		}
	}
	return e.writeRoot(root)
}

func compareDX(a, b ondisk.DXEntry) int {
	if c := cmp.Compare(a.MajorHash, b.MajorHash); c != 0 {
		return c
	}
	return cmp.Compare(a.MinorHash, b.MinorHash)
}

// findSplit picks the major hash to split a full, sorted leaf at
// (ocfs2_dx_dir_find_leaf_split): the first hash above leafCpos from the
// median on; when every entry has one hash, a value that puts the new
// entry on the other side of the split from them, or ENOSPC when it has
// that very hash.
func (e *editor) findSplit(blk uint64, sorted []ondisk.DXEntry, leafCpos, insert uint32) (uint32, error) {
	allSame := true
	for i := 1; i < len(sorted); i++ {
		if sorted[i].MajorHash != sorted[0].MajorHash {
			allSame = false
			break
		}
	}
	if allSame {
		val := sorted[0].MajorHash
		switch {
		case val == insert:
			return 0, fmt.Errorf("%s: dx leaf %d is full of names with major hash 0x%08x, the new name's too: %w", e.indexOwner(), blk, val, syscall.ENOSPC)
		case val == leafCpos:
			if leafCpos == math.MaxUint32 {
				return 0, e.corrupt(blk, "dx leaf", "dl_list", "entries of hash 0x%08x cannot be split", val)
			}
			return leafCpos + 1, nil
		case val > insert:
			return val, nil
		}
		return insert, nil
	}
	for i := len(sorted) / 2; i < len(sorted); i++ {
		if sorted[i].MajorHash > leafCpos {
			return sorted[i].MajorHash, nil
		}
	}
	return 0, e.corrupt(blk, "dx leaf", "dl_list", "no entry hashes above the cluster's start 0x%08x", leafCpos)
}

// rebalance splits the full leaf at pos as ocfs2_dx_dir_rebalance does:
// the leaf is sorted, a split hash chosen, a new index cluster mapped at
// that hash, and every entry of the old cluster's leaves (cluster, read by
// the caller) whose major hash is at least the split moves to the leaf at
// the same position in the new cluster.
func (e *editor) rebalance(root *rootRef, cluster []*leafRef, pos leafPos, insertMajor uint32) error {
	if root.r.Clusters == math.MaxUint32 {
		return fmt.Errorf("%s: index has %d clusters: %w", e.indexOwner(), root.r.Clusters, syscall.ENOSPC)
	}
	full := cluster[pos.blk-pos.clusterStart]
	sorted := slices.Clone(full.l.List.Entries)
	slices.SortFunc(sorted, compareDX)
	split, err := e.findSplit(pos.blk, sorted, pos.cpos, insertMajor)
	if err != nil {
		return err
	}
	if split <= pos.cpos {
		return e.corrupt(pos.blk, "dx leaf", "dl_list", "split hash 0x%08x is not above the cluster's start 0x%08x", split, pos.cpos)
	}
	cl := &claims{e: e}
	start, _, err := cl.cluster(uint32(pos.clusterStart/uint64(e.bpc))+1, 1, 1)
	if err != nil {
		return err
	}
	if err := e.insertIndexCluster(root, split, start); err != nil {
		return cl.undo(err)
	}
	fresh, err := e.formatLeaves(e.clusterBlock(start))
	if err != nil {
		return err
	}
	full.l.List.Entries = sorted
	for i, o := range cluster {
		var keep []ondisk.DXEntry
		for _, x := range o.l.List.Entries {
			if x.MajorHash >= split {
				fresh[i].l.List.Entries = append(fresh[i].l.List.Entries, x)
			} else {
				keep = append(keep, x)
			}
		}
		o.l.List.Entries = keep
		if err := e.writeLeaf(o); err != nil {
			return err
		}
		if err := e.writeLeaf(fresh[i]); err != nil {
			return err
		}
	}
	return e.writeRoot(root)
}

// removeIndexed is ocfs2_delete_entry_dx: the entry goes from its block,
// the block joins the head of the free-space list if it had no room
// before, and the index entry is removed by shifting the rest down.
func (e *editor) removeIndexed(name string) (ondisk.DirEntry, error) {
	loc, found, err := e.locateIndexed(name)
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	if !found {
		return ondisk.DirEntry{}, fmt.Errorf("%s: removing %q: %w", e.owner(), name, syscall.ENOENT)
	}
	root, err := e.readRoot()
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	b, err := e.readBlock(loc.blkno)
	if err != nil {
		return ondisk.DirEntry{}, err
	}
	var leaf *leafRef
	list := &root.r.Entries
	if loc.leafBlk != 0 {
		if leaf, err = e.readLeaf(loc.leafBlk); err != nil {
			return ondisk.DirEntry{}, err
		}
		list = &leaf.l.List
	} else if !root.r.Inline() {
		return ondisk.DirEntry{}, e.corrupt(root.blkno, "dx root", "dr_flags", "changed while removing %q", name)
	}
	if loc.idx >= len(list.Entries) || list.Entries[loc.idx].DirentBlk != loc.blkno {
		return ondisk.DirEntry{}, fmt.Errorf("%s: index entry %d for %q moved while removing it", e.indexOwner(), loc.idx, name)
	}
	if root.r.NumEntries == 0 {
		return ondisk.DirEntry{}, e.corrupt(root.blkno, "dx root", "dr_num_entries", "is 0 with %q indexed", name)
	}
	wasFull := b.trailer.FreeRecLen == 0
	if err := e.Tx.Access(b.buf); err != nil {
		return ondisk.DirEntry{}, err
	}
	if err := deleteAt(b.area, loc.off); err != nil {
		return ondisk.DirEntry{}, fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(err, b.blkno))
	}
	b.trailer.FreeRecLen = largestFree(b.area)
	if wasFull {
		b.trailer.FreeNext = root.r.FreeBlk
		root.r.FreeBlk = b.blkno
	}
	e.writeBlock(b)
	list.Entries = slices.Delete(list.Entries, loc.idx, loc.idx+1)
	root.r.NumEntries--
	if leaf != nil {
		if err := e.writeLeaf(leaf); err != nil {
			return ondisk.DirEntry{}, err
		}
	}
	return loc.e, e.writeRoot(root)
}
