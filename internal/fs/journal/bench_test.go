package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/testutil"
)

// commitRounds dirties n home blocks per transaction and commits it,
// rounds times.
func commitRounds(tb testing.TB, j *Journal, v *volume, n, rounds int) {
	c := j.c
	for r := range rounds {
		h, err := j.Begin(n)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			b, err := c.Get(v.homeStart + uint64(i))
			if err != nil {
				tb.Fatal(err)
			}
			h.Access(b)
			b.Data[0] = byte(r)
			h.Dirty(b, -1)
		}
		h.Stop()
		if err := j.CommitAndWait(); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCommit measures the CPU cost of committing transactions of 256
// 4 KiB blocks to a memory device (copies, descriptors, checkpoints).
func BenchmarkCommit(b *testing.B) {
	l := layout{bs: 4096, journalBlocks: 4096, homeBlocks: 256}
	v := l.build(b)
	j, _, err := Load(v.cache(v.mem, 0), fixtureIno, l.cfg())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 * 4096)
	b.ResetTimer()
	commitRounds(b, j, v, 256, b.N)
	b.StopTimer()
	j.Abandon()
}

// TestBenchCommitVsRawWrites compares committing transactions of 256 4 KiB
// blocks to an image file with the least any journal must do for them:
// one sequential write of the same bytes and two syncs per transaction.
func TestBenchCommitVsRawWrites(t *testing.T) {
	testutil.Bench(t)
	const n, rounds = 256, 40
	// The log's first half holds every round: this measures commits, not
	// checkpoints; the baseline writes into the second half.
	l := layout{bs: 4096, journalBlocks: 2 * (rounds*(n+3) + 10), homeBlocks: n}
	v := l.build(t)
	path := filepath.Join(t.TempDir(), "volume.img")
	if err := os.WriteFile(path, v.mem.Snapshot(), 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := blockdev.Open(path, blockdev.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dev.Sync() // flush the freshly written image before anything is timed
	j, _, err := Load(v.cache(dev, 0), fixtureIno, l.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Abandon()
	// The home blocks are read into the metadata cache before timing: a
	// cold miss is one 4 KiB O_DIRECT read (about 50 us here), so the
	// first round's 256 misses alone took as long as 20 whole baseline
	// rounds, and they are the cache's cost, not the journal's (the
	// baseline reads nothing).
	for i := range n {
		if _, err := j.c.Get(v.homeStart + uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Rounds alternate between the baseline (the same bytes written raw
	// past the journal's log, plus two syncs) and a commit, so that both
	// see the same machine load.
	buf := blockdev.AlignedBuffer((n+2)*4096, 4096)
	var raw, mine time.Duration
	for r := range rounds {
		off := int64(fixtureJStart+l.journalBlocks/2+r*(n+2)) * 4096
		start := time.Now()
		if _, err := dev.WriteAt(buf[:(n+1)*4096], off); err != nil {
			t.Fatal(err)
		}
		dev.Sync()
		if _, err := dev.WriteAt(buf[:4096], off+int64(n+1)*4096); err != nil {
			t.Fatal(err)
		}
		dev.Sync()
		raw += time.Since(start)
		start = time.Now()
		commitRounds(t, j, v, n, 1)
		mine += time.Since(start)
	}

	mb := float64(rounds*n*4096) / (1 << 20)
	ratio := raw.Seconds() / mine.Seconds()
	testutil.BenchResult{
		Name:     "journal commit, 256 x 4 KiB blocks per transaction",
		O2go:     fmt.Sprintf("%.1f MiB/s", mb/mine.Seconds()),
		Baseline: fmt.Sprintf("%.1f MiB/s (raw sequential write + 2 syncs)", mb/raw.Seconds()),
		Ratio:    ratio,
		Goal:     ">= 0.80",
		Met:      ratio >= 0.8,
	}.Report(t)
}
