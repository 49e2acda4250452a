package volume

import (
	"encoding/binary"
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// --fs-features=[no]metaecc (tunefs.ocfs2's feature_metaecc.c): the
// checks (CRC32 and Hamming code) of every metadata block.
//
// On: every block directory first gets trailers (installTrailers, under
// TUNEFS_INPROG with the dir-trailer flag), then every metadata block's
// check is computed and written, and the flag goes on last, so an
// interruption leaves correct checks the volume does not use yet. Off: the
// flag goes first, then every check is zeroed, as on a volume made without
// META_ECC. A metadata block is: the superblock and its backups, every
// inode, every group descriptor of every chain allocator, every block in
// use in an extent_alloc (extent blocks, xattr blocks, dx roots, refcount
// blocks), the blocks of directories with trailers, dx leaves, xattr
// buckets (one check over the 4 KiB bucket) and quota file blocks (a check
// in each block's last 8 bytes).
//
// Where o2go differs: tunefs.ocfs2 1.8.7 computes checks only for inodes,
// extent blocks, group descriptors and directory blocks, so dx roots and
// leaves, xattr blocks and buckets and refcount blocks keep zero checks
// that the kernel and fsck.ocfs2 then reject; and turning metaecc off it
// only clears the flag. o2go covers every block the kernel checks, and
// zeroes the checks it leaves.

// checkedBlock is a metadata block (or bucket) and where its check lives.
type checkedBlock struct {
	blkno  uint64
	blocks int // 1, or a bucket's blocks
	off    int
}

// metadataBlocks lists every block that carries a META_ECC check, except
// the superblock and its backups.
func (t *tunefsVol) metadataBlocks() ([]checkedBlock, error) {
	var out []checkedBlock
	add := func(blk uint64, off int) { out = append(out, checkedBlock{blk, 1, off}) }
	allocs, err := t.chainAllocators()
	if err != nil {
		return nil, err
	}
	for _, a := range allocs {
		_, groups, err := t.allocatorGroups(a)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			add(g.Blkno, ondisk.GroupDescCheckOffset)
		}
	}
	if err := t.forEachExtentAllocBlock(func(slot int, blk uint64) error {
		b, err := t.Cache.Get(blk)
		if err != nil {
			return err
		}
		switch string(b.Data[:8]) {
		case ondisk.ExtentBlockSignature:
			add(blk, ondisk.ExtentBlockCheckOffset)
		case ondisk.XattrBlockSignature:
			add(blk, ondisk.XattrBlockCheckOffset)
		case ondisk.DXRootSignature:
			add(blk, ondisk.DXRootCheckOffset)
		case ondisk.RefcountBlockSignature:
			add(blk, ondisk.RefcountBlockCheckOffset)
		default:
			t.verbosef("block %d is in use in extent_alloc:%04d but holds no metadata signature; left alone\n", blk, slot)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	inodes, err := t.inodeBlocks()
	if err != nil {
		return nil, err
	}
	bs := t.bs()
	for _, blk := range inodes {
		add(blk, ondisk.DinodeCheckOffset)
		d, err := t.Cache.Dinode(blk)
		if err != nil {
			return nil, err
		}
		switch {
		case d.IsDir() && d.Inline == nil && d.Extents != nil:
			blks, err := t.dirBlocks(d)
			if err != nil {
				return nil, err
			}
			for _, b := range blks {
				buf, err := t.Cache.Get(b)
				if err != nil {
					return nil, err
				}
				if ondisk.HasDirTrailerSignature(buf.Data) {
					add(b, ondisk.DirBlockCheckOffset(bs))
				}
			}
			if d.DynFeatures&ondisk.DynIndexedDir != 0 {
				r, err := t.Cache.DXRoot(d.DxRoot, d.Blkno)
				if err != nil {
					return nil, err
				}
				if !r.Inline() {
					err := extent.Walk(t.Cache, &r.List, fmt.Sprintf("directory %d index", d.Blkno), func(rec ondisk.ExtentRec) error {
						for i := uint64(0); i < uint64(rec.Clusters)*t.bpc(); i++ {
							add(rec.Blkno+i, ondisk.DXLeafCheckOffset)
						}
						return nil
					})
					if err != nil {
						return nil, err
					}
				}
			}
		case d.Flags&ondisk.InodeQuota != 0 && d.Extents != nil:
			n := (d.Size + uint64(bs) - 1) / uint64(bs)
			for i := uint64(0); i < n; i++ {
				b, err := t.fileBlock(d, i)
				if err != nil {
					return nil, err
				}
				add(b, bs-quotaReserved)
			}
		}
		if d.DynFeatures&ondisk.DynHasXattr != 0 && d.XattrLoc != 0 {
			xb, err := t.Cache.XattrBlock(d.XattrLoc)
			if err != nil {
				return nil, err
			}
			if xb.Tree != nil {
				buckets, err := t.xattrBuckets(xb)
				if err != nil {
					return nil, err
				}
				out = append(out, buckets...)
			}
		}
	}
	return out, nil
}

// xattrBuckets lists the buckets in use under an indexed xattr block.
func (t *tunefsVol) xattrBuckets(xb *ondisk.XattrBlock) ([]checkedBlock, error) {
	bb := ondisk.XattrBucketBlocks(t.bs())
	var out []checkedBlock
	err := extent.Walk(t.Cache, &xb.Tree.List, fmt.Sprintf("xattr block %d", xb.Blkno), func(rec ondisk.ExtentRec) error {
		first := make([]byte, t.bs())
		if err := t.Cache.ReadBlocks(rec.Blkno, first); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint16(first[6:])) // xh_num_buckets
		max := int(uint64(rec.Clusters) * t.bpc() / uint64(bb))
		if n == 0 || n > max {
			return t.Cache.Annotate(&ondisk.CorruptError{Struct: "xattr bucket", Field: "xh_num_buckets", Msg: fmt.Sprintf("is %d for a run of %d buckets", n, max)}, rec.Blkno)
		}
		for i := 0; i < n; i++ {
			out = append(out, checkedBlock{rec.Blkno + uint64(i*bb), bb, 8})
		}
		return nil
	})
	return out, err
}

// rewriteChecks computes (seal) or zeroes the check of every listed block.
func (t *tunefsVol) rewriteChecks(blocks []checkedBlock, seal bool, stage string) error {
	for i, cb := range blocks {
		buf := make([]byte, cb.blocks*t.bs())
		if err := t.Cache.ReadBlocks(cb.blkno, buf); err != nil {
			return err
		}
		if seal {
			ondisk.SetBlockCheck(buf, cb.off)
		} else {
			clear(buf[cb.off : cb.off+ondisk.BlockCheckSize])
		}
		if err := t.writeRaw(cb.blkno, buf); err != nil {
			return err
		}
		if len(blocks) >= 1000 && (i%256 == 255 || i == len(blocks)-1) {
			t.r.progress(stage, int64(i+1), int64(len(blocks)))
		}
	}
	return t.Dev.Sync()
}

func (t *tunefsVol) enableMetaECC() error {
	if t.already("metaecc", true) {
		return nil
	}
	ok, err := t.askFeature("metaecc", true)
	if err != nil || !ok {
		return err
	}
	var dirs []uint64
	err = t.forEachInode("Scanning filesystem", func(d *ondisk.Dinode) error {
		if d.IsDir() && d.Inline == nil {
			dirs = append(dirs, d.Blkno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := t.setInProgress(false, ondisk.TunefsInProgDirTrailer); err != nil {
		return err
	}
	for _, blk := range dirs {
		d, err := t.inodeForWrite(blk)
		if err != nil {
			return err
		}
		if _, err := t.installTrailers(d); err != nil {
			return err
		}
	}
	t.clearInProgress(false, ondisk.TunefsInProgDirTrailer)
	if err := t.writePrimarySuper(); err != nil {
		return err
	}
	blocks, err := t.metadataBlocks()
	if err != nil {
		return err
	}
	if err := t.rewriteChecks(blocks, true, "Writing block checks"); err != nil {
		return err
	}
	t.setFeature("metaecc", true)
	return t.writeSuper()
}

func (t *tunefsVol) disableMetaECC() error {
	if t.already("metaecc", false) {
		return nil
	}
	ok, err := t.askFeature("metaecc", false)
	if err != nil || !ok {
		return err
	}
	blocks, err := t.metadataBlocks()
	if err != nil {
		return err
	}
	t.setFeature("metaecc", false)
	if err := t.writeSuper(); err != nil {
		return err
	}
	return t.rewriteChecks(blocks, false, "Clearing block checks")
}
