package extent

import (
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// TruncateLog is a slot's truncate_log:NNNN: the runs of clusters its
// truncates and hole punches freed, still marked used in the global bitmap
// until the log is flushed. Freed clusters must not be reused before the
// transaction that freed them is durable (a crash would leave the old file
// pointing at someone else's new data); parking them in the log, and
// flushing only after a journal checkpoint, is how OCFS2 keeps that rule
// without locking the global bitmap for every truncate.
//
// Flush protocol (the caller's, because it spans transactions): when
// NeedsFlush, checkpoint the journal (all truncates that filled the log are
// then durable and home), then in a new transaction call Flush.
type TruncateLog struct {
	C     *metacache.Cache
	Blkno uint64 // the truncate_log:NNNN inode
	// FreeClusters returns a run to the global bitmap (fs/alloc's
	// GlobalBitmap.FreeClusters in the write engine).
	FreeClusters func(tx metacache.Tx, start uint32, n int) error
}

// FlushThreshold: flush when fewer free records than this remain, so an
// operation that appends a few runs never finds the log full.
const FlushThreshold = 16

func (l *TruncateLog) load() (*ondisk.Dinode, *metacache.Buffer, error) {
	d, err := l.C.Dinode(l.Blkno)
	if err != nil {
		return nil, nil, err
	}
	if d.TruncateLog == nil {
		return nil, nil, l.C.Annotate(&ondisk.CorruptError{Struct: "dinode", Field: "i_flags", Msg: "truncate log inode without DEALLOC_FL"}, l.Blkno)
	}
	if len(d.TruncateLog.Recs) > int(d.TruncateLog.Count) {
		return nil, nil, l.C.Annotate(&ondisk.CorruptError{Struct: "truncate log", Field: "tl_used", Msg: fmt.Sprintf("is %d, beyond tl_count %d", len(d.TruncateLog.Recs), d.TruncateLog.Count)}, l.Blkno)
	}
	b, err := l.C.Get(l.Blkno)
	return d, b, err
}

// Used and capacity of the log.
func (l *TruncateLog) Used() (used, capacity int, err error) {
	d, _, err := l.load()
	if err != nil {
		return 0, 0, err
	}
	return len(d.TruncateLog.Recs), int(d.TruncateLog.Count), nil
}

// NeedsFlush reports whether the log is nearly full.
func (l *TruncateLog) NeedsFlush() (bool, error) {
	used, capacity, err := l.Used()
	return err == nil && capacity-used < FlushThreshold, err
}

// Room reports how many more runs Append can take without a flush.
func (l *TruncateLog) Room() (int, error) {
	used, capacity, err := l.Used()
	return capacity - used, err
}

// Append records a freed run, merging it with the last record when it
// continues it (as the kernel does). A full log is an error: callers check
// Room before freeing and split their work.
func (l *TruncateLog) Append(tx metacache.Tx, start, n uint32) error {
	if n == 0 {
		return nil
	}
	d, b, err := l.load()
	if err != nil {
		return err
	}
	nd := *d
	tl := *d.TruncateLog
	tl.Recs = slices.Clone(tl.Recs)
	if k := len(tl.Recs); k > 0 && tl.Recs[k-1].Start+tl.Recs[k-1].Clusters == start {
		tl.Recs[k-1].Clusters += n
	} else {
		if len(tl.Recs) >= int(tl.Count) {
			return fmt.Errorf("%s: truncate log inode %d is full (%d records): flush it first", l.C.Device().Name(), l.Blkno, tl.Count)
		}
		tl.Recs = append(tl.Recs, ondisk.TruncateRec{Start: start, Clusters: n})
	}
	nd.TruncateLog = &tl
	return l.write(tx, &nd, b)
}

// Flush frees every recorded run to the global bitmap and empties the log,
// in the caller's transaction (which must come after a checkpoint: see the
// type's doc). It returns the number of clusters freed.
func (l *TruncateLog) Flush(tx metacache.Tx) (uint64, error) {
	d, b, err := l.load()
	if err != nil || len(d.TruncateLog.Recs) == 0 {
		return 0, err
	}
	var freed uint64
	for _, r := range d.TruncateLog.Recs {
		if err := l.FreeClusters(tx, r.Start, int(r.Clusters)); err != nil {
			return freed, fmt.Errorf("flushing truncate log inode %d: run [%d,+%d): %w", l.Blkno, r.Start, r.Clusters, err)
		}
		freed += uint64(r.Clusters)
	}
	nd := *d
	nd.TruncateLog = &ondisk.TruncateLog{Count: d.TruncateLog.Count}
	return freed, l.write(tx, &nd, b)
}

func (l *TruncateLog) write(tx metacache.Tx, d *ondisk.Dinode, b *metacache.Buffer) error {
	if err := tx.Access(b); err != nil {
		return err
	}
	if err := d.Encode(b.Data); err != nil {
		return err
	}
	tx.Dirty(b, ondisk.DinodeCheckOffset)
	return nil
}
