package xattr

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// The fuzz targets damage the storage of a populated inode — its in-inode
// area, its xattr block, its buckets — and run changes over it. Whatever
// the bytes, nothing may panic; and when the damage is in counts, sizes
// and offsets (not block pointers, which only META_ECC can vouch for), no
// change may write a block outside what the inode's attributes own.

var fuzzBases struct {
	once  sync.Once
	vols  []*memVolume
	names [][]string
	err   error
}

// fuzzBase builds the populated volumes once: a non-indexed block with a
// value in clusters, and an indexed block with several bucket runs and
// value trees, both with an in-inode area.
func fuzzBase(t testing.TB) ([]*memVolume, [][]string) {
	fuzzBases.once.Do(func() {
		for i, cfg := range []memConfig{
			{bs: 4096, cs: 4096, clusters: 160, metaBlocks: 64},
			{bs: 1024, cs: 4096, clusters: 400, metaBlocks: 64, fragment: 0.7, metaECC: true},
		} {
			v := newMemVolume(t, cfg, uint64(i+1))
			v.data.maxRun = 2
			var names []string
			n := []int{6, 220}[i]
			for k := 0; k < n; k++ {
				name := fmt.Sprintf("user.fuzz-%03d", k)
				size := []int{5, 60, 300, 7000}[k%4]
				val := make([]byte, size)
				for j := range val {
					val[j] = byte(k + j)
				}
				if err := v.set(name, val, 0); err != nil {
					fuzzBases.err = err
					return
				}
				names = append(names, name)
			}
			fuzzBases.vols = append(fuzzBases.vols, v)
			fuzzBases.names = append(fuzzBases.names, names)
		}
	})
	if fuzzBases.err != nil {
		t.Fatal(fuzzBases.err)
	}
	return fuzzBases.vols, fuzzBases.names
}

// countFields are the offsets of counts, sizes and offsets in a header of
// count entries: xh_count, xh_free_start, xh_name_value_len,
// xh_num_buckets, and each entry's xe_name_offset, xe_name_len, xe_type,
// xe_value_size.
func countFields(count int) []int {
	offs := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for i := 0; i < count; i++ {
		e := ondisk.XattrHeaderSize + i*ondisk.XattrEntrySize
		for _, f := range []int{4, 5, 6, 7, 8, 9, 10, 11, 12} {
			offs = append(offs, e+f)
		}
	}
	return offs
}

// damage is one region to corrupt: its blocks, where its header starts,
// and where its check lives (-1: none).
type damage struct {
	blocks   []uint64
	header   int
	checkOff int
	fields   []int // count fields, relative to the header
}

