package xattr

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// memVolume is a small in-memory volume for the write engine: a cache over
// a memory device, fake allocators whose state a failed operation rolls
// back, and a transaction that writes only what it committed.
type memVolume struct {
	t     testing.TB
	cfg   memConfig
	dev   *blockdev.Memory
	c     *metacache.Cache
	sb    *ondisk.SuperBlock
	meta  *fakeMeta
	data  *fakeClusters
	log   *fakeLog // nil: free directly
	inode uint64

	lastWrites []uint64 // blocks the last operation wrote
}

type memConfig struct {
	bs, cs     int
	metaECC    bool
	fragment   float64 // chance a claim ignores its goal and picks a random cluster
	logCap     int     // truncate log capacity; 0 frees directly
	clusters   int
	inodeKind  string // "file", "inline", "dir", "inlinedir", "symlink"
	metaBlocks int    // metadata blocks the fake allocator has (default 4096)
}

func newMemVolume(t testing.TB, cfg memConfig, seed uint64) *memVolume {
	if cfg.clusters == 0 {
		cfg.clusters = 2048
	}
	bpc := cfg.cs / cfg.bs
	metaBlocks := cfg.metaBlocks
	if metaBlocks == 0 {
		metaBlocks = 4096
	}
	firstCluster := (100 + metaBlocks + bpc - 1) / bpc
	total := (firstCluster + cfg.clusters) * bpc
	dev := blockdev.NewMemory("mem", int64(total)*int64(cfg.bs), 512)
	const gen = 0x5eed
	c := metacache.New(dev, cfg.bs, metacache.Options{MetaECC: cfg.metaECC, FSGeneration: gen})
	sb := &ondisk.SuperBlock{BlockSizeBits: uint32(log2(cfg.bs)), ClusterSizeBits: uint32(log2(cfg.cs)),
		UUIDHash: 0xa8d99afd, XattrInlineSize: 256}
	sb.Features.Incompat = ondisk.IncompatXattr | ondisk.IncompatInlineData
	if cfg.metaECC {
		sb.Features.Incompat |= ondisk.IncompatMetaECC
	}
	v := &memVolume{t: t, cfg: cfg, dev: dev, c: c, sb: sb,
		meta: &fakeMeta{next: 100, limit: uint64(100 + metaBlocks), used: map[uint64]bool{}},
		data: &fakeClusters{first: uint32(firstCluster), n: uint32(cfg.clusters), used: map[uint32]bool{},
			rng: base.NewRand(seed ^ 0xc1), fragment: cfg.fragment},
		inode: 10}
	if cfg.logCap > 0 {
		v.log = &fakeLog{capacity: cfg.logCap, data: v.data}
	}
	d := &ondisk.Dinode{Generation: 1, Links: 1, Mode: 0o100644, Flags: ondisk.InodeValid, Blkno: v.inode, FSGeneration: gen}
	switch cfg.inodeKind {
	case "", "file":
		d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(cfg.bs, 0))}
	case "inline":
		d.DynFeatures = ondisk.DynInlineData
		d.Inline = &ondisk.InlineData{Data: make([]byte, ondisk.InlineDataBytes(cfg.bs, 0))}
		d.Size = 100
		copy(d.Inline.Data, "some inline file data")
	case "dir":
		d.Mode = 0o040755
		d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(cfg.bs, 0))}
	case "inlinedir":
		d.Mode = 0o040755
		d.DynFeatures = ondisk.DynInlineData
		d.Inline = &ondisk.InlineData{Data: make([]byte, ondisk.InlineDataBytes(cfg.bs, 0))}
		d.Size = uint64(len(d.Inline.Data))
		ondisk.InitDirArea(d.Inline.Data, v.inode, v.inode)
	case "symlink":
		d.Mode = 0o120777
		d.FastSymlink = []byte("a/target/of/some/length")
		d.Size = uint64(len(d.FastSymlink))
	default:
		t.Fatalf("inode kind %q", cfg.inodeKind)
	}
	b, err := c.NewBuffer(v.inode)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Encode(b.Data); err != nil {
		t.Fatal(err)
	}
	tx := &memTx{c: c, dirty: map[*metacache.Buffer]bool{}}
	tx.Dirty(b, ondisk.DinodeCheckOffset)
	tx.commit(t)
	return v
}

