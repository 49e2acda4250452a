package volume

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"o2go/internal/ondisk"
)

// tunefs -S (tunefs.ocfs2's op_resize_volume.c, offline): grow the
// volume to the device's size or to a given size. The global bitmap's
// last group is first extended up to a full group, then new groups follow,
// each on the chain after the previous one's (wrapping at cl_count), its
// descriptor in the zeroed first cluster of the group; the global bitmap
// inode, the superblock's i_clusters and the backup superblocks are written
// last. RESIZE_INPROG is set in the primary superblock for the whole
// operation, so an interrupted resize leaves a volume the kernel and o2go
// refuse to mount and fsck.ocfs2 checks and repairs ("incomplete volume
// resize detected").
//
// Where o2go differs: tunefs.ocfs2 1.8.7 offline writes the backup
// superblocks that now fall inside the volume but leaves their clusters
// free in the global bitmap (its online path reserves them), so a later
// allocation may overwrite them. o2go reserves them, as mkfs.ocfs2 and the
// online resize do. Shrinking is refused, as by tunefs.ocfs2.

// resizeSpec is -S's new size: n in unit, or the device's size when !set.
type resizeSpec struct {
	set  bool
	unit string // "bytes", "blocks" or "clusters"
	n    uint64
}

// parseResizeSpec parses "[bytes:|blocks:|clusters:]N[KMGTP]" (blocks by
// default), or "" for the device's size.
func parseResizeSpec(s string) (resizeSpec, error) {
	if s == "" {
		return resizeSpec{}, nil
	}
	spec := resizeSpec{set: true, unit: "blocks"}
	for _, u := range []string{"bytes", "blocks", "clusters"} {
		if rest, ok := strings.CutPrefix(s, u+":"); ok {
			spec.unit, s = u, rest
			break
		}
	}
	n, err := ParseTunefsNumber(s)
	if err != nil {
		return spec, tunefsRefuse("new size is invalid: %v", err)
	}
	spec.n = n
	return spec, nil
}

// ParseTunefsNumber parses a number as tunefs.ocfs2 does (tunefs_get_number):
// decimal, 0x hex or 0 octal, with an optional K, M, G, T or P (binary
// multiples) or b (bytes) suffix.
func ParseTunefsNumber(s string) (uint64, error) {
	bad := fmt.Errorf("%q is not a number (with an optional K, M, G, T or P suffix)", s)
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		if v == 1<<64-1 {
			return 0, bad
		}
		return v, nil
	}
	if len(s) < 2 {
		return 0, bad
	}
	shift := map[byte]uint{'b': 0, 'k': 10, 'm': 20, 'g': 30, 't': 40, 'p': 50}
	sh, ok := shift[s[len(s)-1]|0x20]
	if !ok {
		return 0, bad
	}
	v, err := strconv.ParseUint(s[:len(s)-1], 0, 64)
	if err != nil {
		return 0, bad
	}
	if v<<sh>>sh != v {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v << sh, nil
}

// resize is -S.
func (t *tunefsVol) resize(spec resizeSpec) error {
	newClusters, err := t.checkNewSize(spec)
	if err != nil {
		return err
	}
	if newClusters == t.Super.Clusters {
		t.verbosef("Filesystem on device %q is already %d clusters; nothing to do\n", t.Path, newClusters)
		return nil
	}
	ok, err := t.r.interact("Grow the filesystem on device %q from %d to %d clusters? ", t.Path, t.Super.Clusters, newClusters)
	if err != nil || !ok {
		return err
	}
	if err := t.setInProgress(true, 0); err != nil {
		return err
	}
	if err := t.growGlobalBitmap(newClusters); err != nil {
		return err
	}
	if err := t.r.interrupt("resize-before-super"); err != nil {
		return err
	}
	t.clearInProgress(true, 0)
	return t.writeSuper()
}

