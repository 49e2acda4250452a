package alloc_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// cowDevice is a copy-on-write device over a shared image: reads see the
// sectors written since it was made, over the base bytes; writes are
// counted, so a test can prove an operation wrote nothing.
type cowDevice struct {
	base   []byte
	over   map[int64][]byte // by 512-byte sector
	writes int
}

func newCow(base []byte) *cowDevice { return &cowDevice{base: base, over: map[int64][]byte{}} }

func (d *cowDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.base)) {
		return 0, fmt.Errorf("cow: read [%d,+%d) outside %d bytes", off, len(p), len(d.base))
	}
	for i := 0; i < len(p); {
		sec := (off + int64(i)) / 512
		in := int((off + int64(i)) % 512)
		n := min(512-in, len(p)-i)
		if s, ok := d.over[sec]; ok {
			copy(p[i:i+n], s[in:in+n])
		} else {
			copy(p[i:i+n], d.base[sec*512+int64(in):])
		}
		i += n
	}
	return len(p), nil
}

// poke changes bytes without counting a write (the test's damage).
func (d *cowDevice) poke(p []byte, off int64) {
	for i := 0; i < len(p); {
		sec := (off + int64(i)) / 512
		in := int((off + int64(i)) % 512)
		n := min(512-in, len(p)-i)
		s, ok := d.over[sec]
		if !ok {
			s = append([]byte(nil), d.base[sec*512:sec*512+512]...)
			d.over[sec] = s
		}
		copy(s[in:in+n], p[i:i+n])
		i += n
	}
}

func (d *cowDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.base)) {
		return 0, fmt.Errorf("cow: write [%d,+%d) outside %d bytes", off, len(p), len(d.base))
	}
	d.writes++
	d.poke(p, off)
	return len(p), nil
}

func (d *cowDevice) Size() int64     { return int64(len(d.base)) }
func (d *cowDevice) SectorSize() int { return 512 }
func (d *cowDevice) Sync() error     { return nil }
func (d *cowDevice) Name() string    { return "damaged.img" }
func (d *cowDevice) Close() error    { return nil }

// baseImage is one mkfs.ocfs2 image (512-byte blocks, 4K clusters,
// discontig-bg) read into memory once, with its system files.
var baseImage struct {
	once sync.Once
	data []byte
	sysf map[string]uint64
	err  error
}

func loadBase(t testing.TB) ([]byte, map[string]uint64) {
	t.Helper()
	realtools.Require(t)
	baseImage.once.Do(func() {
		dir, err := os.MkdirTemp("", "o2go-alloc-base")
		if err != nil {
			baseImage.err = err
			return
		}
		defer os.RemoveAll(dir)
		img := dir + "/base.img"
		f, err := os.Create(img)
		if err == nil {
			err = f.Truncate(48 << 20)
			f.Close()
		}
		if err != nil {
			baseImage.err = err
			return
		}
		realtools.Mkfs(t, img, geometries[3].args...)
		w := openVol(t, img)
		baseImage.sysf = w.sysf
		w.close()
		baseImage.data, baseImage.err = os.ReadFile(img)
	})
	if baseImage.err != nil {
		t.Fatal(baseImage.err)
	}
	if baseImage.data == nil {
		t.Fatal("the base image could not be made (see the first test that tried)")
	}
	return baseImage.data, baseImage.sysf
}

// damageEnv is one damaged copy of the base image.
type damageEnv struct {
	t     testing.TB
	dev   *cowDevice
	w     *vol
	ea    *alloc.ChainAllocator
	eaBlk uint64 // extent_alloc:0000 inode
	eaGrp uint64 // its first group
	gbBlk uint64
	laBlk uint64
	obj   alloc.Object     // claimed before the damage
	run   alloc.ClusterRun // claimed before the damage
}

func newDamageEnv(t testing.TB) *damageEnv {
	t.Helper()
	base, sysf := loadBase(t)
	dev := newCow(base)
	w := openDevice(t, "damaged.img", dev, sysf)
	e := &damageEnv{t: t, dev: dev, w: w,
		eaBlk: w.sys(ondisk.SysExtentAlloc, 0), gbBlk: w.sys(ondisk.SysGlobalBitmap, -1), laBlk: w.sys(ondisk.SysLocalAlloc, 0)}
	e.ea = w.suballoc(ondisk.SysExtentAlloc, 0)
	var err error
	if e.obj, err = e.ea.ClaimObject(w.tx, 0); err != nil {
		t.Fatal(err)
	}
	e.eaGrp = e.obj.GroupBlkno
	if e.run, err = w.gb.ClaimClusters(w.tx, 0, 4, 4); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *damageEnv) off(blk uint64, at int) int64 {
	return int64(blk)*int64(e.w.geo.BlockSize) + int64(at)
}

