package journal

import (
	"bytes"
	"runtime"
	"testing"

	"o2go/internal/blockdev"
)

// TestTransactionAcrossTheWrapReplays commits a transaction whose blocks
// run from the end of the log over s_maxlen to s_first (its descriptor
// before the wrap, copies and commit block on both sides), then another
// after it, crashes, and replays: every block must come back from the
// right side of the wrap, on a log in one extent and on one split over
// three extents out of device order.
func TestTransactionAcrossTheWrapReplays(t *testing.T) {
	for _, l := range []layout{
		{bs: 1024, journalBlocks: 32, homeBlocks: 16},
		{bs: 512, journalBlocks: 48, homeBlocks: 16, fragmented: true, is64: true},
	} {
		v := l.build(t)
		j, c, _ := load(t, v, v.mem, l.cfg())
		var last [16]byte
		set := func(fill byte, idx ...int) {
			change(t, j, c, v, fill, idx...)
			for _, i := range idx {
				last[i] = fill + byte(i)
			}
			if err := j.CommitAndWait(); err != nil {
				t.Fatal(err)
			}
		}
		// One-block transactions (3 log blocks each) until 2 to 4 blocks
		// are left before the wrap: the next 5-block transaction (7 log
		// blocks) cannot fit there.
		n := 0
		for left := int(j.maxlen - j.head); left < 2 || left > 4; left = int(j.maxlen - j.head) {
			set(byte(n), n%16)
			n++
			if n > 100 {
				t.Fatalf("bs %d: head never came within 4 blocks of the wrap", l.bs)
			}
		}
		before := j.head
		set(0x80, 3, 4, 5, 6, 7)
		if after := j.head; after >= before || after == j.first {
			t.Fatalf("bs %d: the transaction went from log block %d to %d: it does not span the wrap", l.bs, before, after)
		}
		set(0xA0, 7, 8)
		j.Abandon()

		crashed := blockdev.NewMemoryFrom("crashed", v.mem.Snapshot(), 512)
		rep, err := Replay(v.cache(crashed, 0), fixtureIno, l.cfg())
		if err != nil || rep.Damage != nil {
			t.Fatalf("bs %d: replay %+v, %v", l.bs, rep, err)
		}
		if rep.Transactions < 2 {
			t.Fatalf("bs %d: replay found %d transactions, want the wrapped one and the next", l.bs, rep.Transactions)
		}
		got := crashed.Snapshot()
		for i := range 16 {
			want := v.initialHome(i)
			if i < n || (i >= 3 && i <= 8) {
				want = filled(v.bs, last[i])
			}
			if !bytes.Equal(v.home(got, i), want) {
				t.Fatalf("bs %d: home block %d after replay is %x..., want %x...", l.bs, i, v.home(got, i)[:4], want[:4])
			}
		}
	}
}

// TestCheckpointWritesCopiesFromReusedImages commits transactions that
// supersede each other's copies, so that their log images are reused
// while older transactions still hold copies of other blocks, and checks
// that a checkpoint then writes the newest committed copy of every block
// home, and that nothing uncommitted reaches home.
func TestCheckpointWritesCopiesFromReusedImages(t *testing.T) {
	l := layout{bs: 1024, journalBlocks: 256, homeBlocks: 16}
	v := l.build(t)
	j, c, _ := load(t, v, v.mem, l.cfg())
	want := make([][]byte, 16)
	for i := range want {
		want[i] = v.initialHome(i)
	}
	commit := func(fill byte, idx ...int) {
		change(t, j, c, v, fill, idx...)
		for _, i := range idx {
			want[i] = filled(v.bs, fill+byte(i))
		}
		if err := j.CommitAndWait(); err != nil {
			t.Fatal(err)
		}
	}
	commit(0x10, 0, 1, 2, 3) // T1 keeps block 0 to the end
	commit(0x18, 1)          // T2 keeps block 1
	for r := range 8 {
		commit(0x20+byte(r)*0x10, 2, 3, 4) // each supersedes the last
	}
	commit(0xB0, 5)
	// Changed but not committed: must not reach home.
	h, err := j.Begin(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get(v.homeStart + 4)
	h.Access(b)
	copy(b.Data, filled(v.bs, 0xEE))
	h.Dirty(b, -1)
	released := 0
	for _, tx := range j.inLog {
		if tx.image == nil {
			released++
		}
	}
	if released < 7 || j.inLog[0].image == nil || j.inLog[1].image == nil {
		t.Fatalf("%d of %d transactions in the log released their image; want the 7 superseded ones, not the first two", released, len(j.inLog))
	}
	// Checkpoint only what is committed: not the open handle's change.
	j.ioMu.Lock()
	err = j.checkpointLocked()
	j.ioMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	img := v.mem.Snapshot()
	for i := range 16 {
		if !bytes.Equal(v.home(img, i), want[i]) {
			t.Fatalf("home block %d after the checkpoint is %x..., want %x...", i, v.home(img, i)[:4], want[i][:4])
		}
	}
	h.Stop()
	j.Abandon()
}

// TestSteadyCommitsAllocateLittle guards the commit path against
// per-transaction allocations: committing the same 256 blocks over and
// over must reuse the log images (a fresh 1 MiB image costs page faults
// and zeroing that outweigh the copy into it), the transaction's tables,
// its per-block records and the checkpoint entries.
func TestSteadyCommitsAllocateLittle(t *testing.T) {
	const n = 256
	l := layout{bs: 4096, journalBlocks: 4096, homeBlocks: n}
	v := l.build(t)
	j, _, err := Load(v.cache(v.mem, 0), fixtureIno, l.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Abandon()
	commitRounds(t, j, v, n, 3) // warm: cache, images, tables
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const rounds = 8
	commitRounds(t, j, v, n, rounds)
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / rounds; per > 4<<10 {
		t.Fatalf("a commit of %d blocks allocates %d bytes; want under 4 KiB (images, tables and entries reused)", n, per)
	}
}