func regions(t testing.TB, v *memVolume) []damage {
	x := v.reader()
	bs := v.sb.BlockSize()
	var out []damage
	d := x.Inode
	if d.DynFeatures&ondisk.DynInlineXattr != 0 {
		area, _ := ondisk.InodeInlineXattrArea(x.Block, d.XattrInlineSize)
		h, _ := ondisk.DecodeXattrHeader(area, "")
		out = append(out, damage{blocks: []uint64{d.Blkno}, header: bs - len(area), checkOff: ondisk.DinodeCheckOffset, fields: countFields(len(h.Entries))})
	}
	if d.XattrLoc == 0 {
		return out
	}
	xb, err := v.c.XattrBlock(d.XattrLoc)
	if err != nil {
		t.Fatal(err)
	}
	if !xb.Indexed() {
		return append(out, damage{blocks: []uint64{d.XattrLoc}, header: ondisk.XattrBlockAttrsOffset, checkOff: ondisk.XattrBlockCheckOffset,
			fields: countFields(len(xb.Header.Entries))})
	}
	// The tree root's counts: xt_clusters, l_tree_depth, l_count,
	// l_next_free_rec, and each record's e_cpos and e_leaf_clusters.
	root := []int{0, 1, 2, 3, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15}
	for i := range xb.Tree.List.Recs {
		r := 0x20 + i*16
		root = append(root, r, r+1, r+2, r+3, r+4, r+5)
	}
	out = append(out, damage{blocks: []uint64{d.XattrLoc}, header: ondisk.XattrBlockAttrsOffset, checkOff: ondisk.XattrBlockCheckOffset, fields: root})
	perBucket := ondisk.XattrBucketBlocks(bs)
	err = extent.Walk(v.c, &xb.Tree.List, "fuzz", func(r ondisk.ExtentRec) error {
		fh, err := x.Bucket(r.Blkno)
		if err != nil {
			return err
		}
		for k := 0; k < int(fh.NumBuckets); k++ {
			blk := r.Blkno + uint64(k*perBucket)
			h, err := x.Bucket(blk)
			if err != nil {
				return err
			}
			var blocks []uint64
			for j := 0; j < perBucket; j++ {
				blocks = append(blocks, blk+uint64(j))
			}
			out = append(out, damage{blocks: blocks, header: 0, checkOff: ondisk.XattrBucketCheckOff, fields: countFields(len(h.Entries))})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// corrupt applies patch to region r of v: pairs of (selector, byte), the
// selector picking a count field (countsOnly) or any byte of the region.
// With META_ECC the check is recomputed, as if the damage came from a bad
// writer rather than the medium.
func corrupt(t testing.TB, v *memVolume, r damage, patch []byte, countsOnly bool) {
	bs := v.sb.BlockSize()
	raw := make([]byte, len(r.blocks)*bs)
	for i, b := range r.blocks {
		buf, err := v.c.Get(b)
		if err != nil {
			t.Fatal(err)
		}
		copy(raw[i*bs:], buf.Data)
	}
	for i := 0; i+2 < len(patch); i += 3 {
		sel := int(binary.LittleEndian.Uint16(patch[i:]))
		var off int
		if countsOnly {
			off = r.header + r.fields[sel%len(r.fields)]
		} else {
			off = r.header + sel%(len(raw)-r.header)
		}
		if off < len(raw) {
			raw[off] = patch[i+2]
		}
	}
	if v.cfg.metaECC {
		ondisk.SetBlockCheck(raw, r.checkOff)
	}
	for i, b := range r.blocks {
		if err := v.c.WriteBlock(b, raw[i*bs:(i+1)*bs]); err != nil {
			t.Fatal(err)
		}
	}
	v.c.ForgetAll()
}

func FuzzChangesOverDamage(f *testing.F) {
	f.Add(uint8(0), uint8(0), true, []byte{0, 0, 0xff}, uint8(1))
	f.Add(uint8(0), uint8(1), true, []byte{1, 0, 0x7f, 9, 0, 0xff}, uint8(3))
	f.Add(uint8(1), uint8(2), true, []byte{4, 0, 0x00, 5, 0, 0x10}, uint8(2))
	f.Add(uint8(1), uint8(0), true, []byte{3, 0, 0xff, 7, 0, 0xff}, uint8(7))
	f.Add(uint8(1), uint8(1), false, []byte{0x10, 0, 0x41, 0x20, 1, 0x99}, uint8(5))
	f.Add(uint8(1), uint8(3), true, []byte{0, 0, 0, 1, 0, 0}, uint8(9))
	f.Add(uint8(1), uint8(4), false, []byte{0x33, 0x02, 0xfe}, uint8(4))
	f.Fuzz(func(t *testing.T, base, region uint8, countsOnly bool, patch []byte, ops uint8) {
		vols, allNames := fuzzBase(t)
		v := vols[int(base)%len(vols)].clone(t)
		names := allNames[int(base)%len(vols)]
		rs := regions(t, v)
		if len(rs) == 0 {
			return
		}
		allowed := v.owned()
		corrupt(t, v, rs[int(region)%len(rs)], patch, countsOnly)
		r := newFuzzRand(patch)
		for i := 0; i < 1+int(ops%6); i++ {
			name := names[r.Intn(len(names))]
			if r.Chance(0.2) {
				name = fmt.Sprintf("user.new-%d", r.Intn(50))
			}
			var err error
			if r.Chance(0.6) {
				val := make([]byte, []int{0, 20, 81, 900, 5000, MaxValueLen}[r.Intn(6)])
				err = v.set(name, val, SetFlags(r.Intn(3)))
			} else {
				err = v.remove(name)
			}
			for b := range v.owned() {
				allowed[b] = true
			}
			if countsOnly {
				for _, b := range v.lastWrites {
					if !allowed[b] {
						t.Fatalf("op %d (%s, err %v) wrote block %d, which the attributes do not own", i, name, err, b)
					}
				}
			}
			x := v.reader()
			if attrs, err := x.List(); err == nil {
				for _, a := range attrs {
					x.Value(a)
				}
			}
			x.Check()
		}
	})
}

func newFuzzRand(patch []byte) *base.Rand {
	var seed uint64
	for _, b := range patch {
		seed = seed*131 + uint64(b)
	}
	return base.NewRand(seed)
}
