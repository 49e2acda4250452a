package journal

import (
	"encoding/binary"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// layout describes a small synthetic volume: a journal dinode, the journal
// file's blocks (optionally scattered over several extents under an extent
// block) and a region of "home" metadata blocks the tests change.
type layout struct {
	bs            int
	journalBlocks int  // s_maxlen; a multiple of bpc
	homeBlocks    int  // metadata blocks the tests journal
	fragmented    bool // journal in 3 extents under an extent block, out of device order
	is64          bool
	metaECC       bool
}

const (
	fixtureBPC     = 2 // blocks per cluster
	fixtureIno     = 10
	fixtureEB      = 11
	fixtureFSGen   = 0x5eed
	fixtureJStart  = 16 // first journal block on the device
	fixtureHomeGap = 4
)

// volume is a built layout on a memory device.
type volume struct {
	layout
	mem       *blockdev.Memory
	homeStart uint64
	blocks    uint64
	uuid      [16]byte
}

func (l layout) clusterSize() int { return l.bs * fixtureBPC }

func (l layout) cfg() Config {
	return Config{ClusterSize: l.clusterSize(), CommitInterval: -1, Name: "journal:0000"}
}

// build lays the volume out on a fresh memory device and returns it.
func (l layout) build(t testing.TB) *volume {
	t.Helper()
	if l.journalBlocks%fixtureBPC != 0 {
		t.Fatalf("journal blocks %d not a multiple of %d", l.journalBlocks, fixtureBPC)
	}
	v := &volume{layout: l}
	v.homeStart = uint64(fixtureJStart + l.journalBlocks + 3*fixtureHomeGap)
	v.blocks = v.homeStart + uint64(l.homeBlocks) + 8
	v.mem = blockdev.NewMemory("mem-volume", int64(v.blocks)*int64(l.bs), 512)
	copy(v.uuid[:], "o2go-journal-uid")
	bs := l.bs

	// The journal's extents: one run, or three runs placed in reverse order
	// with gaps so that file order differs from device order.
	type ext struct{ file, dev, n uint64 }
	var exts []ext
	jb := uint64(l.journalBlocks)
	if !l.fragmented {
		exts = []ext{{0, fixtureJStart, jb}}
	} else {
		a := jb / 3 / fixtureBPC * fixtureBPC
		b := jb / 3 / fixtureBPC * fixtureBPC
		c := jb - a - b
		exts = []ext{
			{0, fixtureJStart + c + b + 2*fixtureHomeGap, a},
			{a, fixtureJStart + c + fixtureHomeGap, b},
			{a + b, fixtureJStart, c},
		}
	}
	recs := make([]ondisk.ExtentRec, len(exts))
	for i, e := range exts {
		recs[i] = ondisk.ExtentRec{Cpos: uint32(e.file / fixtureBPC), Clusters: uint32(e.n / fixtureBPC), Blkno: e.dev}
	}
	root := &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(bs, 0)), Recs: recs}
	if l.fragmented {
		eb := &ondisk.ExtentBlock{FSGeneration: fixtureFSGen, Blkno: fixtureEB,
			List: ondisk.ExtentList{Count: uint16(ondisk.ExtentBlockListCapacity(bs)), Recs: recs}}
		blk := make([]byte, bs)
		eb.Encode(blk)
		v.seal(blk, ondisk.ExtentBlockCheckOffset)
		v.write(fixtureEB, blk)
		root = &ondisk.ExtentList{TreeDepth: 1, Count: root.Count,
			Recs: []ondisk.ExtentRec{{Cpos: 0, Clusters: uint32(jb / fixtureBPC), Blkno: fixtureEB}}}
	}
	di := &ondisk.Dinode{Generation: 1, Links: 1, Clusters: uint32(jb / fixtureBPC), Size: jb * uint64(bs),
		Mode: 0o100644, Flags: ondisk.InodeValid | ondisk.InodeSystem | ondisk.InodeJournal,
		Blkno: fixtureIno, FSGeneration: fixtureFSGen, SuballocSlot: ondisk.SuballocSlotGlobal, Extents: root}
	blk := make([]byte, bs)
	if err := di.Encode(blk); err != nil {
		t.Fatal(err)
	}
	v.seal(blk, ondisk.DinodeCheckOffset)
	v.write(fixtureIno, blk)

	first := uint32((ondisk.JournalSuperBlockSize + bs - 1) / bs)
	sb := &ondisk.JournalSuperBlock{BlockType: ondisk.JBD2SuperblockV2, BlockSize: uint32(bs), MaxLen: uint32(jb),
		First: first, SSequence: 1, Start: 1, UUID: v.uuid, Users: [][16]byte{{}}}
	if l.is64 {
		sb.FeatureIncompat = ondisk.JBD2FeatureIncompat64Bit
	}
	raw := make([]byte, int(first)*bs)
	sb.Encode(raw)
	v.write(exts[0].dev, raw) // file block 0 is the first extent's first block

	for i := 0; i < l.homeBlocks; i++ {
		v.write(v.homeStart+uint64(i), v.initialHome(i))
	}
	return v
}

// initialHome is what home block i holds before any transaction.
func (v *volume) initialHome(i int) []byte {
	b := make([]byte, v.bs)
	for k := 0; k < len(b); k += 8 {
		binary.LittleEndian.PutUint64(b[k:], uint64(i)<<32|uint64(k))
	}
	return b
}

func (v *volume) seal(blk []byte, off int) {
	if v.metaECC {
		ondisk.SetBlockCheck(blk, off)
	}
}

func (v *volume) write(blkno uint64, data []byte) {
	if _, err := v.mem.WriteAt(data, int64(blkno)*int64(v.bs)); err != nil {
		panic(err)
	}
}

// cache returns a metadata cache over dev for this layout.
func (v *volume) cache(dev blockdev.Device, limit int) *metacache.Cache {
	return metacache.New(dev, v.bs, metacache.Options{MetaECC: v.metaECC, FSGeneration: fixtureFSGen, LimitBlocks: limit})
}

// home reads the home region of an image.
func (v *volume) home(img []byte, i int) []byte {
	off := (int(v.homeStart) + i) * v.bs
	return img[off : off+v.bs]
}

// journalDinode decodes the journal dinode of an image.
func (v *volume) journalDinode(t testing.TB, img []byte) *ondisk.Dinode {
	t.Helper()
	d, err := ondisk.DecodeDinode(img[fixtureIno*v.bs : (fixtureIno+1)*v.bs])
	if err != nil {
		t.Fatal(err)
	}
	return d
}
