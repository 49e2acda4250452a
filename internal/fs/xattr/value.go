package xattr

import (
	"fmt"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// A value longer than 80 bytes lives in clusters mapped by the extent tree
// of its value root: a root list of one record in the entry itself
// (l_count 1), which grows extent blocks from Meta as soon as the value
// needs a second run, exactly as the kernel's value trees do. The tree maps
// logical clusters [0, xr_clusters) with no hole, xr_clusters =
// ceil(xe_value_size / cluster size), and the value's blocks go through the
// journal like any metadata (ocfs2 journals them), so the cache sees them
// before they reach their home.

func (e *editor) valueOwner(blkno uint64) string {
	return fmt.Sprintf("%s value root in block %d", e.owner(), blkno)
}

// valueTree checks a value root's tree — its shape, that it maps
// [0, xr_clusters) without holes, that no run is shared — and returns it
// ready for edits. Nothing is written from a root that fails.
func (e *editor) valueTree(root *ondisk.XattrValueRoot, blkno uint64) (*extent.Tree, []ondisk.ExtentRec, error) {
	owner := e.valueOwner(blkno)
	if root.Clusters > uint32(clustersFor(MaxValueLen, e.cs)) {
		return nil, nil, e.corrupt(blkno, "xattr value root", "xr_clusters", "is %d, more than a %d-byte value needs", root.Clusters, MaxValueLen)
	}
	if _, err := extent.CheckShape(e.C, &root.List, root.LastEBBlk, owner); err != nil {
		return nil, nil, err
	}
	var recs []ondisk.ExtentRec
	next := uint32(0)
	err := extent.Walk(e.C, &root.List, owner, func(r ondisk.ExtentRec) error {
		if r.Cpos != next {
			return e.corrupt(blkno, "xattr value root", "xr_list", "maps cluster %d next, want %d: values have no holes", r.Cpos, next)
		}
		if r.Flags&ondisk.ExtentRefcounted != 0 {
			return fmt.Errorf("%s: shared (reflinked) value clusters: %w", owner, syscall.EOPNOTSUPP)
		}
		next = r.Cpos + r.Clusters
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if next != root.Clusters {
		return nil, nil, e.corrupt(blkno, "xattr value root", "xr_clusters", "is %d, the tree maps %d", root.Clusters, next)
	}
	t := &extent.Tree{C: e.C, Tx: e.Tx, Alloc: e.Meta, Root: &root.List, BlocksPerCluster: uint64(e.bpc),
		Owner: owner, LastEB: root.LastEBBlk}
	return t, recs, nil
}

// valueRuns is how many runs freeing the whole value gives the sink.
func (e *editor) valueRuns(root *ondisk.XattrValueRoot, blkno uint64) (int, error) {
	_, recs, err := e.valueTree(root, blkno)
	return len(recs), err
}

func clustersFor(bytes, cs int) int { return (bytes + cs - 1) / cs }

// resizeValue gives the value tree exactly the clusters n bytes need:
// shrinking frees the tail runs into the sink, growing claims clusters and
// appends them (ocfs2_xattr_value_truncate).
func (e *editor) resizeValue(root *ondisk.XattrValueRoot, blkno uint64, n int) error {
	t, _, err := e.valueTree(root, blkno)
	if err != nil {
		return err
	}
	want := uint32(clustersFor(n, e.cs))
	have := root.Clusters
	defer func() { root.LastEBBlk = t.LastEB }()
	if want < have {
		if e.Meta == nil {
			return fmt.Errorf("%s: no metadata block allocator in the environment", e.owner())
		}
		pieces, err := t.Remove(want, have-want)
		if err != nil {
			return err
		}
		for _, p := range pieces {
			root.Clusters -= p.Clusters
			if err := e.free(uint32(p.Blkno/uint64(e.bpc)), p.Clusters); err != nil {
				return err
			}
		}
		if root.Clusters != want {
			return e.corrupt(blkno, "xattr value root", "xr_list", "freeing clusters %d.. left %d mapped", want, root.Clusters)
		}
		return nil
	}
	// Keep the value in one run when the allocator has one: a value of
	// one run keeps its tree in the root (depth 0). Whole rewrites make
	// that cheap: every Set writes the whole value anyway. fsck.ocfs2
	// 1.8.7 carries the expected depth of one value tree over to the next
	// in the same header and flags a second tree of depth 1, so deep
	// value trees are kept for when the volume is too fragmented.
	if start, got, err := e.claimRun(want); err == nil {
		if have > 0 {
			pieces, err := t.Remove(0, have)
			if err != nil {
				return err
			}
			for _, p := range pieces {
				root.Clusters -= p.Clusters
				if err := e.free(uint32(p.Blkno/uint64(e.bpc)), p.Clusters); err != nil {
					return err
				}
			}
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: 0, Clusters: got, Blkno: uint64(start) * uint64(e.bpc)}); err != nil {
			return err
		}
		root.Clusters = want
		return nil
	}
	for have < want {
		if t.Alloc == nil {
			return fmt.Errorf("%s: no metadata block allocator in the environment", e.owner())
		}
		start, got, err := e.claim(0, 1, want-have)
		if err != nil {
			return fmt.Errorf("%s: value clusters: %w", e.owner(), err)
		}
		if err := t.Insert(ondisk.ExtentRec{Cpos: have, Clusters: got, Blkno: uint64(start) * uint64(e.bpc)}); err != nil {
			return err
		}
		have += got
		root.Clusters = have
	}
	return nil
}

// claimRun tries to take n contiguous clusters in one claim.
func (e *editor) claimRun(n uint32) (uint32, uint32, error) {
	start, got, err := e.claim(0, n, n)
	if err == nil && got != n {
		return 0, 0, fmt.Errorf("%s: the cluster allocator gave %d clusters for a claim of exactly %d", e.owner(), got, n)
	}
	return start, got, err
}

// writeValue writes value into the value's clusters, block by block, the
// last block padded with zeros (__ocfs2_xattr_set_value_outside).
func (e *editor) writeValue(root *ondisk.XattrValueRoot, value []byte) error {
	_, recs, err := e.valueTree(root, 0)
	if err != nil {
		return err
	}
	off := 0
	for _, r := range recs {
		for i := uint64(0); i < uint64(r.Clusters)*uint64(e.bpc) && off < len(value); i++ {
			b, err := e.blockFor(r.Blkno + i)
			if err != nil {
				return err
			}
			n := copy(b.Data, value[off:])
			clear(b.Data[n:])
			e.Tx.Dirty(b, -1)
			off += n
		}
	}
	if off < len(value) {
		return fmt.Errorf("%s: value clusters hold %d of %d bytes", e.owner(), off, len(value))
	}
	return nil
}