func (e *damageEnv) le16(blk uint64, at int, v uint16) {
	b := make([]byte, 2)
	binary.LittleEndian.PutUint16(b, v)
	e.dev.poke(b, e.off(blk, at))
}

func (e *damageEnv) le32(blk uint64, at int, v uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	e.dev.poke(b, e.off(blk, at))
}

func (e *damageEnv) le64(blk uint64, at int, v uint64) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	e.dev.poke(b, e.off(blk, at))
}

func (e *damageEnv) get16(blk uint64, at int) uint16 {
	b := make([]byte, 2)
	e.dev.ReadAt(b, e.off(blk, at))
	return binary.LittleEndian.Uint16(b)
}

func (e *damageEnv) get32(blk uint64, at int) uint32 {
	b := make([]byte, 4)
	e.dev.ReadAt(b, e.off(blk, at))
	return binary.LittleEndian.Uint32(b)
}

// Offsets used below (ondisk-format.md §2, §4).
const (
	offUsed    = 0xB8 // bitmap1.i_used
	offTotal   = 0xBC // bitmap1.i_total
	offBPC     = 0xC2 // cl_bpc
	offRec0    = 0xD0 // cl_recs[0]: c_free, c_total, c_blkno
	offBgBits  = 0x0A
	offBgFree  = 0x0C
	offBgChain = 0x0E
	offBgGen   = 0x10
	offBgNext  = 0x18
	offBgPar   = 0x20
)

type damageCase struct {
	name   string
	damage func(e *damageEnv)
	op     func(e *damageEnv) error
	// want: the block and field the error must name.
	wantBlk   func(e *damageEnv) uint64
	wantField string
	// notCorrupt: the refusal is not about damaged metadata.
	notCorrupt bool
}

func claimObj(e *damageEnv) error { _, err := e.ea.ClaimObject(e.w.tx, 0); return err }
func freeObj(e *damageEnv) error  { return e.ea.FreeObject(e.w.tx, e.obj) }
func claimClusters(e *damageEnv) error {
	_, err := e.w.gb.ClaimClusters(e.w.tx, 0, 1, 8)
	return err
}
func freeRun(e *damageEnv) error  { return e.w.gb.FreeClusterRuns(e.w.tx, []alloc.ClusterRun{e.run}) }
func eaInode(e *damageEnv) uint64 { return e.eaBlk }

// runGroup is the global bitmap group the pre-claimed run lies in.
func runGroup(e *damageEnv) uint64 {
	idx := int(e.run.Start) / e.w.geo.GlobalCPG
	if idx == 0 {
		return e.w.geo.FirstClusterGroup
	}
	return uint64(idx*e.w.geo.GlobalCPG) * uint64(e.w.geo.BlocksPerCluster)
}
func eaGroup(e *damageEnv) uint64 { return e.eaGrp }
func gbInode(e *damageEnv) uint64 { return e.gbBlk }

