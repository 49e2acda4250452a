package fsck

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/inode"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// repairEnv holds what the repairs that allocate or free need: the
// volume's allocators and an offline write engine (fs/inode without a
// journal: every operation's blocks are written in place when it ends,
// as ocfs2-tools write).
type repairEnv struct {
	geo    alloc.Geometry
	global *alloc.GlobalBitmap
	inodes map[uint16]*alloc.ChainAllocator // by slot; 0xFFFF is global_inode_alloc
	blocks map[uint16]*alloc.ChainAllocator // extent_alloc by slot
	tl     *extent.TruncateLog
	fs     *inode.FS
}

// repairEnvironment builds (once per open) the allocators of slot 0, the
// slot libocfs2 and so fsck.ocfs2 allocate from.
func (c *checker) repairEnvironment() (*repairEnv, error) {
	if c.repair != nil {
		return c.repair, nil
	}
	if !c.rw {
		return nil, fmt.Errorf("internal error: repair environment in a read-only check")
	}
	geo, err := alloc.NewGeometry(c.v.Super)
	if err != nil {
		return nil, err
	}
	e := &repairEnv{geo: geo, inodes: map[uint16]*alloc.ChainAllocator{}, blocks: map[uint16]*alloc.ChainAllocator{}}
	if e.global, err = alloc.OpenGlobalBitmap(c.v.Cache, geo, c.sys.globalBitmap); err != nil {
		return nil, err
	}
	e.tl = &extent.TruncateLog{C: c.v.Cache, Blkno: c.sys.truncateLogs[0], FreeClusters: e.global.FreeClusters}
	orphan := c.sys.orphanDirs[0]
	w := &inode.Writer{Slot: 0, OrphanDir: orphan, Opts: inode.Options{Now: c.o.Now, NoAtime: true}}
	w.Journal = offlineJournal{c: c.v.Cache}
	w.Alloc = inode.Allocators{
		Inodes:   metaDispatch{c: c, kind: ondisk.SysInodeAlloc},
		Blocks:   metaDispatch{c: c, kind: ondisk.SysExtentAlloc},
		Clusters: globalClusters{e.global},
		Truncate: e.tl,
	}
	var seed [4]byte
	rand.Read(seed[:])
	w.SeedGeneration(binary.LittleEndian.Uint32(seed[:]))
	e.fs = &inode.FS{C: c.v.Cache, SB: c.v.SB, W: w}
	c.repair = e
	return e, nil
}

// suballocator returns the inode or extent allocator of slot.
func (c *checker) suballocator(kind ondisk.SystemFileKind, slot uint16) (*alloc.ChainAllocator, error) {
	e := c.repair
	m := e.inodes
	if kind == ondisk.SysExtentAlloc {
		m = e.blocks
	}
	if a := m[slot]; a != nil {
		return a, nil
	}
	var blk uint64
	var name string
	switch {
	case kind == ondisk.SysInodeAlloc && slot == alloc.GlobalInodeAllocSlot:
		blk, name = c.sys.globalInodeAlloc, "global_inode_alloc"
	case int(slot) >= c.maxSlots:
		return nil, fmt.Errorf("suballocator slot %d does not exist (the volume has %d)", slot, c.maxSlots)
	case kind == ondisk.SysInodeAlloc:
		blk, name = c.sys.inodeAllocs[slot], fmt.Sprintf("inode_alloc:%04d", slot)
	default:
		blk, name = c.sys.extentAllocs[slot], fmt.Sprintf("extent_alloc:%04d", slot)
	}
	a, err := alloc.OpenSuballocator(c.v.Cache, e.geo, blk, slot, e.global, name)
	if err != nil {
		return nil, err
	}
	m[slot] = a
	return a, nil
}

// metaDispatch allocates from slot 0 and frees to whichever slot's
// allocator an object came from.
type metaDispatch struct {
	c    *checker
	kind ondisk.SystemFileKind
}

