package alloc

import (
	"errors"
	"fmt"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Object is one block handed out by a suballocator (an inode from
// inode_alloc, an extent block, dx root, xattr or refcount block from
// extent_alloc), with what the block must carry in its *_suballoc_*
// fields. Its field layout matches extent.MetaBlock, so the layers above
// convert between them directly.
type Object struct {
	// Blkno is the block: group + bit for a contiguous group, found
	// through the group's extent list for a discontiguous one.
	Blkno uint64
	// Slot is i_suballoc_slot / h_suballoc_slot: the allocator's slot,
	// GlobalInodeAllocSlot for global_inode_alloc.
	Slot uint16
	// Bit is i_suballoc_bit: the bit in the group.
	Bit uint16
	// GroupBlkno is i_suballoc_loc: the group descriptor. o2go always sets
	// it, as libocfs2 does (the kernel leaves it 0 for contiguous groups,
	// where group = Blkno - Bit; both are valid and fsck accepts both).
	GroupBlkno uint64
}

// ClaimObject takes one block, trying group hint first (0: none; the
// kernel passes the parent directory's group for new inodes), and growing
// the allocator by a group when it is full.
func (a *ChainAllocator) ClaimObject(tx metacache.Tx, hint uint64) (Object, error) {
	objs, err := a.ClaimObjects(tx, 1, hint)
	if err != nil {
		return Object{}, err
	}
	return objs[0], nil
}

// ClaimObjects takes n blocks, as few contiguous runs as the allocator
// gives (the kernel's ocfs2_claim_metadata loop), growing it first when it
// has fewer than n free bits. On failure nothing stays claimed.
func (a *ChainAllocator) ClaimObjects(tx metacache.Tx, n int, hint uint64) ([]Object, error) {
	if a.global {
		return nil, fmt.Errorf("%s: the global bitmap hands out clusters, not objects", a.name)
	}
	if n <= 0 {
		return nil, fmt.Errorf("%s: claim of %d objects", a.name, n)
	}
	for {
		u, err := a.Usage()
		if err != nil {
			return nil, err
		}
		if int(u.Free()) >= n {
			break
		}
		if _, err := a.Grow(tx); err != nil {
			return nil, err
		}
	}
	var out []Object
	for len(out) < n {
		res, err := a.claim(tx, claimRequest{want: n - len(out), min: 1, hint: hint, goalBit: -1})
		if err != nil {
			if len(out) > 0 {
				err = errors.Join(err, a.FreeObjects(tx, out))
			}
			return nil, err
		}
		hint = 0
		for b := res.bit; b < res.bit+res.n; b++ {
			blk, err := res.group.BitBlock(b, a.geo.BlocksPerCluster)
			if err != nil {
				return nil, a.c.Annotate(err, res.group.Blkno)
			}
			out = append(out, Object{Blkno: blk, Slot: a.slot, Bit: uint16(b), GroupBlkno: res.group.Blkno})
		}
	}
	return out, nil
}

// NewMetaBlock is ClaimObject without a hint: the shape of fs/extent's
// MetaAllocator (whose MetaBlock has Object's fields).
func (a *ChainAllocator) NewMetaBlock(tx metacache.Tx) (Object, error) {
	return a.ClaimObject(tx, 0)
}

// FreeMetaBlock is FreeObject, for the same callers.
func (a *ChainAllocator) FreeMetaBlock(tx metacache.Tx, o Object) error {
	return a.FreeObject(tx, o)
}

// FreeObject returns one object to the allocator.
func (a *ChainAllocator) FreeObject(tx metacache.Tx, o Object) error {
	return a.FreeObjects(tx, []Object{o})
}

// FreeObjects returns objects to the allocator. Each must belong to it: its
// slot is the allocator's and its bit maps to its block in its group
// (GroupBlkno, or Blkno - Bit when 0, as the kernel derives it).
func (a *ChainAllocator) FreeObjects(tx metacache.Tx, objs []Object) error {
	if err := a.checkGuard(); err != nil { // before the groups are read
		return err
	}
	runs := make([]bitRun, 0, len(objs))
	for _, o := range objs {
		if o.Slot != a.slot {
			return fmt.Errorf("%s: object at block %d has suballoc slot %d, not this allocator's %d", a.name, o.Blkno, o.Slot, a.slot)
		}
		grp := o.GroupBlkno
		if grp == 0 {
			if uint64(o.Bit) > o.Blkno {
				return fmt.Errorf("%s: object at block %d has suballoc bit %d beyond its block number", a.name, o.Blkno, o.Bit)
			}
			grp = o.Blkno - uint64(o.Bit)
		}
		if grp >= a.c.Blocks() {
			return fmt.Errorf("%s: object at block %d names group %d, beyond the device", a.name, o.Blkno, grp)
		}
		g, err := a.c.GroupDesc(grp)
		if err != nil {
			return fmt.Errorf("%s: group of object %d: %w", a.name, o.Blkno, err)
		}
		blk, err := g.BitBlock(int(o.Bit), a.geo.BlocksPerCluster)
		if err != nil || blk != o.Blkno {
			return fmt.Errorf("%s: object at block %d says bit %d of group %d, which is block %d (%v)", a.name, o.Blkno, o.Bit, grp, blk, err)
		}
		runs = append(runs, bitRun{group: grp, bit: int(o.Bit), n: 1})
	}
	return a.free(tx, runs)
}

// FreeBits frees count bits from bit of group groupBlkno (truncate-log and
// fsck style callers that already know the bits).
func (a *ChainAllocator) FreeBits(tx metacache.Tx, groupBlkno uint64, bit, count int) error {
	return a.free(tx, []bitRun{{group: groupBlkno, bit: bit, n: count}})
}

// smallestChain is the chain a new group joins (the kernel's
// ocfs2_find_smallest_chain): the first chain record, in use or not, with
// the fewest bits; an unused record counts as empty. While records are
// unused that is the next one, as libocfs2 picks too.
func smallestChain(cl *ondisk.ChainList) int {
	best := 0
	total := func(i int) uint32 {
		if i < len(cl.Recs) {
			return cl.Recs[i].Total
		}
		return 0
	}
	for i := 0; i < int(cl.Count); i++ {
		if total(best) > total(i) {
			best = i
		}
	}
	return best
}

// Grow adds one block group of cl_cpg clusters to a suballocator and
// returns its descriptor block. The clusters come from the global bitmap
// as one contiguous run; on a DISCONTIG_BG volume without such a run they
// come as up to l_count smaller runs (the kernel's
// ocfs2_block_group_alloc_discontig: the first at least cpg/2 clusters,
// halving the minimum until something fits, then the rest no smaller than
// the last run found). The group's descriptor is the first block of the
// first run, with bit 0 set for itself; it is linked at the head of the
// chain smallestChain picks, and the chain record, bitmap1, i_clusters and
// i_size follow. When no space can be found nothing changes.
func (a *ChainAllocator) Grow(tx metacache.Tx) (uint64, error) {
	if a.global || a.clusters == nil {
		return 0, fmt.Errorf("%s: only a suballocator with a global bitmap can grow", a.name)
	}
	ai, err := a.load()
	if err != nil {
		return 0, err
	}
	cl := ai.d.Chain
	cpg := int(cl.CPG)
	bpc := int(cl.BPC)
	bitmapBytes := ondisk.GroupBitmapBytes(a.geo.BlockSize, true, a.geo.Incompat)
	if cpg*bpc > 8*bitmapBytes || cpg*bpc > 0xFFFF {
		return 0, a.corrupt(a.blkno, structAllocator, "cl_cpg", "a group of %d clusters of %d bits does not fit a %d-byte bitmap", cpg, bpc, bitmapBytes)
	}
	chain := smallestChain(cl)
	if chain > len(cl.Recs) {
		return 0, fmt.Errorf("%s: chain %d is past cl_next_free_rec %d (o2go bug)", a.name, chain, len(cl.Recs))
	}

	var runs []ClusterRun
	start, n, err := a.clusters.claimRun(tx, cpg, cpg, a.growHint, -1, false)
	switch {
	case err == nil:
		runs = []ClusterRun{{Start: start, Count: n}}
	case errIsNoSpace(err) && a.geo.DiscontigBG():
		runs, err = a.claimDiscontig(tx, cpg)
		if err != nil {
			return 0, err
		}
	default:
		return 0, err
	}
	a.growHint = a.clusters.hint

	blk, err := a.addGroup(tx, ai, chain, runs)
	if err != nil {
		return 0, errors.Join(err, a.clusters.FreeClusterRuns(tx, runs))
	}
	return blk, nil
}

// claimDiscontig gathers cpg clusters in runs for a discontiguous group.
func (a *ChainAllocator) claimDiscontig(tx metacache.Tx, cpg int) ([]ClusterRun, error) {
	maxRecs := ondisk.ExtentRecsPerGroupDesc(a.geo.BlockSize)
	var runs []ClusterRun
	got := 0
	minBits := cpg >> 1
	for got < cpg && len(runs) < maxRecs {
		need := cpg - got
		minBits = max(min(minBits, need), 1)
		var start uint32
		var n int
		var err error
		for {
			start, n, err = a.clusters.claimRun(tx, need, minBits, 0, -1, true)
			if err == nil || !errIsNoSpace(err) || minBits == 1 {
				break
			}
			minBits >>= 1
		}
		if err != nil {
			return nil, errors.Join(err, a.clusters.FreeClusterRuns(tx, runs))
		}
		runs = append(runs, ClusterRun{Start: start, Count: n})
		got += n
		minBits = n
	}
	if got < cpg {
		err := a.noSpace("a discontiguous group of %d clusters needs more than %d runs", cpg, maxRecs)
		return nil, errors.Join(err, a.clusters.FreeClusterRuns(tx, runs))
	}
	return runs, nil
}

// addGroup writes the new group descriptor over runs and links it into
// chain.
func (a *ChainAllocator) addGroup(tx metacache.Tx, ai *allocInode, chain int, runs []ClusterRun) (uint64, error) {
	d := ai.d
	cl := d.Chain
	bpc := int(cl.BPC)
	blk := a.geo.ClusterBlock(runs[0].Start)
	g := &ondisk.GroupDesc{
		Chain:        uint16(chain),
		Generation:   a.geo.Generation,
		ParentDinode: a.blkno,
		Blkno:        blk,
		Bitmap:       make([]byte, ondisk.GroupBitmapBytes(a.geo.BlockSize, true, a.geo.Incompat)),
	}
	if chain < len(cl.Recs) {
		g.NextGroup = cl.Recs[chain].Blkno
	}
	clusters := 0
	if len(runs) == 1 && runs[0].Count == int(cl.CPG) {
		clusters = runs[0].Count
	} else {
		g.List = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerGroupDesc(a.geo.BlockSize))}
		for _, r := range runs {
			g.List.Recs = append(g.List.Recs, ondisk.ExtentRec{Cpos: uint32(clusters), Clusters: uint32(r.Count), Blkno: a.geo.ClusterBlock(r.Start)})
			clusters += r.Count
		}
	}
	g.Bits = uint16(clusters * bpc)
	g.Bitmap[0] = 1
	g.FreeBitsCount = g.Bits - 1

	buf, err := tx.New(blk)
	if err != nil {
		return 0, err
	}
	if err := g.Encode(buf.Data); err != nil {
		return 0, fmt.Errorf("%s: new group %d: %w", a.name, blk, err)
	}
	tx.Dirty(buf, ondisk.GroupDescCheckOffset)

	if chain == len(cl.Recs) {
		cl.Recs = append(cl.Recs, ondisk.ChainRec{})
	}
	rec := &cl.Recs[chain]
	rec.Free += uint32(g.FreeBitsCount)
	rec.Total += uint32(g.Bits)
	rec.Blkno = blk
	bm := d.Bitmap()
	bm.Used += uint32(g.Bits - g.FreeBitsCount)
	bm.Total += uint32(g.Bits)
	d.SetBitmap(bm)
	d.Clusters += uint32(cl.CPG)
	d.Size = uint64(d.Clusters) << a.geo.ClusterBits
	if err := a.writeInode(tx, ai); err != nil {
		return 0, err
	}
	return blk, nil
}
