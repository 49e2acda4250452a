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
	bs := x.SB.BlockSize()
	buf := make([]byte, ondisk.XattrBucketSize)
	for i := 0; i < ondisk.XattrBucketBlocks(bs); i++ {
		b, err := x.C.Get(blkno + uint64(i))
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
	return h, nil
}

// Get returns the value of the named attribute; found is false when the
// inode has no such attribute.
func (x Inode) Get(name string) (value []byte, found bool, err error) {
	attrs, err := x.List()
	if err != nil {
		return nil, false, err
	}
	for _, a := range attrs {
		if a.Name == name {
			v, err := x.Value(a)
			return v, err == nil, err
		}
	}
	return nil, false, nil
}

// Value returns an attribute's value, reading it from its clusters when it
// is not stored locally.
func (x Inode) Value(a Attr) ([]byte, error) {
	e := a.Entry
	if e.Local() {
		return e.Value, nil
	}
	if e.Root == nil {
		return nil, fmt.Errorf("%s: %q: %w", x.owner(), a.Name, x.C.Annotate(&ondisk.CorruptError{Struct: "xattr entry", Msg: "non-local value without a value root"}, a.Blkno))
	}
	const maxValue = 64 << 10 // XATTR_SIZE_MAX
	if e.ValueSize > maxValue {
		return nil, fmt.Errorf("%s: %q: %w", x.owner(), a.Name, x.C.Annotate(&ondisk.CorruptError{Struct: "xattr entry", Field: "xe_value_size",
			Msg: fmt.Sprintf("is %d, more than the %d bytes a value may have", e.ValueSize, maxValue)}, a.Blkno))
	}
	out := make([]byte, e.ValueSize)
	cs := uint64(x.SB.ClusterSize())
	bs := x.SB.BlockSize()
	err := extent.Walk(x.C, &e.Root.List, fmt.Sprintf("%s %q value", x.owner(), a.Name), func(r ondisk.ExtentRec) error {
		start := uint64(r.Cpos) * cs
		if start >= e.ValueSize {
			return nil
		}
		n := min(uint64(r.Clusters)*cs, e.ValueSize-start)
		buf := make([]byte, (n+uint64(bs)-1)/uint64(bs)*uint64(bs))
		if err := x.C.ReadBlocks(r.Blkno, buf); err != nil {
			return err
		}
		copy(out[start:], buf[:n])
		return nil
	})
	return out, err
}
