package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// extentRun maps n consecutive journal file blocks, from file block file on,
// to consecutive device blocks from dev on.
type extentRun struct {
	file, dev, n uint64
}

// journalFile is one slot's journal:NNNN file as found on disk: its dinode,
// where its blocks are, and its JBD2 superblock.
type journalFile struct {
	c    *metacache.Cache
	name string // "journal inode 23" or Config.Name, for messages
	ino  uint64
	bs   int
	runs []extentRun // sorted by file block, covering [0, blocks)

	sbBlocks int    // fs blocks the 1024-byte superblock spans (2 with 512-byte blocks)
	sbRaw    []byte // those blocks as on disk (patched in place when written)
	sb       *ondisk.JournalSuperBlock
	dinode   *ondisk.Dinode
}

// openJournalFile reads the journal dinode at ino, maps its extents and
// reads and checks its JBD2 superblock.
func openJournalFile(c *metacache.Cache, ino uint64, clusterSize int, name string) (*journalFile, error) {
	bs := c.BlockSize()
	if name == "" {
		name = fmt.Sprintf("journal inode %d", ino)
	}
	if clusterSize < bs || clusterSize%bs != 0 {
		return nil, fmt.Errorf("%s: cluster size %d is not a multiple of the block size %d", name, clusterSize, bs)
	}
	di, err := c.Dinode(ino)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if di.Flags&ondisk.InodeJournal == 0 {
		return nil, c.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_flags",
			Msg: fmt.Sprintf("0x%x lacks JOURNAL_FL: not a journal", di.Flags)}, ino)
	}
	if di.Extents == nil {
		return nil, c.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "id2",
			Msg: "journal has no extent list"}, ino)
	}
	jf := &journalFile{c: c, name: name, ino: ino, bs: bs, dinode: di}
	bpc := uint64(clusterSize / bs)
	if err := jf.mapExtents(di.Extents, bpc, ino, int(di.Extents.TreeDepth), 0); err != nil {
		return nil, err
	}
	sort.Slice(jf.runs, func(a, b int) bool { return jf.runs[a].file < jf.runs[b].file })
	var next uint64
	for _, r := range jf.runs {
		if r.file != next {
			return nil, c.Annotate(&ondisk.CorruptError{Struct: "journal extent list",
				Msg: fmt.Sprintf("file block %d is mapped twice or not at all (next extent starts at %d)", next, r.file)}, ino)
		}
		if r.dev+r.n > c.Blocks() || r.dev == 0 {
			return nil, c.Annotate(&ondisk.CorruptError{Struct: "journal extent list",
				Msg: fmt.Sprintf("blocks [%d,%d) lie outside the device (%d blocks)", r.dev, r.dev+r.n, c.Blocks())}, ino)
		}
		next += r.n
	}

	jf.sbBlocks = (ondisk.JournalSuperBlockSize + bs - 1) / bs
	if next < uint64(jf.sbBlocks)+1 {
		return nil, c.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "id2",
			Msg: fmt.Sprintf("journal maps only %d blocks", next)}, ino)
	}
	jf.sbRaw = make([]byte, jf.sbBlocks*bs)
	if err := jf.read(0, jf.sbRaw); err != nil {
		return nil, err
	}
	sb, err := ondisk.DecodeJournalSuperBlock(jf.sbRaw)
	if err == nil {
		err = sb.CheckFor(bs, next)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, jf.annotateLog(err, 0))
	}
	if sb.First < uint32(jf.sbBlocks) {
		return nil, fmt.Errorf("%s: %w", name, jf.annotateLog(&ondisk.CorruptError{Struct: "journal superblock", Field: "s_first",
			Msg: fmt.Sprintf("is %d, inside the %d-block superblock", sb.First, jf.sbBlocks)}, 0))
	}
	jf.sb = sb
	return jf, nil
}