func log2(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}

// op runs fn as one operation on the inode: in an UndoTx, the inode
// encoded after a success, everything rolled back after a failure.
func (v *memVolume) op(fn func(env Env, d *ondisk.Dinode, buf *metacache.Buffer) error) error {
	buf, err := v.c.Get(v.inode)
	if err != nil {
		return err
	}
	d0, err := v.c.Dinode(v.inode)
	if err != nil {
		return err
	}
	d := d0.Clone()
	tx := &memTx{c: v.c, dirty: map[*metacache.Buffer]bool{}}
	u := metacache.NewUndoTx(v.c, tx)
	if err := u.Access(buf); err != nil {
		return err
	}
	metaSnap, dataSnap := v.meta.snapshot(), v.data.snapshot()
	var logSnap []fakeRun
	var sink ClusterSink = DirectFree{Data: v.data}
	if v.log != nil {
		logSnap = slices.Clone(v.log.runs)
		sink = v.log
	}
	env := Env{C: v.c, SB: v.sb, Tx: u, Meta: v.meta, Data: v.data, Freed: sink}
	err = fn(env, d, buf)
	if err == nil {
		err = d.Encode(buf.Data)
		u.Dirty(buf, ondisk.DinodeCheckOffset)
	}
	if err != nil {
		u.Rollback()
		v.meta.restore(metaSnap)
		v.data.restore(dataSnap)
		if v.log != nil {
			v.log.runs = logSnap
		}
	} else {
		u.Finish()
	}
	tx.commit(v.t)
	v.lastWrites = tx.written()
	return err
}

// clone copies the volume: device bytes, allocators, log.
func (v *memVolume) clone(t testing.TB) *memVolume {
	dev := blockdev.NewMemory("mem", v.dev.Size(), 512)
	if _, err := dev.WriteAt(v.dev.Snapshot(), 0); err != nil {
		t.Fatal(err)
	}
	c := metacache.New(dev, v.cfg.bs, metacache.Options{MetaECC: v.cfg.metaECC, FSGeneration: v.c.FSGeneration()})
	n := *v
	n.t, n.dev, n.c = t, dev, c
	meta := *v.meta
	meta.free, meta.used, meta.ever = slices.Clone(v.meta.free), maps.Clone(v.meta.used), nil
	data := *v.data
	data.used, data.rng, data.ever = maps.Clone(v.data.used), base.NewRand(7), nil
	n.meta, n.data = &meta, &data
	if v.log != nil {
		l := *v.log
		l.runs, l.data = slices.Clone(v.log.runs), &data
		n.log = &l
	}
	return &n
}

// owned is every block the inode's attributes may write: the inode, the
// metadata blocks and the clusters the allocators gave out (an undone
// change writes back what it found in the blocks it was given).
func (v *memVolume) owned() map[uint64]bool {
	out := map[uint64]bool{v.inode: true}
	for _, m := range []map[uint64]bool{v.meta.used, v.meta.ever} {
		for b := range m {
			out[b] = true
		}
	}
	bpc := uint64(v.sb.BlocksPerCluster())
	for _, m := range []map[uint32]bool{v.data.used, v.data.ever} {
		for c := range m {
			for i := uint64(0); i < bpc; i++ {
				out[uint64(c)*bpc+i] = true
			}
		}
	}
	return out
}

func (v *memVolume) set(name string, value []byte, flags SetFlags) error {
	return v.op(func(env Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
		return Set(env, d, buf, name, value, flags)
	})
}

