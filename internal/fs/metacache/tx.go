package metacache

import (
	"fmt"

	"o2go/internal/ondisk"
)

// Tx is what code that changes metadata needs from a transaction. Every
// metadata change in o2go goes through one: the journal's transactions
// (fs/journal) for mounted volumes, DirectTx for the offline tools (mkfs,
// tunefs, fsck repairs), which like ocfs2-tools write in place.
//
// The rules, the same as JBD2's:
//
//	b, _ := c.Get(blkno)        // or c.Dinode(...) etc. to read
//	tx.Access(b)                // before the first change to b in this tx
//	... change b.Data ...
//	tx.Dirty(b, checkOffset)    // after the change; seals the META_ECC check
//
// New blocks (just allocated, contents irrelevant) come from tx.New, which
// neither reads the device nor needs Access. Freed metadata blocks that may
// later hold file data are revoked, so that replaying an older transaction
// never writes stale metadata over new data.
//
// Callers serialize changes to a volume (fs/inode holds the volume's
// metadata lock exclusively while it runs a Tx); readers hold it shared.
type Tx interface {
	Access(b *Buffer) error
	New(blkno uint64) (*Buffer, error)
	Dirty(b *Buffer, checkOffset int)
	Revoke(blkno uint64)
}

// NewBuffer returns a zeroed buffer for blkno in the cache, replacing any
// cached copy (the block was just allocated: its old contents are garbage).
// Its check is considered verified.
func (c *Cache) NewBuffer(blkno uint64) (*Buffer, error) {
	if blkno >= c.Blocks() {
		return nil, c.annotate(&ondisk.CorruptError{Struct: "block reference", Msg: fmt.Sprintf("new block %d lies beyond the end of the device (%d blocks)", blkno, c.Blocks())}, blkno)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.bufs[blkno]; ok {
		// Keep the same *Buffer: a journal may hold it pinned.
		clear(old.Data)
		old.decoded, old.checked = nil, true
		c.setOwnerLocked(old, 0) // whatever it was, it is not any more
		c.lru.MoveToFront(old.elem)
		return old, nil
	}
	b := &Buffer{Blkno: blkno, Data: make([]byte, c.bs), checked: true}
	c.addLocked(b)
	c.evictLocked()
	return b, nil
}

// Seal finishes a change to b: it recomputes the META_ECC check at
// checkOffset (when the volume has META_ECC and checkOffset >= 0) and drops
// b's decoded form so the next typed read decodes the new bytes.
func (c *Cache) Seal(b *Buffer, checkOffset int) {
	if c.opts.MetaECC && checkOffset >= 0 {
		ondisk.SetBlockCheck(b.Data, checkOffset)
	}
	c.mu.Lock()
	b.decoded, b.checked = nil, true
	c.mu.Unlock()
}

// Pin keeps b in memory until Unpin: the journal pins the buffers of a
// transaction until they are checkpointed to their home location.
func (c *Cache) Pin(b *Buffer) {
	c.mu.Lock()
	b.pins++
	c.mu.Unlock()
}

// Unpin releases one Pin.
func (c *Cache) Unpin(b *Buffer) {
	c.mu.Lock()
	if b.pins > 0 {
		b.pins--
	}
	c.evictLocked()
	c.mu.Unlock()
}

// WriteBlock writes data (whole blocks) to blkno on the device.
func (c *Cache) WriteBlock(blkno uint64, data []byte) error {
	if len(data)%c.bs != 0 || blkno+uint64(len(data)/c.bs) > c.Blocks() {
		return fmt.Errorf("%s: write of %d bytes at block %d: not whole blocks inside the device", c.dev.Name(), len(data), blkno)
	}
	if _, err := c.dev.WriteAt(data, int64(blkno)*int64(c.bs)); err != nil {
		return fmt.Errorf("%s: writing block %d: %w", c.dev.Name(), blkno, err)
	}
	return nil
}

// DirectTx is a Tx without a journal: Dirty writes the block in place at
// once. The offline tools use it (mkfs, tunefs, fsck repairs), as
// ocfs2-tools do; a crash in the middle leaves what fsck must repair.
type DirectTx struct {
	C *Cache
	// Err is the first write error; Dirty has no error result, so callers
	// check it (or Close) when they finish.
	Err error
}

// Access implements Tx.
func (t *DirectTx) Access(*Buffer) error { return t.Err }

// New implements Tx.
func (t *DirectTx) New(blkno uint64) (*Buffer, error) { return t.C.NewBuffer(blkno) }

// Dirty implements Tx: seal and write b now.
func (t *DirectTx) Dirty(b *Buffer, checkOffset int) {
	t.C.Seal(b, checkOffset)
	if err := t.C.WriteBlock(b.Blkno, b.Data); err != nil && t.Err == nil {
		t.Err = err
	}
}

// Revoke implements Tx (nothing to revoke without a journal).
func (t *DirectTx) Revoke(uint64) {}

// Close syncs the device and returns the first error.
func (t *DirectTx) Close() error {
	if t.Err != nil {
		return t.Err
	}
	return t.C.dev.Sync()
}