// mapExtents collects the leaf records under list into jf.runs, reading
// extent blocks through the cache with the kernel's checks (signature,
// identity, generation, record order, depth one less than the parent's).
func (jf *journalFile) mapExtents(list *ondisk.ExtentList, bpc uint64, owner uint64, depth, level int) error {
	if level > ondisk.MaxExtentTreeDepth || int(list.TreeDepth) != depth {
		return jf.c.Annotate(&ondisk.CorruptError{Struct: "extent list", Field: "l_tree_depth",
			Msg: fmt.Sprintf("is %d, want %d", list.TreeDepth, depth)}, owner)
	}
	if err := list.CheckOrder("journal extent list"); err != nil {
		return jf.c.Annotate(err, owner)
	}
	for _, r := range list.Recs {
		if r.Clusters == 0 {
			continue // the empty extent the kernel may leave at index 0
		}
		if depth == 0 {
			jf.runs = append(jf.runs, extentRun{file: uint64(r.Cpos) * bpc, dev: r.Blkno, n: uint64(r.Clusters) * bpc})
			continue
		}
		eb, err := jf.c.ExtentBlock(r.Blkno)
		if err != nil {
			return fmt.Errorf("%s: %w", jf.name, err)
		}
		if err := jf.mapExtents(&eb.List, bpc, r.Blkno, depth-1, level+1); err != nil {
			return err
		}
	}
	return nil
}

// blocks is the number of mapped journal file blocks.
func (jf *journalFile) blocks() uint64 {
	last := jf.runs[len(jf.runs)-1]
	return last.file + last.n
}

// devRun returns the device block of journal file block fb and how many
// file blocks from fb on are device-contiguous.
func (jf *journalFile) devRun(fb uint64) (dev, n uint64, ok bool) {
	i := sort.Search(len(jf.runs), func(i int) bool { return jf.runs[i].file+jf.runs[i].n > fb })
	if i == len(jf.runs) || jf.runs[i].file > fb {
		return 0, 0, false
	}
	r := jf.runs[i]
	return r.dev + (fb - r.file), r.n - (fb - r.file), true
}

// read reads len(p)/bs journal file blocks starting at file block fb, one
// device read per device-contiguous run.
func (jf *journalFile) read(fb uint64, p []byte) error {
	return jf.io(fb, p, false)
}

// write writes len(p)/bs journal file blocks starting at file block fb,
// one device write per device-contiguous run.
func (jf *journalFile) write(fb uint64, p []byte) error {
	return jf.io(fb, p, true)
}

func (jf *journalFile) io(fb uint64, p []byte, write bool) error {
	for len(p) > 0 {
		dev, n, ok := jf.devRun(fb)
		if !ok {
			return fmt.Errorf("%s: journal block %d is not mapped", jf.name, fb)
		}
		n = min(n, uint64(len(p)/jf.bs))
		chunk := p[:n*uint64(jf.bs)]
		var err error
		if write {
			err = jf.c.WriteBlock(dev, chunk)
		} else {
			err = jf.c.ReadBlocks(dev, chunk)
		}
		if err != nil {
			return fmt.Errorf("%s: journal block %d: %w", jf.name, fb, err)
		}
		fb += n
		p = p[len(chunk):]
	}
	return nil
}

// annotateLog names the journal block (and its device block) in a
// corruption error about a log block.
func (jf *journalFile) annotateLog(err error, fb uint64) error {
	var ce *ondisk.CorruptError
	if errors.As(err, &ce) && !ce.HasBlk {
		if dev, _, ok := jf.devRun(fb); ok {
			err = jf.c.Annotate(err, dev)
		}
	}
	return fmt.Errorf("journal block %d: %w", fb, err)
}

