package xattr

import (
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// Usage is what an inode's attributes hold on the volume.
type Usage struct {
	// Clusters lists the runs of clusters of values and buckets.
	Clusters []ondisk.ExtentRec
	// MetaBlocks counts the xattr block and the extent blocks of value and
	// bucket trees.
	MetaBlocks int
	Attrs      int
	Buckets    int
}

// Check verifies everything this package promises about an inode's
// attributes, beyond what List needs: the dinode flags agree with the
// storage; every name hash is right; buckets are sorted, keep
// xh_free_start and xh_name_value_len exact (as fsck.ocfs2 wants), put no
// name/value across two blocks and sit in the bucket the kernel's search
// finds; bucket runs count their buckets within their clusters, and
// xt_clusters counts the runs; value trees map exactly the clusters their
// values need. It returns what the attributes hold, for accounting.
func (x Inode) Check() (Usage, error) {
	var u Usage
	x.memo = &bucketMemo{m: map[uint64]*ondisk.XattrHeader{}}
	d := x.Inode
	bs := x.SB.BlockSize()
	fail := func(blkno uint64, structName, field, format string, args ...any) error {
		return fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(&ondisk.CorruptError{Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)}, blkno))
	}
	hasInline := d.DynFeatures&ondisk.DynInlineXattr != 0
	if has := d.DynFeatures&ondisk.DynHasXattr != 0; has != (hasInline || d.XattrLoc != 0) {
		return u, fail(d.Blkno, "dinode", "i_dyn_features", "HAS_XATTR is %v with INLINE_XATTR %v and i_xattr_loc %d", has, hasInline, d.XattrLoc)
	}
	if !hasInline && d.XattrInlineSize != 0 {
		return u, fail(d.Blkno, "dinode", "i_xattr_inline_size", "is %d without INLINE_XATTR", d.XattrInlineSize)
	}
	seen := map[string]bool{}
	checkHeader := func(h *ondisk.XattrHeader, where Where, blkno uint64) error {
		if err := h.CheckNameHashes(x.SB.UUIDHash, ondisk.SignedChar, where.structName()); err != nil {
			return fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, blkno))
		}
		for i := range h.Entries {
			e := &h.Entries[i]
			name, _ := ondisk.JoinXattrName(e.Index(), string(e.Name))
			if seen[name] {
				return fail(blkno, where.structName(), "xh_entries", "%q is stored twice", name)
			}
			seen[name] = true
			u.Attrs++
			if e.Local() {
				continue
			}
			used, err := x.checkValue(e, blkno)
			if err != nil {
				return err
			}
			u.Clusters = append(u.Clusters, used.recs...)
			u.MetaBlocks += used.blocks
		}
		return nil
	}
	attrs, err := x.List()
	if err != nil {
		return u, err
	}
	if hasInline {
		area, _ := ondisk.InodeInlineXattrArea(x.Block, d.XattrInlineSize)
		h, _ := ondisk.DecodeXattrHeader(area, "inline xattr area")
		s := &store{where: InInode, size: len(area), h: h}
		if err := s.check(bs); err != nil {
			return u, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, d.Blkno))
		}
		if err := checkHeader(h, InInode, d.Blkno); err != nil {
			return u, err
		}
	}
	if d.XattrLoc == 0 {
		return u, nil
	}
	xb, err := x.C.XattrBlock(d.XattrLoc)
	if err != nil {
		return u, err
	}
	u.MetaBlocks++
	if !xb.Indexed() {
		s := &store{where: InBlock, size: bs - ondisk.XattrBlockAttrsOffset, h: xb.Header}
		if err := s.check(bs); err != nil {
			return u, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, d.XattrLoc))
		}
		return u, checkHeader(xb.Header, InBlock, d.XattrLoc)
	}
	owner := x.owner() + " bucket tree"
	shape, err := extent.CheckShape(x.C, &xb.Tree.List, xb.Tree.LastEBBlk, owner)
	if err != nil {
		return u, err
	}
	u.MetaBlocks += shape.Blocks
	if err := extent.Walk(x.C, &xb.Tree.List, owner, func(r ondisk.ExtentRec) error { return nil }); err != nil {
		return u, err
	}
	if shape.Clusters != uint64(xb.Tree.Clusters) {
		return u, fail(d.XattrLoc, "xattr block", "xt_clusters", "is %d, the tree maps %d", xb.Tree.Clusters, shape.Clusters)
	}
	if len(xb.Tree.List.Recs) == 0 {
		return u, fail(d.XattrLoc, "xattr block", "xt_list", "an indexed block with no bucket run")
	}
	perBucket := uint64(ondisk.XattrBucketBlocks(bs))
	perCluster := uint64(x.SB.ClusterSize() / ondisk.XattrBucketSize)
	prevLast := uint32(0)
	first := true
	err = extent.Walk(x.C, &xb.Tree.List, owner, func(r ondisk.ExtentRec) error {
		u.Clusters = append(u.Clusters, r)
		if first && r.Cpos != 0 {
			return fail(d.XattrLoc, "xattr block", "xt_list", "the first bucket run starts at hash 0x%08x, not 0", r.Cpos)
		}
		if uint64(r.Clusters)*uint64(x.SB.ClusterSize()) > maxLeafBytes && r.Clusters > 1 {
			return fail(d.XattrLoc, "xattr block", "xt_list", "bucket run at 0x%08x has %d clusters, more than %d bytes", r.Cpos, r.Clusters, maxLeafBytes)
		}
		fh, err := x.Bucket(r.Blkno)
		if err != nil {
			return err
		}
		n := uint64(fh.NumBuckets)
		if n == 0 || n > uint64(r.Clusters)*perCluster {
			return fail(r.Blkno, "xattr bucket", "xh_num_buckets", "is %d, the run holds 1..%d", n, uint64(r.Clusters)*perCluster)
		}
		for i := uint64(0); i < n; i++ {
			blk := r.Blkno + i*perBucket
			h, err := x.Bucket(blk)
			if err != nil {
				return err
			}
			if i > 0 && h.NumBuckets != 0 {
				return fail(blk, "xattr bucket", "xh_num_buckets", "is %d in bucket %d of a run", h.NumBuckets, i)
			}
			s := &store{where: InBucket, size: ondisk.XattrBucketSize, h: h}
			if err := s.check(bs); err != nil {
				return fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, blk))
			}
			want := *h
			s2 := &store{where: InBucket, size: ondisk.XattrBucketSize, h: &want}
			s2.normalize()
			if want.FreeStart != h.FreeStart || want.NameValueLen != h.NameValueLen {
				return fail(blk, "xattr bucket", "xh_free_start", "free start %d and name/value length %d, want %d and %d",
					h.FreeStart, h.NameValueLen, want.FreeStart, want.NameValueLen)
			}
			for k := range h.Entries {
				hash := h.Entries[k].NameHash
				if !first && hash < prevLast {
					return fail(blk, "xattr bucket", "xe_name_hash", "0x%08x sorts before the previous bucket's 0x%08x", hash, prevLast)
				}
				if hash < r.Cpos {
					return fail(blk, "xattr bucket", "xe_name_hash", "0x%08x is below its run's 0x%08x", hash, r.Cpos)
				}
				prevLast = hash
				first = false
			}
			if err := checkHeader(h, InBucket, blk); err != nil {
				return err
			}
			u.Buckets++
		}
		first = false
		return nil
	})
	if err != nil {
		return u, err
	}
	// Every name must be where the kernel's search looks for it.
	for _, a := range attrs {
		if a.Where != InBucket {
			continue
		}
		hash := a.Entry.NameHash
		where, err := x.searchBucket(xb, hash)
		if err != nil {
			return u, err
		}
		if where != a.Blkno {
			return u, fail(a.Blkno, "xattr bucket", "xe_name_hash", "%q (hash 0x%08x) sits in bucket %d, the kernel looks in %d", a.Name, hash, a.Blkno, where)
		}
	}
	return u, nil
}

