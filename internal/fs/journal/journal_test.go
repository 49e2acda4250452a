package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var small = layout{bs: 1024, journalBlocks: 64, homeBlocks: 32}

// change runs one handle that sets home blocks idx to their fill byte
// (block i gets byte fill+i) and returns the handle's transaction ID.
func change(t testing.TB, j *Journal, c *metacache.Cache, v *volume, fill byte, idx ...int) uint32 {
	t.Helper()
	h, err := j.Begin(len(idx))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range idx {
		b, err := c.Get(v.homeStart + uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Access(b); err != nil {
			t.Fatal(err)
		}
		for k := range b.Data {
			b.Data[k] = fill + byte(i)
		}
		h.Dirty(b, -1)
	}
	seq := h.Sequence()
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	return seq
}

func filled(bs int, fill byte) []byte { return bytes.Repeat([]byte{fill}, bs) }

func load(t testing.TB, v *volume, dev blockdev.Device, cfg Config) (*Journal, *metacache.Cache, *LoadReport) {
	t.Helper()
	c := v.cache(dev, 0)
	j, rep, err := Load(c, fixtureIno, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j, c, rep
}

func TestCommitIsDurableAndReplayed(t *testing.T) {
	for _, l := range []layout{
		small,
		{bs: 512, journalBlocks: 64, homeBlocks: 16},
		{bs: 4096, journalBlocks: 32, homeBlocks: 16, fragmented: true, is64: true, metaECC: true},
	} {
		v := l.build(t)
		j, c, rep := load(t, v, v.mem, l.cfg())
		if !rep.Replay.Needed || rep.Replay.Transactions != 0 || rep.WasDirty {
			t.Fatalf("fresh journal: report %+v / %+v", rep, rep.Replay)
		}
		change(t, j, c, v, 0x10, 0, 1, 2)
		change(t, j, c, v, 0x40, 2, 3)
		if err := j.CommitAndWait(); err != nil {
			t.Fatal(err)
		}
		j.Abandon() // crash: nothing checkpointed
		img := v.mem.Snapshot()
		if !bytes.Equal(v.home(img, 0), v.initialHome(0)) {
			t.Fatal("home block written before any checkpoint")
		}
		if d := v.journalDinode(t, img); d.Journal().Flags&ondisk.JournalDirty == 0 {
			t.Fatal("DIRTY not set while mounted")
		}

		crashed := blockdev.NewMemoryFrom("crashed", img, 512)
		j2, c2, rep2 := load(t, v, crashed, l.cfg())
		r := rep2.Replay
		if !rep2.WasDirty || !r.Needed || r.Transactions != 1 || r.Blocks != 4 || r.Copies != 4 || r.Damage != nil {
			t.Fatalf("replay report %+v, %+v", rep2, r)
		}
		if rep2.RecoveryGeneration != 1 {
			t.Fatalf("recovery generation %d after a dirty mount, want 1", rep2.RecoveryGeneration)
		}
		got := crashed.Snapshot()
		want := map[int][]byte{0: filled(l.bs, 0x10), 1: filled(l.bs, 0x11), 2: filled(l.bs, 0x42), 3: filled(l.bs, 0x43), 4: v.initialHome(4)}
		for i, w := range want {
			if !bytes.Equal(v.home(got, i), w) {
				t.Fatalf("bs %d: home block %d after replay is %x..., want %x...", l.bs, i, v.home(got, i)[:8], w[:8])
			}
		}
		// The cache of the new mount sees the replayed blocks.
		b, _ := c2.Get(v.homeStart + 2)
		if b.Data[0] != 0x42 {
			t.Fatal("cache serves a pre-replay block")
		}
		if err := j2.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestShutdownCheckpointsAndCleans(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 0x20, 5, 6)
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(1); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Begin after Shutdown: %v", err)
	}
	img := v.mem.Snapshot()
	if !bytes.Equal(v.home(img, 6), filled(v.bs, 0x26)) {
		t.Fatal("shutdown did not write the change home")
	}
	d := v.journalDinode(t, img)
	if d.Journal().Flags&ondisk.JournalDirty != 0 {
		t.Fatal("DIRTY still set after a clean shutdown")
	}
	sb, err := ondisk.DecodeJournalSuperBlock(img[fixtureJStart*v.bs:])
	if err != nil {
		t.Fatal(err)
	}
	if sb.Start != 0 || sb.SSequence != 3 {
		t.Fatalf("after shutdown s_start %d s_sequence %d, want 0 and 3", sb.Start, sb.SSequence)
	}
	j2, _, rep := load(t, v, blockdev.NewMemoryFrom("again", img, 512), small.cfg())
	if rep.WasDirty || rep.Replay.Needed {
		t.Fatalf("clean volume replayed: %+v", rep)
	}
	if st := j2.Stats(); st.RunningSeq != 4 {
		t.Fatalf("next transaction %d, want s_sequence+1 = 4", st.RunningSeq)
	}
	j2.Abandon()
}

// logBlock returns journal block pos of an image (unfragmented layout).
func logBlock(v *volume, img []byte, pos int) []byte {
	off := (fixtureJStart + pos) * v.bs
	return img[off : off+v.bs]
}

func TestLogFormatIsJBD2s(t *testing.T) {
	l := layout{bs: 1024, journalBlocks: 64, homeBlocks: 8}
	v := l.build(t)
	at := time.Unix(1700000000, 123456789)
	cfg := l.cfg()
	cfg.Now = func() time.Time { return at }
	j, c, _ := load(t, v, v.mem, cfg)
	// Block 1 starts with the JBD2 magic: its copy must be escaped.
	h, _ := j.Begin(3)
	for _, i := range []int{3, 1} {
		b, _ := c.Get(v.homeStart + uint64(i))
		h.Access(b)
		copy(b.Data, filled(v.bs, byte(i)))
		if i == 1 {
			binary.BigEndian.PutUint32(b.Data, ondisk.JBD2Magic)
		}
		h.Dirty(b, -1)
	}
	h.Revoke(v.homeStart + 7)
	seq := h.Sequence()
	h.Stop()
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	img := v.mem.Snapshot()
	j.Abandon()

	sb, _ := ondisk.DecodeJournalSuperBlock(img[fixtureJStart*v.bs:])
	if sb.Start != 1 || sb.SSequence != seq || sb.FeatureIncompat != 0 {
		t.Fatalf("superblock start %d seq %d incompat %#x; want 1, %d, none", sb.Start, sb.SSequence, sb.FeatureIncompat, seq)
	}
	// The record is there twice (fsck.ocfs2 reads only half of them).
	rb, err := ondisk.DecodeRevokeBlock(logBlock(v, img, 1), false)
	if err != nil || rb.Sequence != seq || len(rb.Blocks) != 2 || rb.Blocks[0] != v.homeStart+7 || rb.Blocks[1] != v.homeStart+7 {
		t.Fatalf("revoke block %+v, %v", rb, err)
	}
	d, err := ondisk.DecodeDescriptorBlock(logBlock(v, img, 2), false)
	if err != nil || d.Sequence != seq || len(d.Tags) != 2 {
		t.Fatalf("descriptor %+v, %v", d, err)
	}
	t0, t1 := d.Tags[0], d.Tags[1]
	if t0.Blocknr != v.homeStart+3 || t0.Flags != 0 || t0.UUID != v.uuid {
		t.Fatalf("first tag %+v", t0)
	}
	if t1.Blocknr != v.homeStart+1 || t1.Flags != ondisk.JBD2FlagSameUUID|ondisk.JBD2FlagLastTag|ondisk.JBD2FlagEscape {
		t.Fatalf("second tag %+v", t1)
	}
	if !bytes.Equal(logBlock(v, img, 3), filled(v.bs, 3)) {
		t.Fatal("first copy wrong")
	}
	esc := logBlock(v, img, 4)
	if binary.BigEndian.Uint32(esc) != 0 || !bytes.Equal(esc[4:], filled(v.bs, 1)[4:]) {
		t.Fatal("escaped copy wrong")
	}
	cb, err := ondisk.DecodeCommitBlock(logBlock(v, img, 5))
	if err != nil || cb.Sequence != seq || cb.CommitSec != 1700000000 || cb.CommitNsec != 123456789 {
		t.Fatalf("commit block %+v, %v", cb, err)
	}
	if ondisk.IsJournalBlock(logBlock(v, img, 6)) {
		t.Fatal("a journal block after the commit block")
	}
	// Replay restores the magic of the escaped block.
	crashed := blockdev.NewMemoryFrom("c", img, 512)
	if _, err := Replay(v.cache(crashed, 0), fixtureIno, cfg); err != nil {
		t.Fatal(err)
	}
	if got := v.home(crashed.Snapshot(), 1); binary.BigEndian.Uint32(got) != ondisk.JBD2Magic {
		t.Fatal("escaped block not restored")
	}
}

func TestDescriptorsSpanManyBlocks(t *testing.T) {
	// 64-bit tags at 512 bytes: (512-44)/12 = 39 tags per descriptor.
	l := layout{bs: 512, journalBlocks: 512, homeBlocks: 100, is64: true}
	v := l.build(t)
	j, c, _ := load(t, v, v.mem, l.cfg())
	idx := make([]int, 100)
	for i := range idx {
		idx[i] = i
	}
	change(t, j, c, v, 0x30, idx...)
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	j.Abandon()
	img := v.mem.Snapshot()
	crashed := blockdev.NewMemoryFrom("c", img, 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, l.cfg())
	if err != nil || rep.Blocks != 100 {
		t.Fatalf("replay %+v, %v", rep, err)
	}
	got := crashed.Snapshot()
	for i := range 100 {
		if !bytes.Equal(v.home(got, i), filled(v.bs, 0x30+byte(i))) {
			t.Fatalf("block %d not replayed", i)
		}
	}
	// Three descriptors of 39, 39 and 22 tags (first journal block is 2).
	pos := 2
	for _, n := range []int{39, 39, 22} {
		d, err := ondisk.DecodeDescriptorBlock(logBlock(v, img, pos), true)
		if err != nil || len(d.Tags) != n {
			t.Fatalf("descriptor at %d: %d tags, %v; want %d", pos, len(d.Tags), err, n)
		}
		pos += 1 + n
	}
}

func TestCommitWritesLargeSequentialIOs(t *testing.T) {
	l := layout{bs: 4096, journalBlocks: 2048, homeBlocks: 400}
	v := l.build(t)
	f := blockdev.NewFaulty(v.mem)
	j, c, _ := load(t, v, f, l.cfg())
	idx := make([]int, 400)
	for i := range idx {
		idx[i] = i
	}
	change(t, j, c, v, 1, idx...)
	_, w0, s0 := f.Ops()
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	_, w1, s1 := f.Ops()
	// superblock + one image write + commit block; two syncs.
	if w1-w0 != 3 || s1-s0 != 2 {
		t.Fatalf("commit of 400 blocks: %d writes, %d syncs; want 3 and 2", w1-w0, s1-s0)
	}
	if err := j.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	_, w2, _ := f.Ops()
	// 400 neighbouring home blocks in runs of at most 256, then the superblock.
	if w2-w1 != 3 {
		t.Fatalf("checkpoint of 400 neighbouring blocks: %d writes, want 3", w2-w1)
	}
	j.Abandon()
}

func TestCheckpointMovesTheTail(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 1, 0, 1)
	j.CommitAndWait()
	change(t, j, c, v, 2, 1, 2)
	j.CommitAndWait()
	if st := j.Stats(); st.LogUsed != 2*4 || st.Committed != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := j.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	st := j.Stats()
	if st.LogUsed != 0 || st.Checkpoints != 1 || st.CheckpointedBlocks != 3 {
		t.Fatalf("after checkpoint: %+v", st)
	}
	img := v.mem.Snapshot()
	sb, _ := ondisk.DecodeJournalSuperBlock(img[fixtureJStart*v.bs:])
	if sb.Start != 9 || sb.SSequence != st.RunningSeq {
		t.Fatalf("tail s_start %d s_sequence %d, want 9 and %d", sb.Start, sb.SSequence, st.RunningSeq)
	}
	if !bytes.Equal(v.home(img, 1), filled(v.bs, 3)) || !bytes.Equal(v.home(img, 0), filled(v.bs, 1)) {
		t.Fatal("checkpoint did not write the newest copies home")
	}
	// A crash now replays nothing and changes nothing.
	crashed := blockdev.NewMemoryFrom("c", img, 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, small.cfg())
	if err != nil || rep.Transactions != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	j.Abandon()
}

func TestLogWrapsAroundManyTimes(t *testing.T) {
	l := layout{bs: 1024, journalBlocks: 32, homeBlocks: 16, fragmented: true}
	v := l.build(t)
	j, c, _ := load(t, v, v.mem, l.cfg())
	var last [16]byte
	for n := range 200 {
		i, k := n%16, (n*7+3)%16
		fill := byte(n)
		change(t, j, c, v, fill, i, k)
		last[i], last[k] = fill+byte(i), fill+byte(k)
		if n%3 == 0 {
			j.CommitAndWait()
		}
	}
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	st := j.Stats()
	if st.LogWrites < 10*uint64(st.LogCapacity) || st.Checkpoints == 0 {
		t.Fatalf("log did not wrap many times: %+v", st)
	}
	j.Abandon()
	crashed := blockdev.NewMemoryFrom("c", v.mem.Snapshot(), 512)
	if _, err := Replay(v.cache(crashed, 0), fixtureIno, l.cfg()); err != nil {
		t.Fatal(err)
	}
	got := crashed.Snapshot()
	for i := range 16 {
		if !bytes.Equal(v.home(got, i), filled(v.bs, last[i])) {
			t.Fatalf("block %d is %x, want %x", i, v.home(got, i)[0], last[i])
		}
	}
}

func TestRevokedBlockIsNeverReplayed(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 0x50, 4) // T1 logs block 4 (metadata)
	j.CommitAndWait()
	h, _ := j.Begin(0) // T2 frees it
	h.Revoke(v.homeStart + 4)
	revSeq := h.Sequence()
	h.Stop()
	// Revoke wrote the pending copy home at once.
	if got := v.home(v.mem.Snapshot(), 4); !bytes.Equal(got, filled(v.bs, 0x54)) {
		t.Fatal("revoke did not write the committed copy home")
	}
	j.CommitAndWait()
	if !j.Committed(revSeq) {
		t.Fatal("revoking transaction not committed")
	}
	// The block now holds file data, written around the journal.
	data := filled(v.bs, 0xDA)
	v.mem.WriteAt(data, int64(v.homeStart+4)*int64(v.bs))
	j.Abandon()
	crashed := blockdev.NewMemoryFrom("c", v.mem.Snapshot(), 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, small.cfg())
	if err != nil || rep.RevokeHits != 1 || rep.Revokes != 1 {
		t.Fatalf("replay %+v, %v", rep, err)
	}
	if got := v.home(crashed.Snapshot(), 4); !bytes.Equal(got, data) {
		t.Fatal("replay resurrected a revoked block over file data")
	}
}