var damageCases = []damageCase{
	{"group free count alone", func(e *damageEnv) {
		e.le16(e.eaGrp, offBgFree, e.get16(e.eaGrp, offBgFree)-1)
	}, claimObj, eaInode, "cl_recs[0]", false},
	{"group free count against its bitmap", func(e *damageEnv) {
		e.le16(e.eaGrp, offBgFree, e.get16(e.eaGrp, offBgFree)-1)
		e.le32(e.eaBlk, offRec0, e.get32(e.eaBlk, offRec0)-1)
		e.le32(e.eaBlk, offUsed, e.get32(e.eaBlk, offUsed)+1)
	}, claimObj, eaGroup, "bg_free_bits_count", false},
	{"group free count against its bitmap, on free", func(e *damageEnv) {
		e.le16(e.eaGrp, offBgFree, e.get16(e.eaGrp, offBgFree)-1)
		e.le32(e.eaBlk, offRec0, e.get32(e.eaBlk, offRec0)-1)
		e.le32(e.eaBlk, offUsed, e.get32(e.eaBlk, offUsed)+1)
	}, freeObj, eaGroup, "bg_free_bits_count", false},
	{"bg_chain", func(e *damageEnv) { e.le16(e.eaGrp, offBgChain, 7) }, claimObj, eaGroup, "bg_chain", false},
	{"bg_parent_dinode", func(e *damageEnv) { e.le64(e.eaGrp, offBgPar, 12345) }, claimObj, eaGroup, "bg_parent_dinode", false},
	{"bg_parent_dinode on free", func(e *damageEnv) { e.le64(e.eaGrp, offBgPar, 12345) }, freeObj, eaGroup, "bg_parent_dinode", false},
	{"bg_generation", func(e *damageEnv) { e.le32(e.eaGrp, offBgGen, 0xdead) }, claimObj, eaGroup, "bg_generation", false},
	{"bg_signature", func(e *damageEnv) { e.dev.poke([]byte("GROUP02"), e.off(e.eaGrp, 0)) }, claimObj, eaGroup, "bg_signature", false},
	{"bg_next_group loops", func(e *damageEnv) { e.le64(e.eaGrp, offBgNext, e.eaGrp) }, claimObj, eaGroup, "bg_next_group", false},
	{"bg_next_group past the device", func(e *damageEnv) { e.le64(e.eaGrp, offBgNext, 1<<40) }, claimObj, eaGroup, "bg_next_group", false},
	{"bg_bits past the bitmap", func(e *damageEnv) { e.le16(e.eaGrp, offBgBits, 0xFFF0) }, claimObj, eaGroup, "bg_bits", false},
	{"bit 0 clear", func(e *damageEnv) {
		b := make([]byte, 1)
		e.dev.ReadAt(b, e.off(e.eaGrp, ondisk.GroupDescBitmapOffset))
		b[0] &^= 1
		e.dev.poke(b, e.off(e.eaGrp, ondisk.GroupDescBitmapOffset))
		e.le16(e.eaGrp, offBgFree, e.get16(e.eaGrp, offBgFree)+1)
		e.le32(e.eaBlk, offRec0, e.get32(e.eaBlk, offRec0)+1)
		e.le32(e.eaBlk, offUsed, e.get32(e.eaBlk, offUsed)-1)
	}, claimObj, eaGroup, "bg_bitmap", false},
	{"c_free above c_total", func(e *damageEnv) { e.le32(e.eaBlk, offRec0, e.get32(e.eaBlk, offRec0+4)+5) }, claimObj, eaInode, "c_free", false},
	{"c_blkno zero", func(e *damageEnv) { e.le64(e.eaBlk, offRec0+8, 0) }, claimObj, eaInode, "c_blkno", false},
	{"c_blkno past the device", func(e *damageEnv) { e.le64(e.eaBlk, offRec0+8, 1<<40) }, claimObj, eaInode, "c_blkno", false},
	{"i_used above i_total", func(e *damageEnv) { e.le32(e.eaBlk, offUsed, e.get32(e.eaBlk, offTotal)+1) }, claimObj, eaInode, "i_used", false},
	{"bitmap1 against the chains", func(e *damageEnv) { e.le32(e.eaBlk, offUsed, e.get32(e.eaBlk, offUsed)+3) }, freeObj, eaInode, "bitmap1", false},
	{"cl_bpc", func(e *damageEnv) { e.le16(e.eaBlk, offBPC, 3) }, claimObj, eaInode, "cl_bpc", false},
	{"global group free count", func(e *damageEnv) {
		g := runGroup(e)
		e.le16(g, offBgFree, e.get16(g, offBgFree)+2)
	}, claimClusters, gbInode, "cl_recs[", false},
	{"global group free count on free", func(e *damageEnv) {
		g := runGroup(e)
		chain := int(e.get16(g, offBgChain))
		e.le16(g, offBgFree, e.get16(g, offBgFree)-1)
		e.le32(e.gbBlk, offRec0+16*chain, e.get32(e.gbBlk, offRec0+16*chain)-1)
		e.le32(e.gbBlk, offUsed, e.get32(e.gbBlk, offUsed)+1)
	}, freeRun, runGroup, "bg_free_bits_count", false},
	{"global i_total", func(e *damageEnv) {
		e.le32(e.gbBlk, offTotal, e.get32(e.gbBlk, offTotal)+1)
		e.le32(e.gbBlk, offRec0+4, e.get32(e.gbBlk, offRec0+4)+1)
		e.le32(e.gbBlk, offRec0, e.get32(e.gbBlk, offRec0)+1)
	}, claimClusters, gbInode, "i_total", false},
	{"local alloc i_used", func(e *damageEnv) { e.le32(e.laBlk, offUsed, 3) }, func(e *damageEnv) error {
		_, err := alloc.OpenLocalAlloc(e.w.c, e.w.geo, e.laBlk, e.w.gb, alloc.DefaultLocalAllocOptions())
		return err
	}, func(e *damageEnv) uint64 { return e.laBlk }, "i_used", false},
	{"local alloc la_size", func(e *damageEnv) { e.le16(e.laBlk, 0xC4, 0) }, func(e *damageEnv) error {
		_, err := alloc.OpenLocalAlloc(e.w.c, e.w.geo, e.laBlk, e.w.gb, alloc.DefaultLocalAllocOptions())
		return err
	}, func(e *damageEnv) uint64 { return e.laBlk }, "la_size", false},
	{"double free", func(e *damageEnv) {
		if err := e.ea.FreeObject(e.w.tx, e.obj); err != nil {
			e.t.Fatal(err)
		}
	}, freeObj, eaGroup, "bg_bitmap", false},
	{"double free of clusters", func(e *damageEnv) {
		if err := freeRun(e); err != nil {
			e.t.Fatal(err)
		}
	}, freeRun, runGroup, "bg_bitmap", false},
	{"free of the superblock's cluster", func(*damageEnv) {}, func(e *damageEnv) error {
		return e.w.gb.FreeClusters(e.w.tx, 0, 1)
	}, nil, "", true},
	{"free of an object with a wrong group", func(*damageEnv) {}, func(e *damageEnv) error {
		o := e.obj
		o.GroupBlkno = e.w.geo.FirstClusterGroup
		return e.ea.FreeObject(e.w.tx, o)
	}, nil, "", true},
}