// checkValue verifies a value root against its value and returns what its
// tree holds.
type valueUse struct {
	recs   []ondisk.ExtentRec
	blocks int
}

func (x Inode) checkValue(e *ondisk.XattrEntry, blkno uint64) (valueUse, error) {
	var v valueUse
	owner := fmt.Sprintf("%s value root in block %d", x.owner(), blkno)
	shape, err := extent.CheckShape(x.C, &e.Root.List, e.Root.LastEBBlk, owner)
	if err != nil {
		return v, err
	}
	v.blocks = shape.Blocks
	next := uint32(0)
	if err := extent.Walk(x.C, &e.Root.List, owner, func(r ondisk.ExtentRec) error {
		if r.Cpos != next {
			return fmt.Errorf("%s: hole before cluster %d", owner, r.Cpos)
		}
		next += r.Clusters
		v.recs = append(v.recs, r)
		return nil
	}); err != nil {
		return v, err
	}
	want := uint32(clustersFor(int(e.ValueSize), x.SB.ClusterSize()))
	if next != e.Root.Clusters || next != want {
		return v, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(&ondisk.CorruptError{Struct: "xattr value root", Field: "xr_clusters",
			Msg: fmt.Sprintf("is %d, the tree maps %d, a %d-byte value needs %d", e.Root.Clusters, next, e.ValueSize, want)}, blkno))
	}
	return v, nil
}

