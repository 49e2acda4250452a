package volume

import (
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// tunefs -J (tunefs.ocfs2's op_set_journal_size.c, op_set_journal_block.c
// and libocfs2's ocfs2_make_journal): every slot's journal resized to one
// size, or reformatted with or without the JBD2 64-bit feature. A journal
// that changes is grown from the global bitmap or truncated (its clusters
// go back to the global bitmap), zeroed whole and given a fresh JBD2
// superblock (mkfs's, journalSuperBlockBytes). The journals are clean
// (checked before any change), so nothing in them is lost.

// writeJournalSuper writes jsb over journal d's first block(s).
func (t *tunefsVol) writeJournalSuper(d *ondisk.Dinode, jsb *ondisk.JournalSuperBlock) error {
	m, err := extent.Lookup(t.Cache, d.Extents, 0, fmt.Sprintf("journal inode %d", d.Blkno))
	if err != nil {
		return err
	}
	if !m.Found {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "journal dinode", Field: "id2", Msg: "the journal has no block 0"}, d.Blkno)
	}
	buf := make([]byte, max(t.bs(), ondisk.JournalSuperBlockSize))
	if err := t.Cache.ReadBlocks(m.Rec.Blkno, buf); err != nil {
		return err
	}
	jsb.Encode(buf)
	return t.writeRaw(m.Rec.Blkno, buf)
}

// setJournalSizeOp is -J size=.
func (t *tunefsVol) setJournalSizeOp(size uint64) error {
	ok, err := t.r.interact("Resize journals on device %q to %d? ", t.Path, size)
	if err != nil || !ok {
		return err
	}
	clusters := (size + uint64(t.cs()) - 1) / uint64(t.cs())
	if clusters > 1<<32-1 {
		return tunefsRefuse("journal size %d is too large", size)
	}
	return t.resizeJournals(uint32(clusters), t.r.journalIncompat)
}

// setJournalBlocks is -J block64 (on) or block32 (off).
func (t *tunefsVol) setJournalBlocks(on bool) error {
	if !on && t.totalBlocks() > 1<<32-1 {
		return tunefsRefuse("cannot enable the block32 journal feature on %s: it has %d blocks, more than 32-bit block numbers reach", t.Path, t.totalBlocks())
	}
	what := "block32"
	if on {
		what = "block64"
	}
	ok, err := t.r.interact("Enable %s journal feature on device %q? ", what, t.Path)
	if err != nil || !ok {
		return err
	}
	incompat := t.r.journalIncompat &^ ondisk.JBD2FeatureIncompat64Bit
	if on {
		incompat |= ondisk.JBD2FeatureIncompat64Bit
		t.SB.Features.Compat |= ondisk.CompatJBD2SB
		if err := t.writeSuper(); err != nil {
			return err
		}
	}
	return t.resizeJournals(t.r.journalClusters, incompat)
}

// resizeJournals makes every slot's journal clusters long with JBD2
// incompat features incompat (tunefs_set_journal_size): a journal already
// that size is left alone unless the features change.
func (t *tunefsVol) resizeJournals(clusters uint32, incompat uint32) error {
	if uint64(clusters)*uint64(t.cs()) < minJournalBytes {
		return tunefsRefuse("a journal of %d clusters (%d bytes) is below the 4 MiB minimum", clusters, uint64(clusters)*uint64(t.cs()))
	}
	if uint64(clusters)*t.bpc() < journalMinBlocksLibocfs {
		return tunefsRefuse("a journal of %d blocks is below the minimum of %d blocks", uint64(clusters)*t.bpc(), journalMinBlocksLibocfs)
	}
	featureChange := incompat != t.r.journalIncompat
	var need uint64
	var todo []int
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		d, err := t.systemInode(ondisk.SysJournal, slot)
		if err != nil {
			return err
		}
		if d.Clusters == clusters && !featureChange {
			continue
		}
		todo = append(todo, slot)
		if clusters > d.Clusters {
			need += uint64(clusters - d.Clusters)
		}
	}
	if len(todo) == 0 {
		t.verbosef("Every journal is already %d clusters; nothing to do\n", clusters)
		return nil
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	u, err := gb.Usage()
	if err != nil {
		return err
	}
	if need > uint64(u.Free()) {
		return tunefsRefuse("the journals need %d more clusters and the volume has %d free: free some space, or choose a smaller journal", need, u.Free())
	}
	for i, slot := range todo {
		d, err := t.systemInode(ondisk.SysJournal, slot)
		if err != nil {
			return err
		}
		t.verbosef("Resizing journal \"journal:%04d\" to %d clusters\n", slot, clusters)
		if err := t.makeJournal(d, clusters, incompat); err != nil {
			return fmt.Errorf("journal:%04d: %w", slot, err)
		}
		t.r.progress("Setting journal size", int64(i+1), int64(len(todo)))
	}
	t.r.journalClusters = clusters
	t.r.journalIncompat = incompat
	return nil
}