// checkFeatures refuses journals using features o2go does not implement:
// the checksum features (OCFS2 never sets them: META_ECC protects blocks),
// async commit, fast commits and anything unknown. A V1 superblock has no
// features; o2go can replay it but never writes to one.
func (jf *journalFile) checkFeatures(forWriting bool) error {
	sb := jf.sb
	if sb.BlockType == ondisk.JBD2SuperblockV1 {
		if forWriting {
			return fmt.Errorf("%s: JBD2 superblock is version 1; o2go only writes version 2 journals (as mkfs.ocfs2 makes them)", jf.name)
		}
		return nil
	}
	if sb.FeatureCompat&^ondisk.JBD2KnownCompat != 0 {
		return fmt.Errorf("%s: unsupported JBD2 compat features 0x%x (journal checksums are not implemented; OCFS2 never enables them)", jf.name, sb.FeatureCompat&^ondisk.JBD2KnownCompat)
	}
	if x := sb.UnsupportedIncompat(); x != 0 {
		return fmt.Errorf("%s: unsupported JBD2 incompat features 0x%x (only REVOKE and 64BIT are implemented)", jf.name, x)
	}
	if sb.FeatureRoCompat&^ondisk.JBD2KnownRoCompat != 0 {
		return fmt.Errorf("%s: unsupported JBD2 ro-compat features 0x%x", jf.name, sb.FeatureRoCompat&^ondisk.JBD2KnownRoCompat)
	}
	if !sb.Has64Bit() && jf.c.Blocks() > 1<<32 {
		return fmt.Errorf("%s: the volume has %d blocks but the journal lacks the 64BIT feature", jf.name, jf.c.Blocks())
	}
	return nil
}

// Offsets of the superblock fields o2go changes; everything else in the
// superblock is left byte for byte as found.
const (
	sbOffErrno    = 0x20
	sbOffSequence = 0x18
	sbOffStart    = 0x1C
)

// setSB patches s_start and s_sequence into the raw superblock and writes
// it (no sync: callers order it).
func (jf *journalFile) setSB(start, seq uint32) error {
	binary.BigEndian.PutUint32(jf.sbRaw[sbOffStart:], start)
	binary.BigEndian.PutUint32(jf.sbRaw[sbOffSequence:], seq)
	jf.sb.Start, jf.sb.SSequence = start, seq
	return jf.write(0, jf.sbRaw)
}

// clearErrno clears s_errno, which jbd2 sets when a journal aborts; the
// kernel's ocfs2 clears it at mount after warning.
func (jf *journalFile) clearErrno() {
	jf.sb.Errno = 0
	binary.BigEndian.PutUint32(jf.sbRaw[sbOffErrno:], 0)
}

// setDinodeFlags rewrites the journal dinode's id1 (ij_flags and
// ij_recovery_generation) in place through a DirectTx, sealing META_ECC,
// and syncs, as ocfs2_journal_toggle_dirty does outside any transaction.
func (jf *journalFile) setDinodeFlags(update func(*ondisk.Journal)) (ondisk.Journal, error) {
	jf.c.Forget(jf.ino) // replay may have rewritten it under the cache
	di, err := jf.c.Dinode(jf.ino)
	if err != nil {
		return ondisk.Journal{}, fmt.Errorf("%s: %w", jf.name, err)
	}
	b, err := jf.c.Get(jf.ino)
	if err != nil {
		return ondisk.Journal{}, fmt.Errorf("%s: %w", jf.name, err)
	}
	ij := di.Journal()
	update(&ij)
	tx := &metacache.DirectTx{C: jf.c}
	if err := tx.Access(b); err != nil {
		return ij, err
	}
	binary.LittleEndian.PutUint32(b.Data[ondisk.DinodeID1Offset:], ij.Flags)
	binary.LittleEndian.PutUint32(b.Data[ondisk.DinodeID1Offset+4:], ij.RecoveryGeneration)
	tx.Dirty(b, ondisk.DinodeCheckOffset)
	if err := tx.Close(); err != nil {
		return ij, fmt.Errorf("%s: writing the journal dinode: %w", jf.name, err)
	}
	jf.dinode, _ = jf.c.Dinode(jf.ino)
	return ij, nil
}