// checkNewSize is check_new_size: the new size in clusters.
func (t *tunefsVol) checkNewSize(spec resizeSpec) (uint32, error) {
	cbits, bbits := t.SB.ClusterSizeBits, t.SB.BlockSizeBits
	maxBytes := uint64(1<<32-1) << cbits
	var size uint64
	if spec.set {
		var shift uint32
		switch spec.unit {
		case "clusters":
			shift = cbits
		case "blocks":
			shift = bbits
		}
		size = spec.n << shift
		if size>>shift != spec.n {
			size = 1<<64 - 1 // wrapped: far too large
		}
		if size > maxBytes {
			return 0, tunefsRefuse("the volume on %s cannot be larger than %d clusters (%d bytes)", t.Path, uint64(1<<32-1), maxBytes)
		}
	}
	deviceClusters := uint64(t.Dev.Size()) >> cbits
	try := (size + uint64(t.cs()) - 1) >> cbits
	if !spec.set {
		if deviceClusters > 1<<32-1 {
			tryBlocks := uint64(1<<32-1) << (cbits - bbits)
			return 0, tunefsRefuse("the device has %d clusters, more than the %d a volume can have: to grow to %d blocks, give %d as the size", deviceClusters, uint64(1<<32-1), tryBlocks, tryBlocks)
		}
		try = deviceClusters
	}
	if try > deviceClusters {
		return 0, tunefsRefuse("the device %s cannot hold more than %d clusters (%d bytes); %d were asked for", t.Path, deviceClusters, deviceClusters<<cbits, try)
	}
	if try < uint64(t.Super.Clusters) {
		return 0, tunefsRefuse("shrinking a volume is not supported: %d clusters were asked for, the volume has %d", try, t.Super.Clusters)
	}
	if blocks := try << (cbits - bbits); t.r.journalIncompat&ondisk.JBD2FeatureIncompat64Bit == 0 && blocks > 1<<32-1 {
		return 0, tunefsRefuse("the journals are not configured for more than %d blocks (the volume would have %d): enable the block64 journal feature (-J block64) before growing the volume this far", uint64(1<<32-1), blocks)
	}
	return uint32(try), nil
}

// growGlobalBitmap adds clusters [old, newClusters) to the global bitmap
// (run_resize).
func (t *tunefsVol) growGlobalBitmap(newClusters uint32) error {
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	gbIno, err := t.inodeForWrite(gb.Blkno())
	if err != nil {
		return err
	}
	cl := gbIno.Chain
	if cl == nil || cl.BPC != 1 || cl.CPG == 0 {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "global bitmap dinode", Field: "id2", Msg: "not a cluster bitmap's chain list"}, gbIno.Blkno)
	}
	old := gbIno.Clusters
	if old != t.Super.Clusters {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "global bitmap dinode", Field: "i_clusters", Msg: fmt.Sprintf("is %d, the superblock says %d", old, t.Super.Clusters)}, gbIno.Blkno)
	}
	bpc := int(t.bpc())
	size := ondisk.GroupBitmapBytes(t.bs(), false, 0)
	lastIdx := int(old-1) / int(cl.CPG)
	lastBlk := ondisk.GlobalBitmapGroupBlkno(lastIdx, int(cl.CPG), bpc, t.SB.FirstClusterGroup)
	lg0, err := t.Cache.GroupDesc(lastBlk)
	if err != nil {
		return err
	}
	lg := cloneGroup(lg0)
	if len(cl.Recs) == 1 && int(cl.CPG) < 8*len(lg.Bitmap) {
		cl.CPG = uint16(8 * len(lg.Bitmap))
	}
	cpg := uint32(cl.CPG)
	if int(lg.Chain) >= len(cl.Recs) {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "group descriptor", Field: "bg_chain", Msg: fmt.Sprintf("%d is past the chain list's %d records", lg.Chain, len(cl.Recs))}, lastBlk)
	}
	var backups []uint64
	if t.SB.Features.Compat&ondisk.CompatBackupSB != 0 {
		newBlocks := uint64(newClusters) * t.bpc()
		oldBackups := ondisk.BackupSuperBlockBlknos(t.bs(), t.totalBlocks())
		for _, b := range ondisk.BackupSuperBlockBlknos(t.bs(), newBlocks) {
			if !slices.Contains(oldBackups, b) {
				backups = append(backups, b/t.bpc())
			}
		}
	}
	bm := gbIno.Bitmap()
	first := old
	remaining := newClusters - old
	chain := int(lg.Chain)

	// The tail group first: up to a full group.
	if chunk := min(remaining, cpg-uint32(lg.Bits)); chunk > 0 {
		base := uint32(lastIdx) * cpg
		for i := uint32(lg.Bits); i < uint32(lg.Bits)+chunk; i++ {
			lg.Bitmap[i>>3] &^= 1 << (i & 7)
		}
		lg.Bits += uint16(chunk)
		lg.FreeBitsCount += uint16(chunk)
		rec := &cl.Recs[chain]
		rec.Total += chunk
		rec.Free += chunk
		bm.Total += chunk
		t.reserveBackups(lg, base, backups, rec, &bm)
		remaining -= chunk
		first += chunk
	}
	// Then new groups, chain after chain.
	groups := (remaining + cpg - 1) / cpg
	for g := uint32(0); remaining > 0; g++ {
		chunk := min(remaining, cpg)
		idx := int(first / cpg)
		blk := ondisk.GlobalBitmapGroupBlkno(idx, int(cpg), bpc, t.SB.FirstClusterGroup)
		chain++
		if chain >= int(cl.Count) {
			chain = 0
		}
		if chain >= len(cl.Recs) {
			cl.Recs = append(cl.Recs, ondisk.ChainRec{})
		}
		rec := &cl.Recs[chain]
		ng := &ondisk.GroupDesc{
			Bits: uint16(chunk), FreeBitsCount: uint16(chunk - 1), Chain: uint16(chain),
			Generation: t.Super.FSGeneration, NextGroup: rec.Blkno, ParentDinode: gbIno.Blkno,
			Blkno: blk, Bitmap: make([]byte, size),
		}
		ng.Bitmap[0] = 1
		rec.Blkno = blk
		rec.Total += chunk
		rec.Free += chunk - 1
		bm.Total += chunk
		bm.Used++
		t.reserveBackups(ng, first, backups, rec, &bm)
		if err := t.zeroClusters(uint64(first), 1, ""); err != nil {
			return err
		}
		if err := t.writeNewGroup(ng); err != nil {
			return err
		}
		remaining -= chunk
		first += chunk
		if groups >= 16 {
			t.r.progress("Growing the volume", int64(g+1), int64(groups))
		}
		if g == 0 {
			if err := t.r.interrupt("resize-first-group"); err != nil {
				return err
			}
		}
	}
	if err := t.writeGroup(lg); err != nil {
		return err
	}
	gbIno.SetBitmap(bm)
	gbIno.Clusters = newClusters
	gbIno.Size = uint64(newClusters) * uint64(t.cs())
	if err := t.writeInode(gbIno); err != nil {
		return err
	}
	t.Super.Clusters = newClusters
	return nil
}

