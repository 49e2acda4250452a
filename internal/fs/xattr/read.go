package xattr

import (
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Where says which storage holds an attribute.
type Where int

const (
	InInode  Where = iota // the inode block's inline area
	InBlock               // a non-indexed XATTR01 block
	InBucket              // a bucket of an indexed XATTR01 block
)

func (w Where) String() string { return [...]string{"inode", "block", "bucket"}[w] }

// Attr is one extended attribute found on an inode.
type Attr struct {
	Name  string // full name with its prefix ("user.foo")
	Entry ondisk.XattrEntry
	Where Where
	// Blkno is the block holding the header (inode, xattr block, or the
	// bucket's first block).
	Blkno uint64
}

// Inode is the owner of a set of attributes.
type Inode struct {
	C     *metacache.Cache
	SB    *ondisk.SuperBlock
	Inode *ondisk.Dinode
	Block []byte // the inode's raw block (for the inline area)

	memo *bucketMemo // buckets already read, during Check
}

// bucketMemo keeps decoded buckets for one walk that reads them many times.
type bucketMemo struct {
	m map[uint64]*ondisk.XattrHeader
}

func (x Inode) owner() string { return fmt.Sprintf("inode %d xattrs", x.Inode.Blkno) }

// List returns every attribute of the inode, inline ones first, then the
// block's or the buckets' in storage order.
func (x Inode) List() ([]Attr, error) {
	var out []Attr
	add := func(h *ondisk.XattrHeader, w Where, blk uint64) error {
		for _, e := range h.Entries {
			name, ok := ondisk.JoinXattrName(e.Index(), string(e.Name))
			if !ok {
				return fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(&ondisk.CorruptError{Struct: "xattr entry", Field: "xe_type",
					Msg: fmt.Sprintf("unknown name prefix index %d", e.Index())}, blk))
			}
			out = append(out, Attr{Name: name, Entry: e, Where: w, Blkno: blk})
		}
		return nil
	}
	d := x.Inode
	if d.DynFeatures&ondisk.DynInlineXattr != 0 {
		area, err := ondisk.InodeInlineXattrArea(x.Block, d.XattrInlineSize)
		if err == nil {
			var h *ondisk.XattrHeader
			if h, err = ondisk.DecodeXattrHeader(area, "inline xattr"); err == nil {
				err = add(h, InInode, d.Blkno)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, d.Blkno))
		}
	}
	if d.DynFeatures&ondisk.DynHasXattr == 0 || d.XattrLoc == 0 {
		return out, nil
	}
	xb, err := x.C.XattrBlock(d.XattrLoc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", x.owner(), err)
	}
	if !xb.Indexed() {
		return out, add(xb.Header, InBlock, d.XattrLoc)
	}
	err = x.forEachBucket(xb, func(blk uint64, h *ondisk.XattrHeader) error { return add(h, InBucket, blk) })
	return out, err
}

