package metacache

// UndoTx wraps a Tx for one operation so that a failure half way leaves no
// trace: it keeps the contents each buffer had before the operation first
// touched it, and Rollback puts them back. JBD2 cannot take a change out of
// a running transaction, so an operation that fails after changing buffers
// (a directory insert that hits ENOSPC after the inode was allocated) must
// restore them before the transaction commits; after Rollback those buffers
// hold exactly their old bytes, and logging them again is harmless.
//
// Callers hold the volume's metadata lock for the whole operation, so no
// one else sees the intermediate state.
type UndoTx struct {
	Tx
	C      *Cache
	before map[*Buffer][]byte
	order  []*Buffer
	done   bool
}

// NewUndoTx starts an undoable operation on tx.
func NewUndoTx(c *Cache, tx Tx) *UndoTx {
	return &UndoTx{Tx: tx, C: c, before: map[*Buffer][]byte{}}
}

func (u *UndoTx) save(b *Buffer) {
	if _, ok := u.before[b]; ok {
		return
	}
	u.before[b] = append([]byte(nil), b.Data...)
	u.order = append(u.order, b)
}

// Access implements Tx.
func (u *UndoTx) Access(b *Buffer) error {
	u.save(b)
	return u.Tx.Access(b)
}

// New implements Tx: a block that was cached keeps its old bytes for undo;
// one that was not is simply forgotten on Rollback.
func (u *UndoTx) New(blkno uint64) (*Buffer, error) {
	u.C.mu.Lock()
	old, cached := u.C.bufs[blkno]
	u.C.mu.Unlock()
	if cached {
		u.save(old)
	}
	b, err := u.Tx.New(blkno)
	if err == nil && !cached {
		u.before[b] = nil // nil: forget on rollback
		u.order = append(u.order, b)
	}
	return b, err
}

// Rollback restores every buffer the operation touched.
func (u *UndoTx) Rollback() {
	if u.done {
		return
	}
	u.done = true
	for i := len(u.order) - 1; i >= 0; i-- {
		b := u.order[i]
		old := u.before[b]
		if old == nil {
			// A block this operation took fresh: the journal may already
			// hold it, zeroed; revoke it so nothing is ever written there
			// from this transaction (the block is free again, and may
			// next hold file data).
			clear(b.Data)
			u.Tx.Revoke(b.Blkno)
			u.C.Forget(b.Blkno)
			continue
		}
		copy(b.Data, old)
		u.C.mu.Lock()
		b.decoded = nil
		u.C.mu.Unlock()
	}
}

// Finish ends the operation successfully (nothing to undo any more).
func (u *UndoTx) Finish() { u.done = true }