func TestRevokeThenReuseInOneTransaction(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 0x50, 4)
	j.CommitAndWait()
	h, _ := j.Begin(1)
	blk := v.homeStart + 4
	h.Revoke(blk)
	b, err := h.New(blk) // reused as metadata at once: the revoke is cancelled
	if err != nil {
		t.Fatal(err)
	}
	copy(b.Data, filled(v.bs, 0x77))
	h.Dirty(b, -1)
	h.Stop()
	j.CommitAndWait()
	j.Abandon()
	crashed := blockdev.NewMemoryFrom("c", v.mem.Snapshot(), 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, small.cfg())
	if err != nil || rep.Revokes != 0 {
		t.Fatalf("replay %+v, %v", rep, err)
	}
	if got := v.home(crashed.Snapshot(), 4); !bytes.Equal(got, filled(v.bs, 0x77)) {
		t.Fatal("reused block lost its new contents")
	}
}

func TestIOErrorAbortsTheJournal(t *testing.T) {
	v := small.build(t)
	f := blockdev.NewFaulty(v.mem)
	j, c, _ := load(t, v, f, small.cfg())
	change(t, j, c, v, 1, 0)
	boom := errors.New("disk on fire")
	f.AddRule(func(op blockdev.Op, off int64, n int) (blockdev.Fault, bool) {
		return blockdev.Fault{Err: boom}, op == blockdev.OpSync
	})
	err := j.CommitAndWait()
	if !errors.Is(err, ErrAborted) || !errors.Is(err, boom) || !strings.Contains(err.Error(), "journal:0000") {
		t.Fatalf("commit error %v", err)
	}
	if _, err := j.Begin(1); !errors.Is(err, ErrAborted) {
		t.Fatalf("Begin after abort: %v", err)
	}
	if err := j.Shutdown(); !errors.Is(err, ErrAborted) {
		t.Fatalf("Shutdown after abort: %v", err)
	}
	if st := j.Stats(); st.Aborted == nil {
		t.Fatal("stats do not show the abort")
	}
}