// forEachBucket walks the buckets of an indexed xattr block in hash order.
func (x Inode) forEachBucket(xb *ondisk.XattrBlock, fn func(blk uint64, h *ondisk.XattrHeader) error) error {
	bs := x.SB.BlockSize()
	perBucket := uint64(ondisk.XattrBucketBlocks(bs))
	return extent.Walk(x.C, &xb.Tree.List, x.owner()+" tree", func(r ondisk.ExtentRec) error {
		maxBuckets := uint64(r.Clusters) * uint64(x.SB.BlocksPerCluster()) / perBucket
		first, err := x.Bucket(r.Blkno)
		if err != nil {
			return err
		}
		n := uint64(first.NumBuckets)
		if n == 0 || n > maxBuckets {
			return fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(&ondisk.CorruptError{Struct: "xattr bucket", Field: "xh_num_buckets",
				Msg: fmt.Sprintf("is %d, the extent holds 1..%d", n, maxBuckets)}, r.Blkno))
		}
		for i := uint64(0); i < n; i++ {
			blk := r.Blkno + i*perBucket
			h := first
			if i > 0 {
				if h, err = x.Bucket(blk); err != nil {
					return err
				}
			}
			if err := fn(blk, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// Bucket reads and checks the 4 KiB bucket starting at blkno.
func (x Inode) Bucket(blkno uint64) (*ondisk.XattrHeader, error) {
	if x.memo != nil {
		if h, ok := x.memo.m[blkno]; ok {
			return h, nil
		}
	}
	bs := x.SB.BlockSize()
	buf := make([]byte, ondisk.XattrBucketSize)
	for i := 0; i < ondisk.XattrBucketBlocks(bs); i++ {
		b, err := x.C.GetUnowned(blkno + uint64(i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.owner(), err)
		}
		copy(buf[i*bs:], b.Data)
	}
	if x.C.MetaECC() {
		if _, err := ondisk.VerifyBlockCheck(buf, ondisk.XattrBucketCheckOff, "xattr bucket"); err != nil {
			return nil, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, blkno))
		}
	}
	h, err := ondisk.DecodeXattrBucket(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", x.owner(), x.C.Annotate(err, blkno))
	}
	if x.memo != nil {
		x.memo.m[blkno] = h
	}
	return h, nil
}

// Get returns the value of the named attribute as getxattr(2) shows it
// (the POSIX ACL names in the VFS format, with its version header); found
// is false when the inode has no such attribute.
func (x Inode) Get(name string) (value []byte, found bool, err error) {
	attrs, err := x.List()
	if err != nil {
		return nil, false, err
	}
	for _, a := range attrs {
		if a.Name != name {
			continue
		}
		v, err := x.Value(a)
		if err != nil {
			return nil, false, err
		}
		if idx := a.Entry.Index(); idx == ondisk.XattrIndexPosixACLAccess || idx == ondisk.XattrIndexPosixACLDefault {
			if v, err = ondisk.OCFS2ACLToVFS(v); err != nil {
				return nil, false, fmt.Errorf("%s: %s: %w", x.owner(), name, x.C.Annotate(err, a.Blkno))
			}
		}
		return v, true, nil
	}
	return nil, false, nil
}

// Value returns an attribute's stored value (POSIX ACLs in OCFS2's own
// format), reading it from its clusters when it is not stored locally.
// Value blocks are read through the cache: the write side journals them,
// so the cache is where their newest copy is until a checkpoint.
func (x Inode) Value(a Attr) ([]byte, error) {
	e := a.Entry
	if e.Local() {
		return e.Value, nil
	}
	if e.Root == nil {
		return nil, fmt.Errorf("%s: %q: %w", x.owner(), a.Name, x.C.Annotate(&ondisk.CorruptError{Struct: "xattr entry", Msg: "non-local value without a value root"}, a.Blkno))
	}
	if e.ValueSize > MaxValueLen {
		return nil, fmt.Errorf("%s: %q: %w", x.owner(), a.Name, x.C.Annotate(&ondisk.CorruptError{Struct: "xattr entry", Field: "xe_value_size",
			Msg: fmt.Sprintf("is %d, more than the %d bytes a value may have", e.ValueSize, MaxValueLen)}, a.Blkno))
	}
	out := make([]byte, e.ValueSize)
	cs := uint64(x.SB.ClusterSize())
	bs := uint64(x.SB.BlockSize())
	covered := uint64(0)
	err := extent.Walk(x.C, &e.Root.List, fmt.Sprintf("%s %q value", x.owner(), a.Name), func(r ondisk.ExtentRec) error {
		start := uint64(r.Cpos) * cs
		if start != covered || start >= e.ValueSize {
			return nil
		}
		n := min(uint64(r.Clusters)*cs, e.ValueSize-start)
		for off := uint64(0); off < n; off += bs {
			b, err := x.C.GetUnowned(r.Blkno + off/bs)
			if err != nil {
				return err
			}
			copy(out[start+off:start+n], b.Data)
		}
		covered = start + n
		return nil
	})
	if err == nil && covered < e.ValueSize {
		err = x.C.Annotate(&ondisk.CorruptError{Struct: "xattr value root", Field: "xr_list",
			Msg: fmt.Sprintf("maps %d of the value's %d bytes", covered, e.ValueSize)}, a.Blkno)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", x.owner(), a.Name, err)
	}
	return out, nil
}
