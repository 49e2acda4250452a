package journal

import (
	"fmt"
	"sort"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// ioAlign aligns the buffers handed to the device, so that O_DIRECT
// writes need no bounce copy.
const ioAlign = 4096

// closeLocked closes the running transaction: it copies every dirtied
// buffer into the transaction's log image (revoke blocks, then each
// descriptor followed by the copies it describes), queues it for writing
// and opens the next transaction. No handle may be changing buffers: the
// caller holds mu with no handle open (or, from Begin, the metadata lock
// exclusively). Under mu.
func (j *Journal) closeLocked() error {
	r := j.running
	bs := j.bs
	// r.order may name a block twice (revoked, then dirtied again) or a
	// block no longer dirty; queued keeps the first live mention.
	blocks := j.closing[:0]
	for _, blk := range r.order {
		tb := r.bufs[blk]
		if tb == nil || !tb.dirty || tb.queued {
			continue
		}
		tb.queued = true
		blocks = append(blocks, tb)
	}
	revokes := make([]uint64, 0, len(r.revokes))
	for _, blk := range r.revokeOrder {
		if _, ok := r.revokes[blk]; !ok {
			continue
		}
		delete(r.revokes, blk) // a second mention of blk is a duplicate
		if tb := r.bufs[blk]; tb == nil || !tb.queued {
			revokes = append(revokes, blk)
		}
	}
	nd, nr := len(blocks), len(revokes)
	nrb := (nr + j.revCap - 1) / j.revCap
	ndesc := (nd + j.descCap - 1) / j.descCap
	r.nlog = nrb + ndesc + nd + 1
	r.nrev = nr
	r.revoked = revokes
	r.image = j.imageBuffer((r.nlog - 1) * bs)
	r.logged = j.loggedBuffer(nd)
	p := 0
	for i := 0; i < nr; i += j.revCap {
		// Each record is written twice: fsck.ocfs2 1.8.7 reads only the
		// first (r_count-16)/8 four-byte records of a revoke block (it
		// divides by the size of a pointer), which the doubled list makes
		// exactly the real ones; jbd2 reads them all, and a duplicate
		// revoke changes nothing.
		recs := revokes[i:min(i+j.revCap, nr)]
		rb := ondisk.RevokeBlock{Sequence: r.seq, Blocks: append(append(make([]uint64, 0, 2*len(recs)), recs...), recs...)}
		if err := rb.Encode(r.image[p*bs:(p+1)*bs], j.is64); err != nil {
			return fmt.Errorf("transaction %d: %w", r.seq, err)
		}
		p++
	}
	for i := 0; i < nd; i += j.descCap {
		chunk := blocks[i:min(i+j.descCap, nd)]
		d := ondisk.DescriptorBlock{Sequence: r.seq, Tags: j.tags[:0]}
		dp := p
		p++
		for _, tb := range chunk {
			dst := r.image[p*bs : (p+1)*bs]
			copy(dst, tb.b.Data)
			data := dst
			var flags uint16
			if ondisk.EscapeJournalData(dst) {
				flags = ondisk.JBD2FlagEscape
				data = append([]byte(nil), tb.b.Data...)
			}
			d.Tags = append(d.Tags, ondisk.JournalBlockTag{Blocknr: tb.b.Blkno, Flags: flags, UUID: j.jf.sb.UUID})
			r.logged = append(r.logged, loggedBlock{blkno: tb.b.Blkno, data: data})
			p++
		}
		d.SetStandardTagFlags()
		if err := d.Encode(r.image[dp*bs:(dp+1)*bs], j.is64); err != nil {
			return fmt.Errorf("transaction %d: %w", r.seq, err)
		}
		j.tags = d.Tags
	}
	base.Assert(p == r.nlog-1, "journal: transaction %d laid out %d blocks, want %d", r.seq, p, r.nlog-1)
	clear(blocks)
	j.closing = blocks[:0]
	// Buffers only accessed leave with their pins; logged ones keep theirs
	// until they are home.
	for blk, tb := range r.bufs {
		if !tb.dirty {
			j.unpin(blk)
		}
		*tb = txBuf{}
		j.freeBufs = append(j.freeBufs, tb)
	}
	next := &transaction{seq: r.seq + 1, bufs: r.bufs, revokes: r.revokes, order: r.order[:0], revokeOrder: r.revokeOrder[:0]}
	clear(next.bufs)
	clear(next.revokes)
	r.bufs, r.order, r.revokes, r.revokeOrder = nil, nil, nil, nil
	j.closed = append(j.closed, r)
	j.running = next
	return nil
}

// free is the number of log blocks a new transaction may use: one block
// always stays unused so that a scan of a full log stops before reaching
// its own tail again (fsck.ocfs2 refuses a log that visits a block twice).
// Under mu or ioMu.
func (j *Journal) free() int { return j.capacity - 1 - j.used }

func (j *Journal) wrap(p uint32) uint32 {
	if p >= j.maxlen {
		p -= j.maxlen - j.first
	}
	return p
}

// writeClosedLocked writes every closed transaction, in order. An error
// aborts the journal. Under ioMu.
func (j *Journal) writeClosedLocked() error {
	for {
		j.mu.Lock()
		if j.err != nil {
			err := j.err
			j.mu.Unlock()
			return err
		}
		if len(j.closed) == 0 {
			j.mu.Unlock()
			return nil
		}
		tx := j.closed[0]
		j.mu.Unlock()
		if err := j.writeTx(tx); err != nil {
			return j.fail(err)
		}
		j.mu.Lock()
		j.closed = j.closed[1:]
		j.commitLocked(tx)
		pinned := len(j.pins)
		j.mu.Unlock()
		if pinned > j.pinLimit {
			if err := j.checkpointLocked(); err != nil {
				return j.fail(err)
			}
		}
	}
}

// writeTx writes one transaction at the head of the log: the superblock
// first if the log was empty (s_start 0), the log image in as few writes
// as the journal's extents and the wrap allow, a sync (which also makes
// the file data the transaction's handles wrote durable: ordered data),
// then the commit block and a second sync. Under ioMu.
func (j *Journal) writeTx(tx *transaction) error {
	if tx.nlog > j.capacity-1 {
		return fmt.Errorf("transaction %d needs %d log blocks, the log has %d", tx.seq, tx.nlog, j.capacity-1)
	}
	if j.free() < tx.nlog || j.relogsRevoked(tx) {
		if err := j.checkpointLocked(); err != nil {
			return err
		}
		if j.free() < tx.nlog {
			return fmt.Errorf("transaction %d needs %d log blocks, only %d free after a checkpoint", tx.seq, tx.nlog, j.free())
		}
	}
	// Unlike jbd2, o2go does not set the REVOKE feature when it first
	// writes a revoke block: fsck.ocfs2 requires every slot's journal to
	// carry the same features ([JOURNAL_MISSING_FEATURE]), and both jbd2's
	// and fsck.ocfs2's replay honour revoke blocks without it.
	start := j.head
	if j.jf.sb.Start == 0 {
		if err := j.jf.setSB(start, tx.seq); err != nil {
			return err
		}
	}
	pos := start
	img := tx.image
	for len(img) > 0 {
		k := min(len(img)/j.bs, int(j.maxlen-pos))
		if err := j.jf.write(uint64(pos), img[:k*j.bs]); err != nil {
			return err
		}
		img = img[k*j.bs:]
		pos = j.wrap(pos + uint32(k))
	}
	dev := j.c.Device()
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("transaction %d: syncing the log: %w", tx.seq, err)
	}
	now := j.now()
	cb := ondisk.CommitBlock{Sequence: tx.seq, CommitSec: uint64(now.Unix()), CommitNsec: uint32(now.Nanosecond())}
	if j.commitBlk == nil {
		j.commitBlk = blockdev.AlignedBuffer(j.bs, ioAlign)
	}
	blk := j.commitBlk
	cb.Encode(blk)
	if err := j.jf.write(uint64(pos), blk); err != nil {
		return err
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("transaction %d: syncing the commit block: %w", tx.seq, err)
	}
	j.mu.Lock()
	tx.start = start
	j.head = j.wrap(pos + 1)
	j.used += tx.nlog
	for _, blk := range tx.revoked {
		if j.logRevoked == nil {
			j.logRevoked = map[uint64]uint32{}
		}
		j.logRevoked[blk] = tx.seq
	}
	j.mu.Unlock()
	return nil
}

