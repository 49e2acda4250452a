package xattr

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// An indexed xattr block roots an extent tree whose cpos space is the
// 32-bit name hash: each leaf record is a run of clusters holding 4 KiB
// buckets, its e_cpos the lowest hash the run holds. The first bucket of a
// run counts the run's buckets in use (xh_num_buckets); a run never passes
// maxLeafBytes. A name goes to the bucket the kernel's bisection finds for
// its hash, so that the kernel finds it again; a full bucket is split at a
// hash change into the next bucket, shifting the buckets after it down, and
// a full run gets a cluster — appended when it is physically contiguous,
// otherwise as a new run that takes the upper half of the old run's last
// cluster (ocfs2_add_new_xattr_bucket and its helpers).

// maxLeafBytes is OCFS2_MAX_XATTR_TREE_LEAF_SIZE: a bucket run grows by
// contiguous clusters only up to this many bytes.
const maxLeafBytes = 65536

// maxSplits bounds how many buckets one set may add before giving up with
// ENOSPC (the kernel tries once; a huge entry in a crowded run may need
// two).
const maxSplits = 4

func (e *editor) treeOwner() string { return e.owner() + " bucket tree" }

func (e *editor) indexTree() *extent.Tree {
	x := e.xb
	return &extent.Tree{C: e.C, Tx: e.Tx, Alloc: e.Meta, Root: &x.xb.Tree.List, BlocksPerCluster: uint64(e.bpc),
		Owner: e.treeOwner(), LastEB: x.xb.Tree.LastEBBlk}
}

// recordFor returns the bucket run holding hash: the leaf record with the
// highest e_cpos not above it (ocfs2_xattr_get_rec).
func (e *editor) recordFor(hash uint32) (ondisk.ExtentRec, error) {
	x := e.xb
	leaf, err := extent.FindLeaf(e.C, &x.xb.Tree.List, hash, e.treeOwner())
	if err != nil {
		return ondisk.ExtentRec{}, err
	}
	recs := leaf.List.Recs
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Cpos > hash {
			continue
		}
		if r.Clusters == 0 || r.Blkno == 0 || r.Blkno%uint64(e.bpc) != 0 {
			break
		}
		return r, nil
	}
	return ondisk.ExtentRec{}, e.corrupt(x.blkno, "xattr block", "xt_list", "no bucket run holds hash 0x%08x", hash)
}

// runBuckets checks the first bucket of a run and returns how many buckets
// the run uses.
func (e *editor) runBuckets(r ondisk.ExtentRec) (*bucket, int, error) {
	first, err := e.loadBucket(r.Blkno)
	if err != nil {
		return nil, 0, err
	}
	n := int(first.s.h.NumBuckets)
	if capacity := int(r.Clusters) * e.bucketsPerCluster(); n == 0 || n > capacity {
		return nil, 0, e.corrupt(r.Blkno, "xattr bucket", "xh_num_buckets", "is %d, the run holds 1..%d", n, capacity)
	}
	return first, n, nil
}

// bucketFor finds the bucket for hash as ocfs2_xattr_bucket_find does: a
// bisection over the run's buckets by first and last hash that, between
// two buckets, settles on the lower one.
func (e *editor) bucketFor(hash uint32) (*bucket, error) {
	r, err := e.recordFor(hash)
	if err != nil {
		return nil, err
	}
	first, n, err := e.runBuckets(r)
	if err != nil {
		return nil, err
	}
	bpb := uint64(e.bucketBlocks())
	low, high, lower := 0, n-1, 0
	for low <= high {
		mid := (low + high) / 2
		b, err := e.loadBucket(r.Blkno + uint64(mid)*bpb)
		if err != nil {
			return nil, err
		}
		if hash < b.s.firstHash() {
			high = mid - 1
			continue
		}
		lower = mid
		if hash > b.s.lastHash() {
			low = mid + 1
			continue
		}
		break
	}
	if lower == 0 {
		return first, nil
	}
	return e.loadBucket(r.Blkno + uint64(lower)*bpb)
}