func TestOpenHandleIsCommittedWhole(t *testing.T) {
	// A handle open outside the metadata lock: a commit waits for it
	// rather than split it.
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	h, _ := j.Begin(2)
	b, _ := c.Get(v.homeStart)
	h.Access(b)
	copy(b.Data, filled(v.bs, 9))
	h.Dirty(b, -1)
	done := make(chan error)
	go func() { done <- j.CommitAndWait() }()
	select {
	case <-done:
		t.Fatal("commit did not wait for the open handle")
	case <-time.After(50 * time.Millisecond):
	}
	b2, _ := c.Get(v.homeStart + 1)
	h.Access(b2)
	copy(b2.Data, filled(v.bs, 9))
	h.Dirty(b2, -1)
	h.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.Committed != 1 || st.BlocksLogged != 2 {
		t.Fatalf("%+v", st)
	}
	j.Abandon()
}

func TestBackgroundCommitterCommits(t *testing.T) {
	v := small.build(t)
	cfg := small.cfg()
	cfg.CommitInterval = 20 * time.Millisecond
	j, c, _ := load(t, v, v.mem, cfg)
	seq := change(t, j, c, v, 1, 0)
	deadline := time.Now().Add(5 * time.Second)
	for !j.Committed(seq) {
		if time.Now().After(deadline) {
			t.Fatal("background committer never committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	seq = change(t, j, c, v, 2, 1)
	j.Commit()
	for !j.Committed(seq) {
		if time.Now().After(deadline) {
			t.Fatal("Commit was not honoured")
		}
		time.Sleep(time.Millisecond)
	}
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestFullTransactionCommitsInBegin(t *testing.T) {
	v := layout{bs: 1024, journalBlocks: 64, homeBlocks: 32}.build(t)
	j, c, _ := load(t, v, v.mem, v.cfg()) // max transaction 63/4 = 15 blocks
	first := change(t, j, c, v, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	second := change(t, j, c, v, 1, 10, 11, 12, 13, 14, 15)
	if first == second || !j.Committed(first) || j.Committed(second) {
		t.Fatalf("transactions %d and %d; committed %v %v", first, second, j.Committed(first), j.Committed(second))
	}
	if _, err := j.Begin(16); err == nil {
		t.Fatal("Begin accepted more credits than a transaction may hold")
	}
	j.Abandon()
}

func TestConcurrentHandlesAndCommits(t *testing.T) {
	l := layout{bs: 1024, journalBlocks: 128, homeBlocks: 64}
	v := l.build(t)
	var meta sync.RWMutex
	cfg := l.cfg()
	cfg.MetaLock = meta.RLocker()
	cfg.CommitInterval = time.Millisecond
	c := v.cache(v.mem, 24)
	j, _, err := Load(c, fixtureIno, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	final := make([]byte, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 150 {
				i := w*16 + n%16
				meta.Lock()
				h, err := j.Begin(1)
				if err != nil {
					meta.Unlock()
					t.Error(err)
					return
				}
				b, _ := c.Get(v.homeStart + uint64(i))
				h.Access(b)
				for k := range b.Data {
					b.Data[k] = byte(n)
				}
				h.Dirty(b, -1)
				h.Stop()
				final[i] = byte(n)
				meta.Unlock()
				switch n % 25 {
				case 0:
					if err := j.CommitAndWait(); err != nil {
						t.Error(err)
					}
				case 12:
					if err := j.Checkpoint(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
	img := v.mem.Snapshot()
	for i := range 64 {
		if !bytes.Equal(v.home(img, i), filled(v.bs, final[i])) {
			t.Fatalf("block %d lost its last change", i)
		}
	}
}

func TestRefusesUnknownFeatures(t *testing.T) {
	for _, tc := range []struct {
		off  int
		val  uint32
		want string
	}{
		{0x24, ondisk.JBD2FeatureCompatChecksum, "compat features 0x1"},
		{0x28, ondisk.JBD2FeatureIncompatCsumV3, "incompat features 0x10"},
		{0x28, ondisk.JBD2FeatureIncompatAsyncCommit, "incompat features 0x4"},
		{0x2C, 0x1, "ro-compat features 0x1"},
	} {
		v := small.build(t)
		raw := make([]byte, v.bs)
		v.mem.ReadAt(raw, fixtureJStart*int64(v.bs))
		binary.BigEndian.PutUint32(raw[tc.off:], tc.val)
		v.write(fixtureJStart, raw)
		_, _, err := Load(v.cache(v.mem, 0), fixtureIno, small.cfg())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("feature %#x at %#x: %v", tc.val, tc.off, err)
		}
		if _, err := Replay(v.cache(v.mem, 0), fixtureIno, small.cfg()); err == nil {
			t.Fatalf("Replay accepted feature %#x at %#x", tc.val, tc.off)
		}
	}
}

func TestDamagedLogStopsAtLastGoodCommit(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 0x10, 0)
	j.CommitAndWait() // log blocks 1-3
	change(t, j, c, v, 0x20, 1)
	j.CommitAndWait() // log blocks 4-6
	change(t, j, c, v, 0x30, 2)
	j.CommitAndWait() // log blocks 7-9
	j.Abandon()
	img := v.mem.Snapshot()
	// The second transaction's descriptor names a block beyond the device.
	d := logBlock(v, img, 4)
	binary.BigEndian.PutUint32(d[ondisk.JournalHeaderSize:], 0xFFFFFF)
	crashed := blockdev.NewMemoryFrom("c", img, 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, small.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transactions != 1 || rep.Damage == nil || !errors.Is(rep.Damage, ondisk.ErrCorrupt) {
		t.Fatalf("replay %+v", rep)
	}
	msg := rep.Damage.Error()
	if !strings.Contains(msg, "journal block 4") || !strings.Contains(msg, "transaction 3") || !strings.Contains(msg, "block 16777215") {
		t.Fatalf("damage message %q lacks the journal block, sequence or bad tag", msg)
	}
	got := crashed.Snapshot()
	if !bytes.Equal(v.home(got, 0), filled(v.bs, 0x10)) || !bytes.Equal(v.home(got, 1), v.initialHome(1)) || !bytes.Equal(v.home(got, 2), v.initialHome(2)) {
		t.Fatal("replay went past the damaged transaction")
	}
	if rep.NewSequence != rep.EndSeq+1 || rep.EndSeq != 3 {
		t.Fatalf("end %d new sequence %d", rep.EndSeq, rep.NewSequence)
	}
}

func TestReplayOfGarbageNeverPanics(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	for n := range 5 {
		change(t, j, c, v, byte(n), n, n+1)
		j.CommitAndWait()
	}
	j.Abandon()
	base := v.mem.Snapshot()
	for trial := range 300 {
		img := append([]byte(nil), base...)
		// Flip bytes in the log's headers and tags.
		for k := range 4 {
			pos := 1 + (trial*7+k*13)%20
			off := (fixtureJStart+pos)*v.bs + (trial*31+k*5)%48
			img[off] ^= byte(1 + trial + k)
		}
		crashed := blockdev.NewMemoryFrom("c", img, 512)
		if _, err := Replay(v.cache(crashed, 0), fixtureIno, small.cfg()); err != nil && !errors.Is(err, ondisk.ErrCorrupt) {
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
}

func TestRecoverOtherSlot(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	change(t, j, c, v, 0x60, 3)
	j.CommitAndWait()
	j.Abandon() // the node dies
	img := v.mem.Snapshot()
	dev := blockdev.NewMemoryFrom("survivor", img, 512)
	rep, err := Recover(v.cache(dev, 0), fixtureIno, small.cfg())
	if err != nil || rep.Skipped || rep.Replay.Transactions != 1 || rep.RecoveryGeneration != 1 {
		t.Fatalf("recover %+v %v", rep, err)
	}
	got := dev.Snapshot()
	if d := v.journalDinode(t, got); d.Journal().Flags&ondisk.JournalDirty != 0 || d.Journal().RecoveryGeneration != 1 {
		t.Fatalf("dinode journal %+v", d.Journal())
	}
	if !bytes.Equal(v.home(got, 3), filled(v.bs, 0x63)) {
		t.Fatal("not replayed")
	}
	rep, err = Recover(v.cache(dev, 0), fixtureIno, small.cfg())
	if err != nil || !rep.Skipped {
		t.Fatalf("second recovery %+v %v", rep, err)
	}
}

func TestAccessBeyondDeviceFails(t *testing.T) {
	v := small.build(t)
	j, _, _ := load(t, v, v.mem, small.cfg())
	h, _ := j.Begin(1)
	if err := h.Access(&metacache.Buffer{Blkno: v.blocks + 5}); err == nil {
		t.Fatal("Access beyond the device succeeded")
	}
	if _, err := h.New(v.blocks + 5); err == nil {
		t.Fatal("New beyond the device succeeded")
	}
	h.Stop()
	if err := h.Stop(); err == nil {
		t.Fatal("second Stop succeeded")
	}
	j.Abandon()
}

func TestLogNeverFillsCompletely(t *testing.T) {
	// 48 log blocks and transactions of 3 (descriptor, copy, commit): 16 of
	// them would fill the log exactly, and a scan would then read the tail
	// a second time. The writer checkpoints before the last one instead.
	l := layout{bs: 512, journalBlocks: 50, homeBlocks: 20} // s_first 2
	v := l.build(t)
	j, c, _ := load(t, v, v.mem, l.cfg())
	for n := range 16 {
		change(t, j, c, v, byte(n), n)
		if err := j.CommitAndWait(); err != nil {
			t.Fatal(err)
		}
		if st := j.Stats(); st.LogUsed > st.LogCapacity-1 {
			t.Fatalf("log use %d of %d", st.LogUsed, st.LogCapacity)
		}
	}
	j.Abandon()
	crashed := blockdev.NewMemoryFrom("c", v.mem.Snapshot(), 512)
	rep, err := Replay(v.cache(crashed, 0), fixtureIno, l.cfg())
	if err != nil || rep.Damage != nil {
		t.Fatalf("replay %+v, %v", rep, err)
	}
	got := crashed.Snapshot()
	for n := range 16 {
		if !bytes.Equal(v.home(got, n), filled(v.bs, byte(2*n))) {
			t.Fatalf("block %d", n)
		}
	}
}

// TestAccessedButUnchangedBlocksAreReleased: a handle that joins a block
// and changes nothing (an operation that failed and rolled back) leaves an
// empty transaction; a commit must let go of the block, or a cache flush
// keeps it (pinned) and a clustered mount later reads it stale.
func TestAccessedButUnchangedBlocksAreReleased(t *testing.T) {
	v := small.build(t)
	j, c, _ := load(t, v, v.mem, small.cfg())
	defer j.Shutdown()
	h, err := j.Begin(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(v.homeStart + 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Access(b); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := j.CommitAndWait(); err != nil {
		t.Fatal(err)
	}
	if kept := c.ForgetAll(); kept != 0 {
		t.Fatalf("%d blocks still pinned after the commit of a transaction that changed nothing", kept)
	}
	// Another writer changes the block at home; a new read sees it.
	v.mem.WriteAt(filled(v.bs, 0x77), int64(v.homeStart+3)*int64(v.bs))
	b, err = c.Get(v.homeStart + 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Data, filled(v.bs, 0x77)) {
		t.Fatal("the cache serves a stale copy of a block another writer changed")
	}
}