func (m metaDispatch) NewMetaBlock(tx metacache.Tx) (extent.MetaBlock, error) {
	a, err := m.c.suballocator(m.kind, 0)
	if err != nil {
		return extent.MetaBlock{}, err
	}
	o, err := a.ClaimObject(tx, 0)
	return extent.MetaBlock(o), err
}

func (m metaDispatch) FreeMetaBlock(tx metacache.Tx, b extent.MetaBlock) error {
	a, err := m.c.suballocator(m.kind, b.Slot)
	if err != nil {
		return err
	}
	return a.FreeObject(tx, alloc.Object(b))
}

// globalClusters hands out data clusters straight from the global bitmap
// (there is no local alloc offline) and frees straight to it.
type globalClusters struct{ g *alloc.GlobalBitmap }

func (g globalClusters) ClaimClusters(tx metacache.Tx, owner uint64, goal, minN, maxN uint32) (uint32, uint32, error) {
	r, err := g.g.ClaimClusters(tx, goal, int(minN), int(maxN))
	if err != nil {
		return 0, 0, err
	}
	return r.Start, uint32(r.Count), nil
}

func (g globalClusters) FreeClusters(tx metacache.Tx, start, n uint32) error {
	return g.g.FreeClusters(tx, start, int(n))
}

// batchTx collects an operation's blocks and writes them when it ends:
// a failed operation that the write engine rolled back writes its blocks'
// old contents, so nothing half done reaches the disk.
type batchTx struct {
	c     *metacache.Cache
	dirty map[uint64]*metacache.Buffer
	order []uint64
	err   error
}

func newBatchTx(c *metacache.Cache) *batchTx {
	return &batchTx{c: c, dirty: map[uint64]*metacache.Buffer{}}
}

func (t *batchTx) hold(b *metacache.Buffer) {
	if _, ok := t.dirty[b.Blkno]; !ok {
		t.c.Pin(b)
		t.dirty[b.Blkno] = b
		t.order = append(t.order, b.Blkno)
	}
}

// Access implements metacache.Tx.
func (t *batchTx) Access(b *metacache.Buffer) error {
	t.hold(b)
	return nil
}

// New implements metacache.Tx.
func (t *batchTx) New(blkno uint64) (*metacache.Buffer, error) {
	b, err := t.c.NewBuffer(blkno)
	if err != nil {
		return nil, err
	}
	t.hold(b)
	return b, nil
}

// Dirty implements metacache.Tx.
func (t *batchTx) Dirty(b *metacache.Buffer, checkOffset int) {
	t.hold(b)
	t.c.Seal(b, checkOffset)
}

// Revoke implements metacache.Tx (nothing to revoke without a journal).
func (t *batchTx) Revoke(uint64) {}

// commit writes every block the operation touched.
func (t *batchTx) commit() error {
	for _, blk := range t.order {
		b := t.dirty[blk]
		if err := t.c.WriteBlock(blk, b.Data); err != nil && t.err == nil {
			t.err = err
		}
		t.c.Unpin(b)
	}
	t.order, t.dirty = nil, map[uint64]*metacache.Buffer{}
	return t.err
}

// offlineJournal gives the write engine batch transactions instead of a
// journal.
type offlineJournal struct{ c *metacache.Cache }

type offlineHandle struct{ *batchTx }

func (h offlineHandle) Stop() error { return h.commit() }

func (j offlineJournal) Begin(int) (inode.Handle, error) { return offlineHandle{newBatchTx(j.c)}, nil }
func (j offlineJournal) CommitAndWait() error            { return nil }
func (j offlineJournal) Checkpoint() error               { return nil }