// bucketSet stores nv in its bucket, defragmenting and splitting buckets as
// needed (ocfs2_xattr_set_entry_index_block).
func (e *editor) bucketSet(nv *newValue) error {
	for splits := 0; ; splits++ {
		b, err := e.bucketFor(nv.hash)
		if err != nil {
			return err
		}
		err = e.put(b.s, b.s.find(nv.index, nv.name, nv.hash), nv)
		if !errors.Is(err, errNoRoom) {
			return err
		}
		b.s.defrag(e.bs)
		b.markDirty()
		err = e.put(b.s, b.s.find(nv.index, nv.name, nv.hash), nv)
		if !errors.Is(err, errNoRoom) {
			return err
		}
		if s := b.s; len(s.h.Entries) > 0 && nv.hash == s.h.Entries[0].NameHash && s.lastHash() == nv.hash {
			return fmt.Errorf("%s: bucket %d is full of names with hash 0x%08x: %w", e.owner(), b.blkno, nv.hash, syscall.ENOSPC)
		}
		if splits == maxSplits {
			return fmt.Errorf("%s: no bucket takes a %d-byte name and value after %d splits: %w", e.owner(), nv.size(), splits, syscall.ENOSPC)
		}
		if err := e.addBucket(b); err != nil {
			return err
		}
	}
}

// makeIndexed turns the full, non-indexed xattr block into the root of a
// bucket tree: its attributes move to a first bucket in a new cluster,
// sorted by hash, their names and values at the same distance from the
// end (ocfs2_xattr_create_index_block).
func (e *editor) makeIndexed() error {
	x := e.xb
	start, _, err := e.claim(0, 1, 1)
	if err != nil {
		return fmt.Errorf("%s: first bucket cluster: %w", e.owner(), err)
	}
	blk := uint64(start) * uint64(e.bpc)
	b := e.newBucket(blk)
	s := x.s.clone()
	shift := uint16(ondisk.XattrBucketSize - e.bs + ondisk.XattrBlockAttrsOffset)
	for i := range s.h.Entries {
		s.h.Entries[i].NameOffset += shift
	}
	sort.SliceStable(s.h.Entries, func(i, j int) bool { return s.h.Entries[i].NameHash < s.h.Entries[j].NameHash })
	b.s.h.Entries = s.h.Entries
	b.s.h.NumBuckets = 1
	b.s.normalize()
	b.markDirty()

	x.xb.Flags |= ondisk.XattrBlockIndexed
	x.xb.Header = nil
	x.s = nil
	x.xb.Tree = &ondisk.XattrTreeRoot{Clusters: 1, List: ondisk.ExtentList{
		Count: uint16(ondisk.XattrTreeRootCapacity(e.bs)),
		Recs:  []ondisk.ExtentRec{{Cpos: 0, Clusters: 1, Blkno: blk}},
	}}
	x.dirty = true
	return nil
}

// addBucket makes room after target, the full bucket a name must go to:
// a cluster for the run first when it is full, then one more bucket in the
// run right after target, which takes the upper half of target's entries.
func (e *editor) addBucket(target *bucket) error {
	r, err := e.recordFor(target.s.firstHash())
	if err != nil {
		return err
	}
	first, n, err := e.runBuckets(r)
	if err != nil {
		return err
	}
	capacity := int(r.Clusters) * e.bucketsPerCluster()
	if n < capacity {
		return e.extendBucket(first, target.blkno, capacity)
	}
	first, target, capacity, extend, err := e.addCluster(r, first, target)
	if err != nil || !extend {
		return err
	}
	return e.extendBucket(first, target.blkno, capacity)
}

