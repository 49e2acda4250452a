package metacache

import (
	"errors"
	"strings"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

func TestGetCachesAndForgets(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 64*1024, 512)
	f := blockdev.NewFaulty(dev)
	c := New(f, 4096, Options{LimitBlocks: 4})
	for i := 0; i < 3; i++ {
		if _, err := c.Get(3); err != nil {
			t.Fatal(err)
		}
	}
	if r, _, _ := f.Ops(); r != 1 {
		t.Fatalf("device reads = %d, want 1", r)
	}
	c.Forget(3)
	c.Get(3)
	if r, _, _ := f.Ops(); r != 2 {
		t.Fatalf("after Forget, device reads = %d, want 2", r)
	}
	for b := uint64(0); b < 16; b++ {
		c.Get(b)
	}
	if s := c.Stats(); s.Cached > 4 {
		t.Fatalf("cache grew to %d over its limit 4", s.Cached)
	}
}

func TestGetBeyondDeviceIsCorruption(t *testing.T) {
	c := New(blockdev.NewMemory("mem0", 16*4096, 512), 4096, Options{})
	_, err := c.Get(16)
	if !errors.Is(err, ondisk.ErrCorrupt) || !strings.Contains(err.Error(), "mem0: block 16") {
		t.Fatalf("got %v", err)
	}
}

func TestGetCheckedVerifiesAndCorrects(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 16*4096, 512)
	blk := make([]byte, 4096)
	for i := range blk {
		blk[i] = byte(i)
	}
	ondisk.SetBlockCheck(blk, 0x80)
	blk[100] ^= 0x10 // one flipped bit: correctable
	dev.WriteAt(blk, 5*4096)
	blk[100] ^= 0x10
	blk[200] ^= 0x01
	blk[300] ^= 0x01 // two flips: not correctable
	dev.WriteAt(blk, 6*4096)

	c := New(dev, 4096, Options{MetaECC: true})
	b, err := c.GetChecked(5, 0x80, "dinode")
	if err != nil {
		t.Fatal(err)
	}
	if b.Data[100] != 100 {
		t.Fatal("single-bit error not corrected in the cached copy")
	}
	if c.Stats().Corrected != 1 {
		t.Fatal("correction not counted")
	}
	_, err = c.GetChecked(6, 0x80, "dinode")
	var ce *ondisk.CorruptError
	if !errors.As(err, &ce) || ce.Blkno != 6 || ce.Device != "mem0" || ce.Struct != "dinode" {
		t.Fatalf("got %v", err)
	}
	if c.Stats().Cached != 1 {
		t.Fatal("a block that failed its check stayed cached")
	}
}

// TestForgetOwner checks what a cluster lock going to NL drops: its
// inode's blocks and every block of unknown owner, never another inode's,
// and never a pinned block (which it counts when it is the owner's).
func TestForgetOwner(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 64*4096, 512)
	f := blockdev.NewFaulty(dev)
	c := New(f, 4096, Options{})
	get := func(b uint64) *Buffer {
		t.Helper()
		buf, err := c.Get(b)
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	for b, owner := range map[uint64]uint64{1: 10, 2: 10, 3: 20, 4: 0} {
		c.SetOwner(get(b), owner)
	}
	pinned := get(5)
	c.SetOwner(pinned, 10)
	c.Pin(pinned)
	if kept := c.ForgetOwner(10); kept != 1 {
		t.Fatalf("ForgetOwner kept %d pinned blocks of the owner, want 1", kept)
	}
	reads := func() int64 { r, _, _ := f.Ops(); return r }
	before := reads()
	get(3)
	get(5)
	if reads() != before {
		t.Fatal("ForgetOwner(10) dropped another inode's block or a pinned one")
	}
	for _, b := range []uint64{1, 2, 4} {
		get(b)
	}
	if got := reads() - before; got != 3 {
		t.Fatalf("after ForgetOwner(10), %d of blocks 1, 2 (owner 10) and 4 (unknown) were read again, want 3", got)
	}
	// A block taken anew is nobody's until a reader says whose it is.
	nb, err := c.NewBuffer(3)
	if err != nil {
		t.Fatal(err)
	}
	c.ForgetOwner(99)
	if _, ok := c.bufs[nb.Blkno]; ok {
		t.Fatal("a block NewBuffer reset kept its old owner")
	}
}

// TestReadForAnotherOwnerRereads: a block cached for one owner and read
// for another was freed and used again (by another node, under a lock
// this node did not hold): the read goes to the device. ForgetUnowned
// drops the blocks no reader claimed.
func TestReadForAnotherOwnerRereads(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 64*4096, 512)
	f := blockdev.NewFaulty(dev)
	c := New(f, 4096, Options{})
	reads := func() int64 { r, _, _ := f.Ops(); return r }
	if _, _, err := c.DirBlock(7, 10); err != nil {
		t.Fatal(err)
	}
	before := reads()
	if _, _, err := c.DirBlock(7, 10); err != nil || reads() != before {
		t.Fatalf("a second read for the same owner went to the device (%v)", err)
	}
	if _, _, err := c.DirBlock(7, 20); err != nil || reads() != before+1 {
		t.Fatalf("a read for another owner was served from the cache (%v)", err)
	}
	unowned, err := c.Get(8)
	if err != nil {
		t.Fatal(err)
	}
	pinned, _ := c.Get(9)
	c.Pin(pinned)
	c.ForgetUnowned()
	if _, ok := c.bufs[unowned.Blkno]; ok {
		t.Fatal("ForgetUnowned kept an unowned block")
	}
	if _, ok := c.bufs[7]; !ok {
		t.Fatal("ForgetUnowned dropped an owned block")
	}
	if _, ok := c.bufs[9]; !ok {
		t.Fatal("ForgetUnowned dropped a pinned block")
	}
}

// TestReadAsAnotherStructureRereads: a block cached decoded as one
// structure and read as another is read anew from the device.
func TestReadAsAnotherStructureRereads(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 64*4096, 512)
	f := blockdev.NewFaulty(dev)
	c := New(f, 4096, Options{})
	b, err := c.Get(5)
	if err != nil {
		t.Fatal(err)
	}
	c.setDecoded(b, &ondisk.DirTrailer{}) // a directory block's, once
	before, _, _ := f.Ops()
	c.ExtentBlock(5) // fails its checks on zeros; what matters is the read
	if after, _, _ := f.Ops(); after != before+1 {
		t.Fatalf("reading a block cached as a directory block as an extent block made %d device reads, want 1", after-before)
	}
}
