package xattr

import (
	"fmt"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Destroy frees everything the attributes of an inode being deleted own
// (ocfs2_xattr_remove): value clusters and bucket clusters into Env.Freed,
// the extent blocks of value and bucket trees and the xattr block to Meta.
// It works in steps that each leave a consistent inode, so that it can
// span transactions: when the truncate log fills it stops and returns
// done=false, and the caller commits, flushes the log (checkpoint first)
// and calls it again in a new transaction until done. Buckets go from the
// highest hash down, as the kernel frees them, so the run at hash 0 that
// every lookup starts from goes last.
//
// When done, d has no in-inode area (its room given back to id2 where the
// inode kind allows), no xattr block, and neither INLINE_XATTR nor
// HAS_XATTR. The caller encodes and dirties d after every call.
func Destroy(env Env, d *ondisk.Dinode, buf *metacache.Buffer) (done bool, err error) {
	if d.DynFeatures&(ondisk.DynHasXattr|ondisk.DynInlineXattr) == 0 {
		d.XattrLoc = 0
		return true, nil
	}
	e, err := newEditor(env, d, buf)
	if err != nil {
		return false, err
	}
	room := 0
	if e.Freed != nil {
		if room, err = e.Freed.Room(); err != nil {
			return false, err
		}
	}
	// spend takes n runs of the truncate log's room, or says to stop.
	spend := func(n int) bool {
		if n > room {
			return false
		}
		room -= n
		return true
	}
	done, err = e.destroy(spend)
	if err != nil {
		return false, err
	}
	if err := e.flush(); err != nil {
		return false, err
	}
	return done, nil
}

func (e *editor) destroy(spend func(int) bool) (bool, error) {
	d := e.d
	s, err := e.loadInline()
	if err != nil {
		return false, err
	}
	if s != nil {
		if ok, err := e.freeValues(s, spend); !ok || err != nil {
			return false, err
		}
		s.h.Entries = nil
		s.dirty = true
		if e.canGiveBackInline() {
			e.giveBackInline()
		} else {
			d.XattrInlineSize = 0
			d.DynFeatures &^= ondisk.DynInlineXattr
			e.inline = nil
		}
	}
	x, err := e.loadBlock()
	if err != nil {
		return false, err
	}
	if x != nil {
		if !x.indexed() {
			if ok, err := e.freeValues(x.s, spend); !ok || err != nil {
				return false, err
			}
		} else if ok, err := e.destroyTree(spend); !ok || err != nil {
			return false, err
		}
		if err := e.freeBlock(); err != nil {
			return false, err
		}
	}
	d.XattrLoc = 0
	d.DynFeatures &^= ondisk.DynHasXattr | ondisk.DynInlineXattr
	return true, nil
}

// freeValues removes the entries of s whose values live in clusters, from
// the last, while the truncate log has room for their runs.
func (e *editor) freeValues(s *store, spend func(int) bool) (bool, error) {
	for i := len(s.h.Entries) - 1; i >= 0; i-- {
		ent := &s.h.Entries[i]
		if ent.Local() {
			continue
		}
		n, err := e.valueRuns(ent.Root, s.blkno)
		if err != nil {
			return false, err
		}
		if !spend(n) {
			return false, nil
		}
		if err := e.removeAt(location{s: s, i: i}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// destroyTree frees the bucket runs of an indexed block from the highest
// hash down: the values of each run's buckets, then the run itself.
func (e *editor) destroyTree(spend func(int) bool) (bool, error) {
	x := e.xb
	var runs []ondisk.ExtentRec
	if err := extent.Walk(e.C, &x.xb.Tree.List, e.treeOwner(), func(r ondisk.ExtentRec) error {
		runs = append(runs, r)
		return nil
	}); err != nil {
		return false, err
	}
	bpb := uint64(e.bucketBlocks())
	for k := len(runs) - 1; k >= 0; k-- {
		r := runs[k]
		_, n, err := e.runBuckets(r)
		if err != nil {
			return false, err
		}
		for i := 0; i < n; i++ {
			b, err := e.loadBucket(r.Blkno + uint64(i)*bpb)
			if err != nil {
				return false, err
			}
			ok, err := e.freeValues(b.s, spend)
			if b.s.dirty {
				b.markDirty()
			}
			if !ok || err != nil {
				return false, err
			}
		}
		if !spend(1) {
			return false, nil
		}
		t := e.indexTree()
		pieces, err := t.Remove(r.Cpos, r.Clusters)
		x.xb.Tree.LastEBBlk = t.LastEB
		if err != nil {
			return false, err
		}
		for _, p := range pieces {
			if err := e.free(uint32(p.Blkno/uint64(e.bpc)), p.Clusters); err != nil {
				return false, err
			}
			x.xb.Tree.Clusters -= min(x.xb.Tree.Clusters, p.Clusters)
		}
		x.dirty = true
		// The run's buckets are gone: nothing of them is written.
		for blk := range e.buckets {
			if blk >= r.Blkno && blk < r.Blkno+uint64(r.Clusters)*uint64(e.bpc) {
				delete(e.buckets, blk)
			}
		}
	}
	if len(x.xb.Tree.List.Recs) != 0 {
		return false, fmt.Errorf("%s: bucket tree still maps %d records after freeing every run", e.owner(), len(x.xb.Tree.List.Recs))
	}
	return true, nil
}