// relogsRevoked reports whether tx logs a block that a revoke record still
// in the log names. jbd2 replays such a log correctly, but fsck.ocfs2
// 1.8.7 spins forever on it (revoke_this_block never leaves its loop when
// it finds a revoke older than the copy it replays), so writeTx
// checkpoints first: the log then starts after the revoking transaction.
// The kernel's OCFS2 never revokes and so never meets this. Under ioMu.
func (j *Journal) relogsRevoked(tx *transaction) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.logRevoked) == 0 {
		return false
	}
	for _, lb := range tx.logged {
		if _, ok := j.logRevoked[lb.blkno]; ok {
			j.stats.RevokeCheckpoints++
			return true
		}
	}
	return false
}

// commitLocked files a written transaction's copies as the newest
// committed copies of their blocks (what a checkpoint writes home). Under
// mu.
func (j *Journal) commitLocked(tx *transaction) {
	for _, lb := range tx.logged {
		e := j.cp[lb.blkno]
		if e != nil {
			j.disown(e)
			j.unpin(lb.blkno) // the older copy's reference; the new one keeps the transaction's
		} else {
			e = &cpEntry{blkno: lb.blkno}
			j.cp[lb.blkno] = e
		}
		e.data, e.owner = lb.data, tx
		tx.owned++
	}
	if tx.owned == 0 {
		j.releaseImage(tx) // it logged revokes only
	}
	j.inLog = append(j.inLog, tx)
	j.committed = tx.seq
	j.stats.Committed++
	j.stats.BlocksLogged += uint64(len(tx.logged))
	j.stats.LogWrites += uint64(tx.nlog)
	j.stats.Revoked += uint64(tx.nrev)
	// tx.image stays until no checkpoint entry points into it.
	clear(tx.logged)
	j.spareLogged = tx.logged[:0]
	tx.logged, tx.loggedSet = nil, nil
	j.cond.Broadcast()
}

