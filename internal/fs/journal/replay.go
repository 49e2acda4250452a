package journal

import (
	"fmt"
	"sort"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// ReplayReport says what a replay found and did.
type ReplayReport struct {
	// Needed is false when s_start was 0: the log was empty.
	Needed bool
	// FirstSeq is the first transaction ID the log expected (s_sequence);
	// EndSeq is the first ID not found committed. Transactions
	// FirstSeq..EndSeq-1 were replayed.
	FirstSeq, EndSeq uint32
	Transactions     int
	// Copies is the number of logged block copies applied; Blocks the
	// number of distinct home blocks written; RevokeHits the copies
	// skipped because a later (or the same) transaction revoked them.
	Copies, Blocks, RevokeHits int
	// Revokes is the number of blocks revoked by committed transactions
	// (duplicate records within a transaction count once).
	Revokes int
	// Damage, when not nil, says why the walk stopped on something that
	// looked like a log block of the expected transaction but was not
	// valid (a bad tag, a bad revoke count, an unknown block type). As
	// jbd2 does, the replay then keeps the transactions committed before
	// it and drops the damaged one. A clean end of the log (a block
	// without the magic or with another sequence) is not damage.
	Damage error
	// NewSequence is the s_sequence written back (EndSeq+1, as jbd2 and
	// fsck.ocfs2 do), with s_start 0.
	NewSequence uint32
}

// loggedCopy is one block copy found in a committed transaction.
type loggedCopy struct {
	home   uint64
	pos    uint32 // journal block holding the copy
	seq    uint32
	escape bool
}

// seqAfter reports whether transaction ID a comes after b, with the
// wrap-around arithmetic jbd2 uses (tid_gt).
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// logWindow reads log blocks through a small read-ahead window, so that a
// scan of a long log does a few large reads instead of one per block.
type logWindow struct {
	jf    *journalFile
	max   uint32 // s_maxlen: reads never run past it
	start uint32
	n     uint32
	buf   []byte
}

const windowBlocks = 64

func (w *logWindow) block(pos uint32) ([]byte, error) {
	bs := uint32(w.jf.bs)
	if pos < w.start || pos >= w.start+w.n {
		n := min(windowBlocks, w.max-pos)
		if w.buf == nil {
			w.buf = make([]byte, windowBlocks*bs)
		}
		if err := w.jf.read(uint64(pos), w.buf[:n*bs]); err != nil {
			w.n = 0
			return nil, err
		}
		w.start, w.n = pos, n
	}
	off := (pos - w.start) * bs
	return w.buf[off : off+bs], nil
}

// scanResult is what the scan pass learns about the log.
type scanResult struct {
	endSeq  uint32
	txs     int
	copies  []loggedCopy      // copies of committed transactions, in log order
	revoked map[uint64]uint32 // block -> latest committed transaction revoking it
	revokes int
	damage  error
}

// scanLog walks the log from s_start expecting s_sequence, as jbd2's
// PASS_SCAN and PASS_REVOKE do, and returns the committed copies and
// revokes. Revokes and copies of the transaction that never committed are
// dropped (jbd2 ignores them; fsck.ocfs2 1.8.7 applies such revokes).
func scanLog(jf *journalFile) (*scanResult, error) {
	sb := jf.sb
	is64 := sb.Has64Bit()
	first, maxlen := sb.First, sb.MaxLen
	span := maxlen - first
	wrap := func(p uint32) uint32 {
		if p >= maxlen {
			p -= span
		}
		return p
	}
	w := &logWindow{jf: jf, max: maxlen}
	res := &scanResult{endSeq: sb.SSequence, revoked: map[uint64]uint32{}}
	var (
		pending    []loggedCopy // copies of the transaction being read
		pendingRev []uint64
		pos        = sb.Start
		seq        = sb.SSequence
		walked     uint32
		devBlocks  = jf.c.Blocks()
	)
	damaged := func(at uint32, format string, args ...any) {
		res.damage = jf.annotateLog(&ondisk.CorruptError{Struct: "journal", Msg: fmt.Sprintf("transaction %d: ", seq) + fmt.Sprintf(format, args...)}, uint64(at))
	}
	for {
		if walked >= span {
			// Every log block was read and the next one would be read a
			// second time: the log has no end (fsck.ocfs2 rejects such a
			// journal; o2go's writer always leaves a block free).
			damaged(pos, "the log has no end: walked all %d log blocks", span)
			break
		}
		b, err := w.block(pos)
		if err != nil {
			return nil, err
		}
		at := pos
		pos = wrap(pos + 1)
		walked++
		h, err := ondisk.DecodeJournalHeader(b)
		if err != nil || h.Sequence != seq {
			break // the end of the log
		}
		switch h.BlockType {
		case ondisk.JBD2DescriptorBlock:
			d, err := ondisk.DecodeDescriptorBlock(b, is64)
			if err != nil {
				res.damage = jf.annotateLog(err, uint64(at))
				goto done
			}
			for i, t := range d.Tags {
				if t.Blocknr >= devBlocks {
					damaged(at, "tag %d names block %d, beyond the device's %d blocks", i, t.Blocknr, devBlocks)
					goto done
				}
				pending = append(pending, loggedCopy{home: t.Blocknr, pos: pos, seq: seq, escape: t.Flags&ondisk.JBD2FlagEscape != 0})
				pos = wrap(pos + 1)
				walked++
			}
		case ondisk.JBD2RevokeBlock:
			r, err := ondisk.DecodeRevokeBlock(b, is64)
			if err != nil {
				res.damage = jf.annotateLog(err, uint64(at))
				goto done
			}
			pendingRev = append(pendingRev, r.Blocks...)
		case ondisk.JBD2CommitBlock:
			res.copies = append(res.copies, pending...)
			for _, blk := range pendingRev {
				old, ok := res.revoked[blk]
				if ok && old == seq {
					continue // a duplicate record (o2go writes each twice)
				}
				if !ok || seqAfter(seq, old) {
					res.revoked[blk] = seq
				}
				res.revokes++
			}
			pending, pendingRev = pending[:0], pendingRev[:0]
			res.txs++
			seq++
		default:
			damaged(at, "unknown journal block type %d", h.BlockType)
			goto done
		}
	}
done:
	res.endSeq = seq
	return res, nil
}

// replayLog replays the committed transactions of jf's log into their home
// blocks, syncs, then marks the log empty (s_start 0, s_sequence = end+1)
// and syncs again. Running it twice, or again after a crash part way, gives
// the same result: the log is only declared empty once every home block is
// durable.
func replayLog(jf *journalFile) (*ReplayReport, error) {
	sb := jf.sb
	rep := &ReplayReport{FirstSeq: sb.SSequence, EndSeq: sb.SSequence}
	if sb.Start == 0 {
		return rep, nil
	}
	rep.Needed = true
	res, err := scanLog(jf)
	if err != nil {
		return rep, err
	}
	rep.EndSeq, rep.Transactions, rep.Damage, rep.Revokes = res.endSeq, res.txs, res.damage, res.revokes

	// The final content of a home block is its last copy that no revoke
	// covers: a copy in transaction T is skipped when a committed
	// transaction with ID >= T revoked the block.
	last := map[uint64]loggedCopy{}
	for _, cp := range res.copies {
		if rs, ok := res.revoked[cp.home]; ok && !seqAfter(cp.seq, rs) {
			rep.RevokeHits++
			continue
		}
		rep.Copies++
		last[cp.home] = cp
	}
	chosen := make([]loggedCopy, 0, len(last))
	for _, cp := range last {
		chosen = append(chosen, cp)
	}
	rep.Blocks = len(chosen)
	if err := writeCopiesHome(jf, chosen); err != nil {
		return rep, err
	}
	if err := jf.c.Device().Sync(); err != nil {
		return rep, fmt.Errorf("%s: syncing replayed blocks: %w", jf.name, err)
	}
	rep.NewSequence = res.endSeq + 1
	if err := jf.setSB(0, rep.NewSequence); err != nil {
		return rep, err
	}
	if err := jf.c.Device().Sync(); err != nil {
		return rep, fmt.Errorf("%s: syncing the journal superblock: %w", jf.name, err)
	}
	homes := make([]uint64, len(chosen))
	for i, cp := range chosen {
		homes[i] = cp.home
	}
	jf.c.Forget(homes...)
	return rep, nil
}

// replayBatch bounds the memory of a replay: copies are read and written
// this many blocks at a time.
const replayBatch = 1024

// writeCopiesHome reads the chosen copies from the log (in log order, so
// reads are sequential) and writes them to their home blocks (in block
// order, coalescing neighbours into one write).
func writeCopiesHome(jf *journalFile, chosen []loggedCopy) error {
	sort.Slice(chosen, func(a, b int) bool { return chosen[a].home < chosen[b].home })
	bs := jf.bs
	w := &logWindow{jf: jf, max: jf.sb.MaxLen}
	for len(chosen) > 0 {
		n := min(len(chosen), replayBatch)
		batch := chosen[:n]
		chosen = chosen[n:]
		byPos := make([]int, n)
		for i := range byPos {
			byPos[i] = i
		}
		sort.Slice(byPos, func(a, b int) bool { return batch[byPos[a]].pos < batch[byPos[b]].pos })
		data := make([]byte, n*bs)
		for _, i := range byPos {
			src, err := w.block(batch[i].pos)
			if err != nil {
				return err
			}
			dst := data[i*bs : (i+1)*bs]
			copy(dst, src)
			if batch[i].escape {
				ondisk.UnescapeJournalData(dst)
			}
		}
		for i := 0; i < n; {
			j := i + 1
			for j < n && batch[j].home == batch[j-1].home+1 {
				j++
			}
			if err := jf.c.WriteBlock(batch[i].home, data[i*bs:j*bs]); err != nil {
				return fmt.Errorf("%s: replaying into block %d: %w", jf.name, batch[i].home, err)
			}
			i = j
		}
	}
	return nil
}

// Replay replays the journal at inode ino into its home blocks if its log
// is not empty (s_start != 0), whatever the dinode's DIRTY flag says, and
// leaves the dinode alone: what fsck.ocfs2 does for a dirty slot, and the
// building block of Load and Recover. Replayed blocks are dropped from the
// cache; callers re-read anything they decoded before.
func Replay(c *metacache.Cache, ino uint64, cfg Config) (*ReplayReport, error) {
	jf, err := openJournalFile(c, ino, cfg.ClusterSize, cfg.Name)
	if err != nil {
		return nil, err
	}
	if err := jf.checkFeatures(false); err != nil {
		return nil, err
	}
	return replayLog(jf)
}

// RecoveryReport says what Recover did to another slot's journal.
type RecoveryReport struct {
	// Skipped: the journal's DIRTY flag was clear; nothing was touched.
	Skipped bool
	Replay  *ReplayReport
	// RecoveryGeneration is the new ij_recovery_generation.
	RecoveryGeneration uint32
}

// Recover recovers the journal of another node's slot after that node
// died (ocfs2_replay_journal): only when the dinode says DIRTY, it replays
// the log, then clears DIRTY and bumps ij_recovery_generation (which tells
// the dead node, should it come back, and other nodes that the slot was
// recovered), written in place and synced. The caller holds the slot's
// journal cluster lock, and goes on to recover the slot's local alloc,
// truncate log and orphans.
func Recover(c *metacache.Cache, ino uint64, cfg Config) (*RecoveryReport, error) {
	jf, err := openJournalFile(c, ino, cfg.ClusterSize, cfg.Name)
	if err != nil {
		return nil, err
	}
	rep := &RecoveryReport{RecoveryGeneration: jf.dinode.Journal().RecoveryGeneration}
	if jf.dinode.Journal().Flags&ondisk.JournalDirty == 0 {
		rep.Skipped = true
		return rep, nil
	}
	if err := jf.checkFeatures(false); err != nil {
		return nil, err
	}
	if rep.Replay, err = replayLog(jf); err != nil {
		return rep, err
	}
	ij, err := jf.setDinodeFlags(func(ij *ondisk.Journal) {
		ij.Flags &^= ondisk.JournalDirty
		ij.RecoveryGeneration++
	})
	if err != nil {
		return rep, err
	}
	rep.RecoveryGeneration = ij.RecoveryGeneration
	return rep, nil
}
