package blockdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"o2go/internal/base"
)

func newImage(t *testing.T, size int64) string {
	t.Helper()
	// /var/tmp is disk-backed (O_DIRECT works); t.TempDir may be tmpfs.
	dir, err := os.MkdirTemp("/var/tmp", "blockdev-test-")
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	p := filepath.Join(dir, "dev.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileReadWriteAlignedAndUnaligned(t *testing.T) {
	p := newImage(t, 1<<20)
	d, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 1<<20 || d.SectorSize() != 512 {
		t.Fatalf("size %d sector %d", d.Size(), d.SectorSize())
	}
	t.Logf("direct=%v alignment=%d", d.Direct(), d.Alignment())

	buf := AlignedBuffer(8192, d.Alignment())
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	if _, err := d.WriteAt(buf, 8192); err != nil {
		t.Fatal(err)
	}
	// Unaligned read crossing alignment units.
	got := make([]byte, 1000)
	if _, err := d.ReadAt(got, 8192+300); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf[300:1300]) {
		t.Fatal("unaligned read returned wrong bytes")
	}
	// Unaligned write (odd length, odd offset) keeps its neighbours.
	if _, err := d.WriteAt([]byte("hello"), 8192+1001); err != nil {
		t.Fatal(err)
	}
	check := make([]byte, 8192)
	if _, err := d.ReadAt(check, 8192); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), buf...)
	copy(want[1001:], "hello")
	if !bytes.Equal(check, want) {
		t.Fatal("read-modify-write damaged neighbouring bytes")
	}
	// Reading at the end reports EOF.
	if n, err := d.ReadAt(make([]byte, 1024), 1<<20-512); n != 512 || err == nil {
		t.Fatalf("read across the end: n=%d err=%v", n, err)
	}
}

func TestFileReadOnlyRefusesWrites(t *testing.T) {
	p := newImage(t, 1<<16)
	d, err := Open(p, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to read-only device: %v", err)
	}
}

func TestOpenRejectsDirectoriesAndMissing(t *testing.T) {
	if _, err := Open(t.TempDir(), OpenOptions{}); err == nil {
		t.Fatal("opened a directory")
	}
	if _, err := Open("/nonexistent/dev", OpenOptions{}); err == nil {
		t.Fatal("opened a missing path")
	}
}

func TestLatchStopsWritesAndWaitsForInflight(t *testing.T) {
	var l Latch
	slow := NewFaulty(NewMemory("m", 1<<16, 512))
	slow.AddRule(func(op Op, off int64, n int) (Fault, bool) {
		return Fault{Delay: 50 * time.Millisecond}, op == OpWrite
	})
	d := l.Wrap(slow)
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		close(started)
		if _, err := d.WriteAt(make([]byte, 512), 0); err != nil {
			t.Errorf("in-flight write failed: %v", err)
		}
	}()
	<-started
	time.Sleep(5 * time.Millisecond)
	l.Fence("test")
	// Fence returned: the in-flight write must be complete.
	if _, w, _ := slow.Ops(); w != 1 {
		t.Fatalf("writes issued = %d", w)
	}
	if _, err := d.WriteAt(make([]byte, 512), 512); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after fence: %v", err)
	}
	if _, err := d.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatalf("read after fence: %v", err)
	}
	wg.Wait()
	if f, why := l.Fenced(); !f || why != "test" {
		t.Fatal("Fenced() wrong")
	}
}

func TestFaultyInjectsErrorsAndTornWrites(t *testing.T) {
	m := NewMemory("m", 1<<16, 512)
	f := NewFaulty(m)
	boom := errors.New("EIO")
	f.AddRule(func(op Op, off int64, n int) (Fault, bool) {
		return Fault{Err: boom}, op == OpRead && off == 4096
	})
	f.AddRule(func(op Op, off int64, n int) (Fault, bool) {
		return Fault{TornAfter: 1}, op == OpWrite && off == 8192
	})
	if _, err := f.ReadAt(make([]byte, 512), 4096); !errors.Is(err, boom) {
		t.Fatalf("read fault: %v", err)
	}
	data := bytes.Repeat([]byte{0xAB}, 1024)
	n, err := f.WriteAt(data, 8192)
	if n != 512 || !errors.Is(err, ErrTornWrite) {
		t.Fatalf("torn write: n=%d err=%v", n, err)
	}
	got := m.Snapshot()[8192:9216]
	if !bytes.Equal(got[:512], data[:512]) || !bytes.Equal(got[512:], make([]byte, 512)) {
		t.Fatal("torn write applied the wrong sectors")
	}
	f.ClearRules()
	if _, err := f.ReadAt(make([]byte, 512), 4096); err != nil {
		t.Fatal(err)
	}
}

func TestCrashImageKeepsSyncedAndMixesUnsynced(t *testing.T) {
	m := NewMemory("m", 4096, 512)
	f := NewFaulty(m)
	a := bytes.Repeat([]byte{1}, 512)
	b := bytes.Repeat([]byte{2}, 512)
	c := bytes.Repeat([]byte{3}, 512)
	f.WriteAt(a, 0)
	f.Sync()
	f.WriteAt(b, 0)
	f.WriteAt(c, 0)
	f.WriteAt(b, 1024)
	if f.Unsynced() != 2 {
		t.Fatalf("unsynced sectors = %d", f.Unsynced())
	}
	seen := map[byte]bool{}
	seen1024 := map[byte]bool{}
	rng := base.NewRand(7)
	for i := 0; i < 200; i++ {
		img, err := f.CrashImage(rng)
		if err != nil {
			t.Fatal(err)
		}
		seen[img[0]] = true
		seen1024[img[1024]] = true
		if img[512] != 0 {
			t.Fatal("a never-written sector changed")
		}
	}
	if !seen[1] || !seen[2] || !seen[3] || len(seen) != 3 {
		t.Fatalf("sector 0 outcomes %v, want {1,2,3}", seen)
	}
	if !seen1024[0] || !seen1024[2] {
		t.Fatalf("sector 2 outcomes %v, want {0,2}", seen1024)
	}
	f.Sync()
	img, _ := f.CrashImage(rng)
	if img[0] != 3 || img[1024] != 2 {
		t.Fatal("after sync the crash image must equal the device")
	}
}