// addCluster gives the full run r one more cluster. A cluster right after
// the run extends it; any other starts a new run, into which the upper
// buckets of r's last cluster move (or, with one bucket per cluster, the
// whole last cluster, or the upper half of its bucket). It returns the
// first bucket and the target bucket as they are now, the capacity in
// buckets of the run holding the target, and whether the target still
// needs a bucket added after it.
func (e *editor) addCluster(r ondisk.ExtentRec, first, target *bucket) (*bucket, *bucket, int, bool, error) {
	prev := r.Clusters
	bpc := uint64(e.bpc)
	start, _, err := e.claim(uint32(r.Blkno/bpc)+prev, 1, 1)
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("%s: bucket cluster: %w", e.owner(), err)
	}
	blk := uint64(start) * bpc
	perCluster := e.bucketsPerCluster()
	t := e.indexTree()
	var vStart uint32
	capacity := int(prev) * perCluster
	extend := true
	grow := r.Blkno+uint64(prev)*bpc == blk && (uint64(prev)+1)*uint64(e.cs) <= maxLeafBytes && e.cposFree(r.Cpos+prev)
	if grow {
		vStart = r.Cpos + prev
		capacity += perCluster
	} else if perCluster > 1 {
		toMove := perCluster / 2
		lastCluster := first.blkno + uint64(prev-1)*bpc
		if vStart, err = e.moveBuckets(first, lastCluster, blk, toMove); err != nil {
			return nil, nil, 0, false, err
		}
		src := lastCluster + uint64(toMove*e.bucketBlocks())
		if target.blkno >= src {
			target = e.buckets[blk+(target.blkno-src)]
			first = e.buckets[blk]
			capacity = perCluster
		}
	} else {
		last := first.blkno + uint64(prev-1)*bpc
		if prev > 1 && target.blkno != last {
			if vStart, err = e.moveBuckets(first, last, blk, 0); err != nil {
				return nil, nil, 0, false, err
			}
		} else {
			if vStart, err = e.divide(last, blk, true); err != nil {
				return nil, nil, 0, false, err
			}
			extend = target.blkno != last
		}
	}
	if !e.cposFree(vStart) {
		return nil, nil, 0, false, fmt.Errorf("%s: a new bucket run would start at hash 0x%08x, inside another run: %w", e.owner(), vStart, syscall.ENOSPC)
	}
	// A new run must stay a run of its own (and a grown one must not run
	// into the next): the tree merges records that continue each other in
	// hash and on disk, which would hide a run's buckets behind another's
	// count. Hashes that close are a one-in-a-billion chance; give up
	// rather than merge.
	if e.wouldMerge(vStart, blk, !grow) {
		return nil, nil, 0, false, fmt.Errorf("%s: a bucket run at hash 0x%08x would merge with its neighbour: %w", e.owner(), vStart, syscall.ENOSPC)
	}
	err = t.Insert(ondisk.ExtentRec{Cpos: vStart, Clusters: 1, Blkno: blk})
	e.xb.xb.Tree.LastEBBlk = t.LastEB
	if err != nil {
		return nil, nil, 0, false, err
	}
	e.xb.xb.Tree.Clusters++
	e.xb.dirty = true
	return first, target, capacity, extend, nil
}

// wouldMerge says whether a one-cluster run at cpos on block blk would
// continue the next run, or (left) be continued by the previous one, both
// in hash and on disk.
func (e *editor) wouldMerge(cpos uint32, blk uint64, left bool) bool {
	root := &e.xb.xb.Tree.List
	bpc := uint64(e.bpc)
	if left && cpos > 0 {
		if m, err := extent.Lookup(e.C, root, cpos-1, e.treeOwner()); err == nil && m.Found &&
			m.Rec.End() == uint64(cpos) && m.Rec.Blkno+uint64(m.Rec.Clusters)*bpc == blk {
			return true
		}
	}
	if cpos < ^uint32(0) {
		if m, err := extent.Lookup(e.C, root, cpos+1, e.treeOwner()); err == nil && m.Found &&
			m.Rec.Cpos == cpos+1 && m.Rec.Blkno == blk+bpc {
			return true
		}
	}
	return false
}

// cposFree says whether no bucket run covers hash cpos.
func (e *editor) cposFree(cpos uint32) bool {
	m, err := extent.Lookup(e.C, &e.xb.xb.Tree.List, cpos, e.treeOwner())
	return err == nil && !m.Found
}

// bucketAt returns the bucket object for blkno without reading it: the one
// this change holds, or a blank one about to be overwritten.
func (e *editor) bucketAt(blkno uint64) *bucket {
	if b, ok := e.buckets[blkno]; ok {
		return b
	}
	return e.newBucket(blkno)
}

// copyBucket makes the bucket at dst a copy of the one at src.
func (e *editor) copyBucket(src, dst uint64) error {
	s, err := e.loadBucket(src)
	if err != nil {
		return err
	}
	d := e.bucketAt(dst)
	d.s = s.s.clone()
	d.s.blkno = dst
	d.markDirty()
	return nil
}

