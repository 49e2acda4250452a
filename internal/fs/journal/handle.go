package journal

import (
	"fmt"

	"o2go/internal/fs/metacache"
)

// Handle is one atomic metadata operation inside the running transaction
// (jbd2's handle_t). It implements metacache.Tx. A handle is used by one
// goroutine, between Begin and Stop, while that goroutine holds the
// volume's metadata lock exclusively.
type Handle struct {
	j       *Journal
	tx      *transaction
	credits int
	used    int // blocks this handle added to the transaction
	stopped bool
}

var _ metacache.Tx = (*Handle)(nil)

// Begin opens a handle that will dirty at most credits blocks (jbd2's
// credits; exceeding them is tolerated and counted in Stats). When the
// running transaction cannot take that many more blocks, it is closed and
// committed first, synchronously: the caller (holding the metadata lock)
// waits for that commit's I/O, as jbd2's start_handle waits. Begin fails
// once the journal aborted or shut down.
func (j *Journal) Begin(credits int) (*Handle, error) {
	if credits < 0 {
		return nil, fmt.Errorf("%s: negative credits %d", j.name, credits)
	}
	if credits > j.maxTx {
		return nil, fmt.Errorf("%s: a handle of %d credits exceeds the largest transaction (%d blocks)", j.name, credits, j.maxTx)
	}
	j.mu.Lock()
	for {
		if j.err != nil {
			err := j.err
			j.mu.Unlock()
			return nil, err
		}
		if j.shutdown {
			j.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", j.name, ErrShutdown)
		}
		r := j.running
		// A nested handle (r.open > 0) joins the full transaction rather
		// than deadlock waiting for the outer one to stop.
		if r.open > 0 || r.empty() || r.dirty+r.outstanding+credits <= j.maxTx {
			break
		}
		if err := j.closeLocked(); err != nil {
			j.mu.Unlock()
			return nil, j.fail(err)
		}
		j.mu.Unlock()
		j.ioMu.Lock()
		err := j.writeClosedLocked()
		j.ioMu.Unlock()
		if err != nil {
			return nil, err
		}
		j.mu.Lock()
	}
	r := j.running
	r.open++
	r.outstanding += credits
	if r.started.IsZero() {
		r.started = j.now()
	}
	j.mu.Unlock()
	return &Handle{j: j, tx: r, credits: credits}, nil
}

// Sequence is the ID of the transaction the handle belongs to: once
// Journal.Committed(h.Sequence()) the handle's changes are durable.
func (h *Handle) Sequence() uint32 { return h.tx.seq }

// check returns the reason the handle cannot be used, under j.mu.
func (h *Handle) check() error {
	if h.j.err != nil {
		return h.j.err
	}
	if h.stopped {
		return fmt.Errorf("%s: handle used after Stop", h.j.name)
	}
	return nil
}

// join adds b to the handle's transaction (pinning it) if it is not in it
// yet, and cancels a revoke of it in this transaction (the block is in use
// again). Under j.mu.
func (h *Handle) join(b *metacache.Buffer) *txBuf {
	tx := h.tx
	tb, ok := tx.bufs[b.Blkno]
	if !ok {
		tb = h.j.newTxBuf()
		tb.b = b
		tx.bufs[b.Blkno] = tb
		h.j.pin(b)
	} else if tb.b != b {
		// The caller holds a buffer the cache dropped before this
		// transaction pinned the block: follow the one it changes.
		if p := h.j.pins[b.Blkno]; p != nil && p.b != b {
			h.j.c.Unpin(p.b)
			h.j.c.Pin(b)
			p.b = b
		}
		tb.b = b
	}
	if _, ok := tx.revokes[b.Blkno]; ok {
		delete(tx.revokes, b.Blkno)
	}
	return tb
}

// Access implements metacache.Tx: b joins the transaction (and stays
// pinned in the cache) before the caller changes it.
func (h *Handle) Access(b *metacache.Buffer) error {
	j := h.j
	if b.Blkno >= j.c.Blocks() {
		return fmt.Errorf("%s: access to block %d beyond the device (%d blocks)", j.name, b.Blkno, j.c.Blocks())
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	h.join(b)
	return nil
}

// New implements metacache.Tx: a zeroed buffer for a freshly allocated
// block, in the transaction.
func (h *Handle) New(blkno uint64) (*metacache.Buffer, error) {
	j := h.j
	j.mu.Lock()
	err := h.check()
	j.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b, err := j.c.NewBuffer(blkno)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := h.check(); err != nil {
		return nil, err
	}
	h.join(b)
	return b, nil
}

// Dirty implements metacache.Tx: it seals b (META_ECC at checkOffset) and
// logs it with this transaction. After an abort it only seals.
func (h *Handle) Dirty(b *metacache.Buffer, checkOffset int) {
	j := h.j
	j.c.Seal(b, checkOffset)
	j.mu.Lock()
	defer j.mu.Unlock()
	if h.check() != nil {
		return
	}
	tb := h.join(b)
	if !tb.dirty {
		tb.dirty = true
		h.tx.dirty++
		h.tx.order = append(h.tx.order, b.Blkno)
		if h.used++; h.used == h.credits+1 {
			j.stats.CreditOverruns++
		}
	}
}

// Revoke implements metacache.Tx: blkno was metadata and is being freed,
// so no logged copy of it may be replayed or checkpointed over whatever
// the block holds next. The block leaves this transaction, a revoke record
// is logged with it, and a committed copy not yet home is written home now
// (so that the log's tail never has to wait for this transaction); the
// caller may hand the block to the allocator as soon as Revoke returns.
func (h *Handle) Revoke(blkno uint64) {
	j := h.j
	j.mu.Lock()
	if h.check() != nil {
		j.mu.Unlock()
		return
	}
	tx := h.tx
	if tb, ok := tx.bufs[blkno]; ok {
		if tb.dirty {
			tx.dirty--
		}
		delete(tx.bufs, blkno)
		j.unpin(blkno)
	}
	if _, ok := tx.revokes[blkno]; !ok {
		tx.revokes[blkno] = struct{}{}
		tx.revokeOrder = append(tx.revokeOrder, blkno)
	}
	flush := j.logsInClosed(blkno)
	_, home := j.cp[blkno]
	j.mu.Unlock()
	if !flush && !home {
		return
	}
	j.ioMu.Lock()
	defer j.ioMu.Unlock()
	if flush {
		if j.writeClosedLocked() != nil {
			return
		}
	}
	j.mu.Lock()
	var e cpEntry // a copy: commitLocked reuses entries
	if cur := j.cp[blkno]; cur != nil {
		e = *cur
	}
	j.mu.Unlock()
	if e.owner == nil {
		return
	}
	if err := j.c.WriteBlock(blkno, e.data); err != nil {
		j.Abort(fmt.Errorf("writing block %d home before revoking it: %w", blkno, err))
		return
	}
	j.mu.Lock()
	if cur := j.cp[blkno]; cur != nil && cur.owner == e.owner {
		j.dropEntryLocked(cur)
		j.stats.CheckpointedBlocks++
	}
	j.mu.Unlock()
}

// Stop ends the handle. Its changes commit with the transaction (see
// Journal.Committed and CommitAndWait). It returns the abort error if the
// journal aborted.
func (h *Handle) Stop() error {
	j := h.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if h.stopped {
		return fmt.Errorf("%s: handle stopped twice", j.name)
	}
	h.stopped = true
	h.tx.open--
	h.tx.outstanding -= h.credits
	if h.tx.open == 0 {
		j.cond.Broadcast()
	}
	return j.err
}
