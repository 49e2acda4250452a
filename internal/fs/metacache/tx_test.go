package metacache

import (
	"bytes"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

func TestDirectTxWritesSealedBlocks(t *testing.T) {
	dev := blockdev.NewMemory("mem0", 16*4096, 512)
	c := New(dev, 4096, Options{MetaECC: true})
	tx := &DirectTx{C: c}
	b, err := tx.New(3)
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Data, "INODE01\x00")
	b.Data[1000] = 7
	tx.Dirty(b, 0x80)
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	onDisk := dev.Snapshot()[3*4096 : 4*4096]
	if !bytes.Equal(onDisk, b.Data) {
		t.Fatal("block not written through")
	}
	if _, err := ondisk.VerifyBlockCheck(onDisk, 0x80, "test"); err != nil {
		t.Fatalf("sealed block fails its check: %v", err)
	}
	// A fresh cache reads it back verified.
	c2 := New(dev, 4096, Options{MetaECC: true})
	if _, err := c2.GetChecked(3, 0x80, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.New(16); err == nil {
		t.Fatal("New beyond the device succeeded")
	}
}

func TestPinnedBuffersSurviveEviction(t *testing.T) {
	c := New(blockdev.NewMemory("m", 64*512, 512), 512, Options{LimitBlocks: 2})
	b, _ := c.NewBuffer(1)
	c.Pin(b)
	for i := uint64(2); i < 20; i++ {
		c.Get(i)
	}
	c.ForgetAll()
	if got, _ := c.Get(1); got != b {
		t.Fatal("pinned buffer was evicted")
	}
	c.Unpin(b)
}

func TestUndoTxRestoresEverything(t *testing.T) {
	dev := blockdev.NewMemory("m", 16*512, 512)
	dev.WriteAt(bytes.Repeat([]byte{9}, 512), 2*512)
	c := New(dev, 512, Options{})
	u := NewUndoTx(c, &recordingTx{c: c})
	b, _ := c.Get(2)
	u.Access(b)
	b.Data[0] = 1
	u.Dirty(b, -1)
	nb, _ := u.New(5)
	nb.Data[0] = 7
	u.Rollback()
	if b.Data[0] != 9 {
		t.Fatal("accessed buffer not restored")
	}
	if got, _ := c.Get(5); got.Data[0] != 0 {
		t.Fatal("new buffer not forgotten")
	}
}

// recordingTx is a Tx that writes nothing (like a journal handle before commit).
type recordingTx struct{ c *Cache }

func (recordingTx) Access(*Buffer) error                { return nil }
func (r recordingTx) New(blkno uint64) (*Buffer, error) { return r.c.NewBuffer(blkno) }
func (recordingTx) Dirty(*Buffer, int)                  {}
func (recordingTx) Revoke(uint64)                       {}