// dropEntryLocked forgets a checkpoint entry whose copy is home (or no
// longer wanted). Under mu.
func (j *Journal) dropEntryLocked(e *cpEntry) {
	delete(j.cp, e.blkno)
	j.disown(e)
	j.unpin(e.blkno)
}

// disown detaches a checkpoint entry from the transaction whose image
// holds its copy; the image is reused once no entry points into it. Under
// mu.
func (j *Journal) disown(e *cpEntry) {
	tx := e.owner
	e.owner, e.data = nil, nil
	if tx.owned--; tx.owned == 0 {
		j.releaseImage(tx)
	}
}

// maxHomeRun bounds one checkpoint write (blocks).
const maxHomeRun = 256

// checkpointLocked writes every committed copy home (sorted, neighbours
// coalesced into one write), syncs, then moves the log tail past every
// transaction with nothing left to write and records it in the journal
// superblock, synced before the space is reused. Under ioMu.
func (j *Journal) checkpointLocked() error {
	j.mu.Lock()
	// Copies of the entries: commitLocked reuses an entry for the block's
	// next committed copy, and only the copy written here may be dropped.
	entries := make([]cpEntry, 0, len(j.cp))
	for _, e := range j.cp {
		entries = append(entries, *e)
	}
	j.mu.Unlock()
	sort.Slice(entries, func(a, b int) bool { return entries[a].blkno < entries[b].blkno })
	bs := j.bs
	for i := 0; i < len(entries); {
		k := i + 1
		for k < len(entries) && k-i < maxHomeRun && entries[k].blkno == entries[k-1].blkno+1 {
			k++
		}
		var buf []byte
		if k-i == 1 {
			buf = entries[i].data
		} else {
			if j.homeRun == nil {
				j.homeRun = blockdev.AlignedBuffer(maxHomeRun*bs, ioAlign)
			}
			buf = j.homeRun[:(k-i)*bs]
			for n, e := range entries[i:k] {
				copy(buf[n*bs:], e.data)
			}
		}
		if err := j.c.WriteBlock(entries[i].blkno, buf); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		i = k
	}
	dev := j.c.Device()
	if len(entries) > 0 {
		if err := dev.Sync(); err != nil {
			return fmt.Errorf("checkpoint: syncing home blocks: %w", err)
		}
	}
	j.mu.Lock()
	for _, e := range entries {
		if cur := j.cp[e.blkno]; cur != nil && cur.owner == e.owner {
			j.dropEntryLocked(cur)
			j.stats.CheckpointedBlocks++
		}
	}
	k, released := 0, 0
	for k < len(j.inLog) && j.inLog[k].owned == 0 {
		released += j.inLog[k].nlog
		k++
	}
	var tail, tailSeq uint32
	if k < len(j.inLog) {
		tail, tailSeq = j.inLog[k].start, j.inLog[k].seq
	} else {
		tail, tailSeq = j.head, j.running.seq
		if len(j.closed) > 0 {
			tailSeq = j.closed[0].seq
		}
	}
	j.mu.Unlock()
	sb := j.jf.sb
	if sb.Start != 0 && (tail != sb.Start || tailSeq != sb.SSequence) {
		// Copies written home by Revoke since the last sync must be
		// durable before the log forgets them.
		if len(entries) == 0 {
			if err := dev.Sync(); err != nil {
				return fmt.Errorf("checkpoint: syncing home blocks: %w", err)
			}
		}
		if err := j.jf.setSB(tail, tailSeq); err != nil {
			return err
		}
		if err := dev.Sync(); err != nil {
			return fmt.Errorf("checkpoint: syncing the journal superblock: %w", err)
		}
	}
	j.mu.Lock()
	for _, tx := range j.inLog[:k] {
		for _, blk := range tx.revoked {
			if j.logRevoked[blk] == tx.seq {
				delete(j.logRevoked, blk)
			}
		}
		j.recycle(tx)
	}
	j.inLog = j.inLog[k:]
	j.used -= released
	base.Assert(j.used >= 0 && (len(j.inLog) > 0 || j.used == 0), "journal: log use %d with %d transactions in the log", j.used, len(j.inLog))
	j.stats.Checkpoints++
	j.mu.Unlock()
	return nil
}

