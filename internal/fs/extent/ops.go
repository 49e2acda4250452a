package extent

import (
	"fmt"
	"slices"

	"o2go/internal/ondisk"
)

// Insert maps the hole [rec.Cpos, rec.End()) to rec's blocks. Records
// longer than a leaf record can hold are split; the new record merges with
// neighbours that continue it. Mapping over existing records is an error
// (a caller bug or corruption), never a silent overwrite.
func (t *Tree) Insert(rec ondisk.ExtentRec) error {
	for rec.Clusters > 0 {
		piece := rec
		piece.Clusters = min(rec.Clusters, ondisk.MaxLeafClusters)
		if err := t.edit(piece.Cpos, func(recs []ondisk.ExtentRec) ([]ondisk.ExtentRec, error) {
			i, _ := slices.BinarySearchFunc(recs, piece.Cpos, func(r ondisk.ExtentRec, c uint32) int {
				switch {
				case r.Cpos < c:
					return -1
				case r.Cpos > c:
					return 1
				}
				return 0
			})
			if i > 0 && recs[i-1].End() > uint64(piece.Cpos) || i < len(recs) && uint64(recs[i].Cpos) < piece.End() {
				return nil, fmt.Errorf("%s: extent tree: mapping clusters [%d,%d) over an existing record: %w", t.Owner, piece.Cpos, piece.End(), ondisk.ErrCorrupt)
			}
			return slices.Insert(recs, i, piece), nil
		}); err != nil {
			return err
		}
		rec.Cpos += piece.Clusters
		rec.Blkno += uint64(piece.Clusters) * t.BlocksPerCluster
		rec.Clusters -= piece.Clusters
	}
	return nil
}

// Remove unmaps [cpos, cpos+n) (truncate, punch hole) and returns the
// pieces of records it removed, in cpos order, with their physical blocks
// and flags, so the caller can free them (truncate log) or drop their
// references (refcounted extents).
func (t *Tree) Remove(cpos, n uint32) ([]ondisk.ExtentRec, error) {
	return t.rewrite(cpos, n, func(ondisk.ExtentRec) (ondisk.ExtentRec, bool) { return ondisk.ExtentRec{}, false })
}

// Update rewrites the mapped parts of [cpos, cpos+n): fn receives each
// piece (already cut at the range's edges) and returns its replacement,
// e.g. with ExtentUnwritten cleared after a write, ExtentRefcounted set by
// a reflink, or new blocks after a copy-on-write. The replacement must
// cover the same clusters. It returns the pieces as they were.
func (t *Tree) Update(cpos, n uint32, fn func(ondisk.ExtentRec) ondisk.ExtentRec) ([]ondisk.ExtentRec, error) {
	return t.rewrite(cpos, n, func(r ondisk.ExtentRec) (ondisk.ExtentRec, bool) {
		nr := fn(r)
		nr.Cpos, nr.Clusters = r.Cpos, r.Clusters
		return nr, true
	})
}

// rewrite cuts the records overlapping [cpos, cpos+n) at the range's edges
// and replaces each inner piece by fn's result (or drops it), one leaf at
// a time from left to right.
func (t *Tree) rewrite(cpos, n uint32, fn func(ondisk.ExtentRec) (ondisk.ExtentRec, bool)) ([]ondisk.ExtentRec, error) {
	var old []ondisk.ExtentRec
	end := uint64(cpos) + uint64(n)
	cur := uint64(cpos)
	for cur < end {
		m, err := Lookup(t.C, t.Root, uint32(cur), t.Owner)
		if err != nil {
			return old, err
		}
		if !m.Found {
			if m.Next >= end {
				break
			}
			cur = m.Next
			continue
		}
		var leafEnd uint64
		err = t.edit(uint32(cur), func(recs []ondisk.ExtentRec) ([]ondisk.ExtentRec, error) {
			var out []ondisk.ExtentRec
			for _, r := range recs {
				lo, hi := max(uint64(r.Cpos), cur), min(r.End(), end)
				if lo >= hi {
					out = append(out, r)
					continue
				}
				if uint64(r.Cpos) < lo { // the part left of the range stays
					left := r
					left.Clusters = uint32(lo - uint64(r.Cpos))
					out = append(out, left)
				}
				mid := r
				mid.Cpos = uint32(lo)
				mid.Clusters = uint32(hi - lo)
				mid.Blkno = r.Blkno + (lo-uint64(r.Cpos))*t.BlocksPerCluster
				old = append(old, mid)
				if nr, keep := fn(mid); keep {
					out = append(out, nr)
				}
				if r.End() > hi { // the part right of the range stays
					right := r
					right.Cpos = uint32(hi)
					right.Clusters = uint32(r.End() - hi)
					right.Blkno = r.Blkno + (hi-uint64(r.Cpos))*t.BlocksPerCluster
					out = append(out, right)
				}
			}
			if len(recs) > 0 {
				leafEnd = recs[len(recs)-1].End()
			}
			return out, nil
		})
		if err != nil {
			return old, err
		}
		if leafEnd <= cur {
			break
		}
		cur = leafEnd
	}
	return old, nil
}

// Clusters counts the clusters mapped by the tree (i_clusters must equal
// it for a file without an inline-data or refcount special case).
func (t *Tree) Clusters() (uint64, error) {
	var n uint64
	err := Walk(t.C, t.Root, t.Owner, func(r ondisk.ExtentRec) error {
		n += uint64(r.Clusters)
		return nil
	})
	return n, err
}