func (v *memVolume) remove(name string) error {
	return v.op(func(env Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
		return Remove(env, d, buf, name)
	})
}

// flushLog frees what the fake truncate log holds.
func (v *memVolume) flushLog() {
	if v.log != nil {
		v.log.flush(v.t)
	}
}

func (v *memVolume) reader() Inode {
	d, blk, err := v.c.DinodeBlock(v.inode)
	if err != nil {
		v.t.Fatal(err)
	}
	return Inode{C: v.c, SB: v.sb, Inode: d, Block: blk}
}

// memTx keeps dirtied buffers until commit, as a journal handle does.
type memTx struct {
	c     *metacache.Cache
	dirty map[*metacache.Buffer]bool
}

// written lists the blocks the transaction wrote.
func (t *memTx) written() []uint64 {
	var out []uint64
	for b := range t.dirty {
		out = append(out, b.Blkno)
	}
	return out
}

func (t *memTx) Access(*metacache.Buffer) error { return nil }
func (t *memTx) New(blkno uint64) (*metacache.Buffer, error) {
	return t.c.NewBuffer(blkno)
}
func (t *memTx) Dirty(b *metacache.Buffer, off int) {
	t.c.Seal(b, off)
	t.dirty[b] = true
}
func (t *memTx) Revoke(uint64) {}
func (t *memTx) commit(tb testing.TB) {
	for b := range t.dirty {
		if err := t.c.WriteBlock(b.Blkno, b.Data); err != nil {
			tb.Fatal(err)
		}
	}
}

// fakeMeta hands out metadata blocks from a range, as one group at block
// 100 would.
type fakeMeta struct {
	next, limit uint64
	free        []uint64
	used        map[uint64]bool
	ever        map[uint64]bool // every block ever handed out, even by undone changes
}

type metaSnap struct {
	next uint64
	free []uint64
	used map[uint64]bool
}

func (a *fakeMeta) snapshot() metaSnap {
	return metaSnap{a.next, slices.Clone(a.free), maps.Clone(a.used)}
}
func (a *fakeMeta) restore(s metaSnap) { a.next, a.free, a.used = s.next, s.free, s.used }

func (a *fakeMeta) NewMetaBlock(metacache.Tx) (extent.MetaBlock, error) {
	var b uint64
	if n := len(a.free); n > 0 {
		b, a.free = a.free[n-1], a.free[:n-1]
	} else {
		if a.next >= a.limit {
			return extent.MetaBlock{}, errors.New("fake meta allocator: no space")
		}
		b = a.next
		a.next++
	}
	a.used[b] = true
	if a.ever == nil {
		a.ever = map[uint64]bool{}
	}
	a.ever[b] = true
	return extent.MetaBlock{Blkno: b, Slot: 0, Bit: uint16(b - 100), GroupBlkno: 100}, nil
}

func (a *fakeMeta) FreeMetaBlock(_ metacache.Tx, m extent.MetaBlock) error {
	if !a.used[m.Blkno] || m.GroupBlkno != 100 || uint64(m.Bit) != m.Blkno-100 {
		return fmt.Errorf("fake meta allocator: bad free of %+v", m)
	}
	delete(a.used, m.Blkno)
	a.free = append(a.free, m.Blkno)
	return nil
}

// fakeClusters hands out clusters, honouring the goal unless told to
// scatter claims.
type fakeClusters struct {
	first, n uint32
	used     map[uint32]bool
	rng      *base.Rand
	fragment float64
	maxRun   uint32 // 0: no limit
	claims   int
	ever     map[uint32]bool // every cluster ever handed out, even by undone changes
}

func (a *fakeClusters) snapshot() map[uint32]bool { return maps.Clone(a.used) }
func (a *fakeClusters) restore(s map[uint32]bool) { a.used = s }

func (a *fakeClusters) free(c uint32) bool {
	return c >= a.first && c < a.first+a.n && !a.used[c]
}