// reserveBackups marks the backup superblock clusters (in backups) that
// fall in group g, whose bit 0 is cluster base, used.
func (t *tunefsVol) reserveBackups(g *ondisk.GroupDesc, base uint32, backups []uint64, rec *ondisk.ChainRec, bm *ondisk.Bitmap) {
	for _, c := range backups {
		if c < uint64(base) || c >= uint64(base)+uint64(g.Bits) {
			continue
		}
		i := uint32(c) - base
		if g.Bitmap[i>>3]&(1<<(i&7)) != 0 {
			continue
		}
		g.Bitmap[i>>3] |= 1 << (i & 7)
		g.FreeBitsCount--
		rec.Free--
		bm.Used++
	}
}

func cloneGroup(g *ondisk.GroupDesc) *ondisk.GroupDesc {
	c := *g
	c.Bitmap = slices.Clone(g.Bitmap)
	if g.List != nil {
		l := *g.List
		l.Recs = slices.Clone(g.List.Recs)
		c.List = &l
	}
	return &c
}

// writeGroup writes a changed group descriptor.
func (t *tunefsVol) writeGroup(g *ondisk.GroupDesc) error {
	b, err := t.Cache.Get(g.Blkno)
	if err != nil {
		return err
	}
	if err := t.tx.Access(b); err != nil {
		return err
	}
	if err := g.Encode(b.Data); err != nil {
		return t.Cache.Annotate(fmt.Errorf("encoding: %w", err), g.Blkno)
	}
	t.tx.Dirty(b, ondisk.GroupDescCheckOffset)
	return t.tx.Err
}

// writeNewGroup writes a new group descriptor over whatever was there.
func (t *tunefsVol) writeNewGroup(g *ondisk.GroupDesc) error {
	b, err := t.tx.New(g.Blkno)
	if err != nil {
		return err
	}
	if err := g.Encode(b.Data); err != nil {
		return t.Cache.Annotate(fmt.Errorf("encoding: %w", err), g.Blkno)
	}
	t.tx.Dirty(b, ondisk.GroupDescCheckOffset)
	return t.tx.Err
}