// moveBuckets copies the buckets of the run's cluster at last, from bucket
// skip on, to the new cluster at to, which becomes a run of its own, and
// returns the new run's first hash (ocfs2_mv_xattr_buckets).
func (e *editor) moveBuckets(first *bucket, last, to uint64, skip int) (uint32, error) {
	n := e.bucketsPerCluster() - skip
	bpb := uint64(e.bucketBlocks())
	from := last + uint64(skip)*bpb
	if from == first.blkno || n <= 0 || int(first.s.h.NumBuckets) < n {
		return 0, e.corrupt(first.blkno, "xattr bucket", "xh_num_buckets", "cannot move %d buckets out of a run of %d", n, first.s.h.NumBuckets)
	}
	for i := 0; i < n; i++ {
		if err := e.copyBucket(from+uint64(i)*bpb, to+uint64(i)*bpb); err != nil {
			return 0, err
		}
		e.buckets[to+uint64(i)*bpb].s.h.NumBuckets = 0
	}
	first.s.h.NumBuckets -= uint16(n)
	first.markDirty()
	nf := e.buckets[to]
	nf.s.h.NumBuckets = uint16(n)
	return nf.s.firstHash(), nil
}

// divide splits the bucket at blk between itself and the bucket at to,
// where the upper entries go — at a change of hash nearest the middle, so
// that one hash never spans two buckets — and returns to's first hash.
// When every entry has one hash, to starts empty with that hash plus one.
// head says to is the first bucket of a new run (ocfs2_divide_xattr_bucket).
func (e *editor) divide(blk, to uint64, head bool) (uint32, error) {
	s, err := e.loadBucket(blk)
	if err != nil {
		return 0, err
	}
	entries := s.s.h.Entries
	count := len(entries)
	if count == 0 {
		return 0, e.corrupt(blk, "xattr bucket", "xh_count", "an empty bucket cannot be full")
	}
	at := dividePos(entries)
	t := e.bucketAt(to)
	if at == count {
		t.s = &store{where: InBucket, size: ondisk.XattrBucketSize, h: &ondisk.XattrHeader{FreeStart: ondisk.XattrBucketSize}}
		t.s.keepSlot0(&ondisk.XattrEntry{NameHash: entries[count-1].NameHash + 1})
	} else {
		t.s = s.s.clone()
		t.s.h.Entries = slices.Clone(t.s.h.Entries[at:])
		s.s.h.Entries = slices.Clone(entries[:at])
		s.markDirty()
	}
	t.s.blkno = to
	t.s.h.NumBuckets = 0
	if head {
		t.s.h.NumBuckets = 1
	}
	t.markDirty()
	return t.s.firstHash(), nil
}

// dividePos is ocfs2_xattr_find_divide_pos: the hash change nearest the
// middle, or len(entries) when all hashes are equal.
func dividePos(entries []ondisk.XattrEntry) int {
	count := len(entries)
	middle := count / 2
	for delta := 0; delta < middle; delta++ {
		if entries[middle-delta-1].NameHash != entries[middle-delta].NameHash {
			return middle - delta
		}
		if middle+delta+1 == count {
			continue
		}
		if entries[middle+delta].NameHash != entries[middle+delta+1].NameHash {
			return middle + delta + 1
		}
	}
	return count
}

// extendBucket adds a bucket right after target in the run whose first
// bucket is first (capacity buckets): the buckets after target shift one
// down, and target's upper half moves into the freed slot
// (ocfs2_extend_xattr_bucket).
func (e *editor) extendBucket(first *bucket, target uint64, capacity int) error {
	n := int(first.s.h.NumBuckets)
	if n >= capacity {
		return e.corrupt(first.blkno, "xattr bucket", "xh_num_buckets", "is %d, no room for a bucket in a run of %d", n, capacity)
	}
	bpb := uint64(e.bucketBlocks())
	end := first.blkno + uint64(n-1)*bpb
	if target < first.blkno || target > end || (target-first.blkno)%bpb != 0 {
		return e.corrupt(first.blkno, "xattr bucket", "xh_num_buckets", "bucket %d is not one of the run's %d", target, n)
	}
	for ; end != target; end -= bpb {
		if err := e.copyBucket(end, end+bpb); err != nil {
			return err
		}
	}
	if _, err := e.divide(target, target+bpb, false); err != nil {
		return err
	}
	first.s.h.NumBuckets++
	first.markDirty()
	return nil
}