func (a *fakeClusters) ClaimClusters(_ metacache.Tx, _ uint64, goal, lo, hi uint32) (uint32, uint32, error) {
	a.claims++
	start := uint32(0)
	switch {
	case goal != 0 && a.free(goal) && !a.rng.Chance(a.fragment):
		start = goal
	case a.rng.Chance(a.fragment):
		for try := 0; try < 64; try++ {
			c := a.first + uint32(a.rng.Intn(int(a.n)))
			if a.free(c) {
				start = c
				break
			}
		}
	}
	if start == 0 {
		for c := a.first; c < a.first+a.n; c++ {
			if a.free(c) {
				start = c
				break
			}
		}
	}
	if start == 0 {
		return 0, 0, errors.New("fake cluster allocator: no space")
	}
	if a.maxRun != 0 {
		if lo > a.maxRun {
			return 0, 0, errors.New("fake cluster allocator: no run that long")
		}
		hi = min(hi, a.maxRun)
	}
	n := uint32(0)
	for n < hi && a.free(start+n) {
		n++
	}
	if n < lo {
		return 0, 0, errors.New("fake cluster allocator: no run long enough")
	}
	if a.ever == nil {
		a.ever = map[uint32]bool{}
	}
	for i := uint32(0); i < n; i++ {
		a.used[start+i] = true
		a.ever[start+i] = true
	}
	return start, n, nil
}

func (a *fakeClusters) FreeClusters(_ metacache.Tx, start, n uint32) error {
	for c := start; c < start+n; c++ {
		if !a.used[c] {
			return fmt.Errorf("fake cluster allocator: cluster %d freed but not in use", c)
		}
		delete(a.used, c)
	}
	return nil
}

// fakeLog is a truncate log of a few records.
type fakeRun struct{ start, n uint32 }

type fakeLog struct {
	capacity int
	runs     []fakeRun
	data     *fakeClusters
}

func (l *fakeLog) Append(_ metacache.Tx, start, n uint32) error {
	if k := len(l.runs); k > 0 && l.runs[k-1].start+l.runs[k-1].n == start {
		l.runs[k-1].n += n
		return nil
	}
	if len(l.runs) >= l.capacity {
		return errors.New("fake truncate log: full")
	}
	l.runs = append(l.runs, fakeRun{start, n})
	return nil
}

func (l *fakeLog) Room() (int, error) { return l.capacity - len(l.runs), nil }

func (l *fakeLog) flush(t testing.TB) {
	for _, r := range l.runs {
		if err := l.data.FreeClusters(nil, r.start, r.n); err != nil {
			t.Fatal(err)
		}
	}
	l.runs = nil
}

// checkAccounting verifies that the attributes hold exactly the clusters
// and metadata blocks the fake allocators gave out (less what the log
// still parks).
func (v *memVolume) checkAccounting(t testing.TB) Usage {
	t.Helper()
	u, err := v.reader().Check()
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint32]bool{}
	for _, r := range u.Clusters {
		bpc := uint64(v.sb.BlocksPerCluster())
		for i := uint32(0); i < r.Clusters; i++ {
			c := uint32(r.Blkno/bpc) + i
			if held[c] {
				t.Fatalf("cluster %d held twice", c)
			}
			held[c] = true
		}
	}
	if v.log != nil {
		for _, r := range v.log.runs {
			for c := r.start; c < r.start+r.n; c++ {
				if held[c] {
					t.Fatalf("cluster %d is held and parked in the truncate log", c)
				}
				held[c] = true
			}
		}
	}
	if !maps.Equal(held, v.data.used) {
		t.Fatalf("attributes hold %d clusters, the allocator has %d in use", len(held), len(v.data.used))
	}
	if u.MetaBlocks != len(v.meta.used) {
		t.Fatalf("attributes hold %d metadata blocks, the allocator has %d in use", u.MetaBlocks, len(v.meta.used))
	}
	return u
}