// makeJournal sizes journal inode d0 to clusters and formats it
// (ocfs2_make_journal).
func (t *tunefsVol) makeJournal(d0 *ondisk.Dinode, clusters uint32, incompat uint32) error {
	if d0.Flags&(ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeJournal) != ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeJournal || d0.Extents == nil {
		return t.Cache.Annotate(&ondisk.CorruptError{Struct: "journal dinode", Field: "i_flags", Msg: fmt.Sprintf("0x%x is not a journal's", d0.Flags)}, d0.Blkno)
	}
	d := d0.Clone()
	if err := t.resizeFile(d, clusters); err != nil {
		return err
	}
	d.Size = uint64(d.Clusters) * uint64(t.cs())
	d.Mtime = t.now()
	if err := t.writeInode(d); err != nil {
		return err
	}
	if err := t.r.interrupt("journal-allocated"); err != nil {
		return err
	}
	if err := t.zeroFile(d, "Zeroing journal"); err != nil {
		return err
	}
	buf := journalSuperBlockBytes(t.bs(), uint32(uint64(d.Clusters)*t.bpc()), t.SB.UUID, incompat)
	m, err := extent.Lookup(t.Cache, d.Extents, 0, fmt.Sprintf("journal inode %d", d.Blkno))
	if err != nil {
		return err
	}
	return t.writeRaw(m.Rec.Blkno, buf)
}

// resizeFile grows (clusters from the global bitmap where libocfs2 takes
// them, claimClusters) or truncates (clusters back to
// the global bitmap) the extent-mapped file d to clusters clusters. d is
// the caller's copy; the caller writes it.
func (t *tunefsVol) resizeFile(d *ondisk.Dinode, clusters uint32) error {
	tree, err := t.tree(d)
	if err != nil {
		return err
	}
	defer func() { d.LastEBBlk = tree.LastEB }()
	switch {
	case clusters > d.Clusters:
		for cpos := d.Clusters; cpos < clusters; {
			run, err := t.claimClusters(1, int(clusters-cpos))
			if err != nil {
				return err
			}
			if err := tree.Insert(ondisk.ExtentRec{Cpos: cpos, Clusters: uint32(run.Count), Blkno: uint64(run.Start) * t.bpc()}); err != nil {
				return err
			}
			cpos += uint32(run.Count)
			d.Clusters += uint32(run.Count)
		}
	case clusters < d.Clusters:
		gb, err := t.globalBitmap()
		if err != nil {
			return err
		}
		pieces, err := tree.Remove(clusters, d.Clusters-clusters)
		if err != nil {
			return err
		}
		for _, p := range pieces {
			if p.Flags&ondisk.ExtentRefcounted != 0 {
				return t.Cache.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "extent flags", Msg: "a system file with shared (refcounted) clusters"}, d.Blkno)
			}
			if err := gb.FreeClusters(t.tx, uint32(p.Blkno/t.bpc()), int(p.Clusters)); err != nil {
				return err
			}
			d.Clusters -= p.Clusters
		}
	}
	return t.tx.Err
}

// zeroFile zeroes every cluster file d maps.
func (t *tunefsVol) zeroFile(d *ondisk.Dinode, stage string) error {
	var recs []ondisk.ExtentRec
	if err := extent.Walk(t.Cache, d.Extents, fmt.Sprintf("inode %d", d.Blkno), func(r ondisk.ExtentRec) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		return err
	}
	var total, done int64
	for _, r := range recs {
		total += int64(r.Clusters)
	}
	for _, r := range recs {
		if err := t.zeroClusters(r.Blkno/t.bpc(), uint64(r.Clusters), ""); err != nil {
			return err
		}
		done += int64(r.Clusters)
		if total*int64(t.cs()) >= 64<<20 {
			t.r.progress(stage, done*int64(t.cs()), total*int64(t.cs()))
		}
	}
	return nil
}