// withTx runs fn in one batch transaction of the repair environment.
func (c *checker) withTx(fn func(tx metacache.Tx, e *repairEnv) error) error {
	e, err := c.repairEnvironment()
	if err != nil {
		return err
	}
	tx := newBatchTx(c.v.Cache)
	u := metacache.NewUndoTx(c.v.Cache, tx)
	err = fn(u, e)
	if err != nil {
		u.Rollback()
	} else {
		u.Finish()
	}
	if cerr := tx.commit(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// dirEnv is the fs/dir environment of a repair transaction.
func (e *repairEnv) dirEnv(c *checker, tx metacache.Tx) dir.Env {
	return dir.Env{C: c.v.Cache, SB: c.v.SB, Tx: tx, Meta: e.fs.W.Alloc.Blocks, Data: e.fs.W.Alloc.Clusters}
}

// saveDinode encodes a changed typed inode into its buffer.
func saveDinode(c *metacache.Cache, tx metacache.Tx, d *ondisk.Dinode) error {
	b, err := c.Get(d.Blkno)
	if err != nil {
		return err
	}
	if err := tx.Access(b); err != nil {
		return err
	}
	if err := d.Encode(b.Data); err != nil {
		return fmt.Errorf("inode %d: %w", d.Blkno, err)
	}
	tx.Dirty(b, ondisk.DinodeCheckOffset)
	return nil
}

// newDirectory makes an empty directory (mode 0755) with parent as its
// ".." (0: itself): ocfs2_new_inode + ocfs2_init_dir. system makes it a system
// directory (an orphan dir). Link counts are the caller's.
func (c *checker) newDirectory(parent uint64, system bool) (uint64, error) {
	var blk uint64
	err := c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		kind := ondisk.SysInodeAlloc
		slot := uint16(0)
		if system {
			slot = alloc.GlobalInodeAllocSlot
		}
		a, err := c.suballocator(kind, slot)
		if err != nil {
			return err
		}
		o, err := a.ClaimObject(tx, 0)
		if err != nil {
			return err
		}
		blk = o.Blkno
		now := ondisk.DiskTime{Sec: c.unixNow()}
		d := &ondisk.Dinode{
			Signature: ondisk.InodeSignature, Generation: c.gen, SuballocSlot: o.Slot, SuballocBit: o.Bit,
			SuballocLoc: o.GroupBlkno, Mode: ondisk.ModeDir | 0o755, Links: 2, Flags: ondisk.InodeValid,
			Blkno: o.Blkno, FSGeneration: c.gen, Atime: now, Ctime: now, Mtime: now,
			Extents: &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(c.bs, 0))},
		}
		if system {
			d.Flags |= ondisk.InodeSystem
		}
		nb, err := tx.New(o.Blkno)
		if err != nil {
			return err
		}
		if err := d.Encode(nb.Data); err != nil {
			return err
		}
		tx.Dirty(nb, ondisk.DinodeCheckOffset)
		if parent == 0 {
			parent = blk // a new root is its own parent
		}
		if err := dir.Init(e.dirEnv(c, tx), d, parent); err != nil {
			return err
		}
		return saveDinode(c.v.Cache, tx, d)
	})
	return blk, err
}

// link adds name -> ino (type ft) to directory parent, without touching
// link counts (ocfs2_link; pass 4 settles the counts).
func (c *checker) link(parent uint64, name string, ino uint64, ft uint8) error {
	return c.withTx(func(tx metacache.Tx, e *repairEnv) error {
		d, err := c.v.Cache.Dinode(parent)
		if err != nil {
			return err
		}
		cp, err := cloneTyped(d, c.bs)
		if err != nil {
			return err
		}
		if err := dir.Add(e.dirEnv(c, tx), cp, name, ino, ft); err != nil {
			return err
		}
		return saveDinode(c.v.Cache, tx, cp)
	})
}

// cloneTyped copies a decoded inode deeply by a round trip through its
// encoding, so that a repair never changes the cache's shared copy.
func cloneTyped(d *ondisk.Dinode, bs int) (*ondisk.Dinode, error) {
	buf := make([]byte, bs)
	if err := d.Encode(buf); err != nil {
		return nil, err
	}
	return ondisk.DecodeDinode(buf)
}