// searchBucket is the kernel's lookup of the bucket for a hash, read-only.
func (x Inode) searchBucket(xb *ondisk.XattrBlock, hash uint32) (uint64, error) {
	owner := x.owner() + " bucket tree"
	leaf, err := extent.FindLeaf(x.C, &xb.Tree.List, hash, owner)
	if err != nil {
		return 0, err
	}
	var r *ondisk.ExtentRec
	for i := len(leaf.List.Recs) - 1; i >= 0; i-- {
		if leaf.List.Recs[i].Cpos <= hash {
			r = &leaf.List.Recs[i]
			break
		}
	}
	if r == nil {
		return 0, fmt.Errorf("%s: no run holds hash 0x%08x", owner, hash)
	}
	perBucket := uint64(ondisk.XattrBucketBlocks(x.SB.BlockSize()))
	fh, err := x.Bucket(r.Blkno)
	if err != nil {
		return 0, err
	}
	low, high, lower := 0, int(fh.NumBuckets)-1, 0
	for low <= high {
		mid := (low + high) / 2
		h, err := x.Bucket(r.Blkno + uint64(mid)*perBucket)
		if err != nil {
			return 0, err
		}
		s := &store{where: InBucket, h: h}
		if len(h.Entries) == 0 {
			raw, err := x.bucketRaw(r.Blkno + uint64(mid)*perBucket)
			if err != nil {
				return 0, err
			}
			copy(s.slot0[:], raw[ondisk.XattrHeaderSize:])
		}
		if hash < s.firstHash() {
			high = mid - 1
			continue
		}
		lower = mid
		if hash > s.lastHash() {
			low = mid + 1
			continue
		}
		break
	}
	return r.Blkno + uint64(lower)*perBucket, nil
}

// bucketRaw returns a bucket's bytes.
func (x Inode) bucketRaw(blkno uint64) ([]byte, error) {
	bs := x.SB.BlockSize()
	raw := make([]byte, ondisk.XattrBucketSize)
	for i := 0; i < ondisk.XattrBucketBlocks(bs); i++ {
		b, err := x.C.Get(blkno + uint64(i))
		if err != nil {
			return nil, err
		}
		copy(raw[i*bs:], b.Data)
	}
	return raw, nil
}