// TestDamagedAllocatorsAreErrorsNotWrites: every kind of damage to a group
// descriptor, a chain record, an allocator's or a local alloc's counts is
// an ondisk.CorruptError naming the block and the field, never a panic,
// and nothing is written.
func TestDamagedAllocatorsAreErrorsNotWrites(t *testing.T) {
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newDamageEnv(t)
			tc.damage(e)
			e.w.c.ForgetAll()
			e.dev.writes = 0
			err := tc.op(e)
			if err == nil {
				t.Fatal("no error")
			}
			if e.dev.writes != 0 || e.w.tx.Err != nil {
				t.Fatalf("%d writes before the error %v", e.dev.writes, err)
			}
			if tc.notCorrupt {
				t.Logf("refused: %v", err)
				return
			}
			var ce *ondisk.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ondisk.ErrCorrupt) {
				t.Fatalf("error is not a CorruptError: %v", err)
			}
			if blk := tc.wantBlk(e); !ce.HasBlk || ce.Blkno != blk {
				t.Errorf("error names block %d (has %v), want %d: %v", ce.Blkno, ce.HasBlk, blk, err)
			}
			if !strings.Contains(ce.Field, tc.wantField) {
				t.Errorf("error names field %q, want %q: %v", ce.Field, tc.wantField, err)
			}
			if !strings.Contains(err.Error(), "damaged.img") {
				t.Errorf("error does not name the device: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// FuzzDamagedAllocators flips bytes of the allocator blocks (extent_alloc
// inode and group, global bitmap inode and first groups, local alloc)
// and runs claims and frees: never a panic; an operation that fails
// writes nothing; on a volume the Checker finds clean, a successful
// operation leaves it clean.
func FuzzDamagedAllocators(f *testing.F) {
	f.Add([]byte{0, 0x0C, 0x01})
	f.Add([]byte{1, 0xD0, 0x80, 3, 0x0E, 0x02})
	f.Add([]byte{2, 0x40, 0xFF, 4, 0xB8, 0x10})
	f.Add([]byte{5, 0xC4, 0x01})
	f.Fuzz(func(t *testing.T, edits []byte) {
		e := newDamageEnv(t)
		blocks := []uint64{e.eaGrp, e.eaBlk, e.w.geo.FirstClusterGroup, e.gbBlk, e.w.geo.FirstClusterGroup + 1, e.laBlk}
		if g1 := uint64(e.w.geo.GlobalCPG * e.w.geo.BlocksPerCluster); g1 < e.w.c.Blocks() {
			blocks[4] = g1
		}
		for i := 0; i+2 < len(edits) && i < 30; i += 3 {
			blk := blocks[int(edits[i])%len(blocks)]
			off := int(edits[i+1]) * 2 % e.w.geo.BlockSize
			b := make([]byte, 1)
			e.dev.ReadAt(b, e.off(blk, off))
			b[0] ^= edits[i+2]
			e.dev.poke(b, e.off(blk, off))
		}
		e.w.c.ForgetAll()
		chains, locals := e.w.allAllocators()
		k := &alloc.Checker{C: e.w.c, Geo: e.w.geo, GlobalBitmap: chains[0]}
		before, err := k.Check(chains, locals)
		if err != nil {
			t.Fatal(err)
		}
		ops := []func(*damageEnv) error{claimObj, freeObj, claimClusters, freeRun, func(e *damageEnv) error {
			la, err := alloc.OpenLocalAlloc(e.w.c, e.w.geo, e.laBlk, e.w.gb, alloc.DefaultLocalAllocOptions())
			if err != nil {
				return err
			}
			_, err = la.Claim(e.w.tx, nil, 1, 1)
			return err
		}}
		for i, op := range ops {
			e.dev.writes = 0
			err := op(e)
			// The local alloc claim may have moved its window (written)
			// before the global bitmap turned out damaged, as the
			// kernel's slide does; every other operation checks all it
			// changes first.
			if err != nil && e.dev.writes != 0 && i != len(ops)-1 {
				t.Fatalf("op %d failed after %d writes: %v", i, e.dev.writes, err)
			}
			if err == nil && len(before) == 0 {
				after, cerr := k.Check(chains, locals)
				if cerr != nil {
					t.Fatal(cerr)
				}
				if len(after) > 0 {
					t.Fatalf("op %d on a clean volume left problems: %v", i, after)
				}
			}
		}
	})
}

var _ metacache.Tx = (*metacache.DirectTx)(nil)

// TestCheckerSeesDamage: the Checker reports every damage the operations
// refuse (the test above), so fsck can build on it; on the undamaged copy
// it reports nothing.
func TestCheckerSeesDamage(t *testing.T) {
	skip := map[string]bool{"double free": true, "double free of clusters": true}
	check := func(e *damageEnv) []alloc.Problem {
		e.w.c.ForgetAll()
		chains, locals := e.w.allAllocators()
		k := &alloc.Checker{C: e.w.c, Geo: e.w.geo, GlobalBitmap: chains[0]}
		probs, err := k.Check(chains, locals)
		if err != nil {
			t.Fatal(err)
		}
		return probs
	}
	if probs := check(newDamageEnv(t)); len(probs) != 0 {
		t.Fatalf("undamaged copy: %v", probs)
	}
	for _, tc := range damageCases {
		if tc.notCorrupt || skip[tc.name] {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			e := newDamageEnv(t)
			tc.damage(e)
			probs := check(e)
			if len(probs) == 0 {
				t.Fatal("the Checker found nothing")
			}
			want := tc.wantBlk(e)
			found := false
			for _, p := range probs {
				if p.Blkno == want {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem names block %d: %v", want, probs)
			}
			t.Logf("%v", probs)
		})
	}
}

// TestBackupSuperblockClustersAreNeverFreed: on a volume just big enough for a
// backup superblock (at 1 GiB) its cluster is set and protected like the
// group descriptors' clusters; clearing it is a Checker problem.
func TestBackupSuperblockClustersAreNeverFreed(t *testing.T) {
	realtools.Require(t)
	w := mkvol(t, geometry{"4k-1g+64m", 1<<30 + 64<<20, []string{"-b", "4096", "-C", "4096", "-N", "1", "-J", "size=4M", "--fs-features=local"}})
	backup := uint32((1 << 30) / 4096)
	prot := w.gb.Protected()
	want := map[uint32]bool{0: true, 1: true, 2: true, 3: true, backup: true}
	for i := 1; i*w.geo.GlobalCPG < int(w.geo.Clusters); i++ {
		want[uint32(i*w.geo.GlobalCPG)] = true
	}
	if len(prot) != len(want) {
		t.Fatalf("protected clusters %v, want %v", prot, want)
	}
	for _, c := range prot {
		if !want[c] {
			t.Fatalf("cluster %d protected, want %v", c, want)
		}
		if used, err := w.gb.ClusterUsed(c); err != nil || !used {
			t.Fatalf("protected cluster %d is free (%v)", c, err)
		}
		if err := w.gb.FreeClusters(w.tx, c, 1); err == nil {
			t.Fatalf("cluster %d was freed", c)
		}
	}
	// A run that only touches the backup's cluster is refused too.
	if err := w.gb.FreeClusters(w.tx, backup-1, 3); err == nil {
		t.Fatal("a run over the backup superblock was freed")
	}
	// Nothing changed (fsck on a 1 GiB image costs seconds; the Checker
	// sees the same bits).
	w.check("after the refused frees")
	w.close()
}