// spareImages bounds the log images kept for reuse.
const spareImages = 4

// imageBuffer returns an aligned buffer of n bytes for a transaction's log
// image, reusing the image of a transaction that left the log when one is
// large enough (saving the allocation and its zeroing: every byte of an
// image is written by closeLocked). Under mu.
func (j *Journal) imageBuffer(n int) []byte {
	best := -1
	for i, b := range j.spare {
		if cap(b) >= n && (best < 0 || cap(b) < cap(j.spare[best])) {
			best = i
		}
	}
	if best < 0 {
		return blockdev.AlignedBuffer(n, ioAlign)
	}
	b := j.spare[best]
	j.spare = append(j.spare[:best], j.spare[best+1:]...)
	return b[:n]
}

// loggedBuffer returns an empty list for n logged blocks, reusing the one
// of the last committed transaction. Under mu.
func (j *Journal) loggedBuffer(n int) []loggedBlock {
	b := j.spareLogged
	j.spareLogged = nil
	if cap(b) < n {
		return make([]loggedBlock, 0, n)
	}
	return b[:0]
}

// newTxBuf returns a zeroed txBuf, reusing those of closed transactions.
// Under mu.
func (j *Journal) newTxBuf() *txBuf {
	if n := len(j.freeBufs); n > 0 {
		tb := j.freeBufs[n-1]
		j.freeBufs = j.freeBufs[:n-1]
		return tb
	}
	return &txBuf{}
}

// logsInClosed reports whether a closed transaction not yet written logs
// blkno. Each closed transaction indexes its blocks on the first question
// (Revoke asks, rarely), which keeps the commit path free of per-block
// bookkeeping. Under mu.
func (j *Journal) logsInClosed(blkno uint64) bool {
	for _, tx := range j.closed {
		if tx.loggedSet == nil {
			tx.loggedSet = make(map[uint64]struct{}, len(tx.logged))
			for _, lb := range tx.logged {
				tx.loggedSet[lb.blkno] = struct{}{}
			}
		}
		if _, ok := tx.loggedSet[blkno]; ok {
			return true
		}
	}
	return false
}

// recycle forgets a transaction that left the log. Under mu.
func (j *Journal) recycle(tx *transaction) {
	base.Assert(tx.owned == 0, "journal: recycling transaction %d with %d blocks not home", tx.seq, tx.owned)
	j.releaseImage(tx)
}

// releaseImage keeps the log image of a committed transaction for reuse
// once no checkpoint entry points into it (its owned count is zero):
// every copy it logged is home or superseded by a newer commit, though
// the transaction may still hold log space. A block rewritten by every
// transaction thus cycles through two images instead of one fresh
// allocation per commit, whose page faults and zeroing cost more than
// the copy itself. Under mu.
func (j *Journal) releaseImage(tx *transaction) {
	if tx.image != nil && len(j.spare) < spareImages {
		j.spare = append(j.spare, tx.image[:cap(tx.image)])
	}
	tx.image = nil
}
